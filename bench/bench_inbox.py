"""How long the curators' inbox takes with 1,000,000 and 10,000,000 logged questions.

    python bench/bench_inbox.py [--sizes 1000000,10000000] [--repeat 3] [--distinct 20000]

For each size a scratch database is made by the app factory (migrated, knowledge seeded)
and filled with questions spread over the year before TODAY: answered / clarified /
escalated 75 / 10 / 15 per cent. The missed ones are drawn, with a long-tailed popularity,
from ``--distinct`` different wordings (places, matters and ways of asking from
``bench/synth.py``), so the inbox has many groups to make; one in 30 answers is rated, 30%
of them 没用. Signed in as a curator through the test client, it times:

* the inbox page for the default 30 days and for 366 days (median of ``--repeat``);
* its parts: reading the missed questions (SQL), grouping them, and asking the desk about
  the 25 groups shown;
* accepting a phrasing (the knowledge change, the desk rebuilt, the period replayed twice);

and beside them what the same work costs done the plain way: the missed questions read
without the partial index on ``asks`` (a scan of the log), and the grouping comparing each
question with every group lead instead of only those sharing a word.
"""
from __future__ import annotations

import argparse
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from service import analytics, create_app, inbox  # noqa: E402
from service.accounts import create_user  # noqa: E402
from service.db import get_desk  # noqa: E402
from service.storage import connect, immediate  # noqa: E402
from service.tickets import _ASK_INSERT  # noqa: E402
from synth import MATTERS, OFFICES, PLACES  # noqa: E402

TODAY = date(2026, 11, 30)
BEIJING = timezone(timedelta(hours=8))
PASSWORD = "bench-Passw0rd-42"
STATUSES = ["answered"] * 75 + ["clarify"] * 10 + ["escalated"] * 15
WAYS = ["{p}{o}的{m}怎么办", "{m}去{p}{o}哪里办", "{p}{o}的{m}要多久", "{p}{m}收费吗{o}", "去{o}办{m}要带什么",
        "{p}{o}{m}能网上办吗", "我想问问{p}{o}{m}的事", "{m}进度怎么查{p}{o}", "{p}{o}{m}电话多少", "{m}被{p}{o}拒了怎么办"]


def wordings(n: int, rng: random.Random) -> list[str]:
    """``n`` different missed questions (at most the 288,000 combinations)."""
    n = min(n, len(WAYS) * len(PLACES) * len(MATTERS) * len(OFFICES))
    out: set[str] = set()
    while len(out) < n:
        out.add(rng.choice(WAYS).format(p=rng.choice(PLACES), o=rng.choice(OFFICES), m=rng.choice(MATTERS)))
    return sorted(out)


def fill(db_path: Path, size: int, distinct: int, seed: int = 11) -> float:
    """Fill the log and feedback; return the seconds it took."""
    rng = random.Random(seed)
    missed = wordings(distinct, rng)
    weights = [1 / (k + 1) for k in range(len(missed))]
    db = connect(db_path)
    started = time.perf_counter()

    def rows():  # type: ignore[no-untyped-def]
        first = datetime.combine(TODAY - timedelta(days=365), datetime.min.time(), BEIJING).astimezone(timezone.utc)
        step = 365 * 86400 / size
        picks = iter(rng.choices(missed, weights, k=size))
        for i in range(size):
            status = rng.choice(STATUSES)
            text = next(picks) if status != "answered" else "申请公开要收费吗"
            kind = "faq" if status == "answered" else None
            stamp = (first + timedelta(seconds=int(i * step))).isoformat(timespec="seconds")
            yield (stamp, f"s{i % 400_000}", text, text, status, kind, 28 if kind else None, None,
                   0.8, 20.0, None, f"t{i:010d}")

    with immediate(db):
        db.conn.executemany(_ASK_INSERT, rows())
        db.conn.executemany(
            "insert into feedback (ask_token, helpful, reason, created) "
            "select ask_token, ?, null, created from asks where id = ?",
            ((int(rng.random() < 0.7), i) for i in range(1, size + 1, 30)))
    db.close()
    return time.perf_counter() - started


def _median(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _all_pairs(questions, tokens, weight):  # type: ignore[no-untyped-def]
    """The plain grouping: every question against every group lead."""
    leads: list[dict[str, float]] = []
    for m in questions:
        own = {t: weight(t) for t in tokens(m.normalised)}
        best = max((inbox.similarity(own, lead) for lead in leads), default=0.0)
        if best < inbox.GROUP_SIMILARITY:
            leads.append(own)
    return leads


def run(size: int, repeat: int, distinct: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    path = folder / "inbox.db"
    app = create_app({"TESTING": True, "DATABASE": str(path), "INSTANCE_PATH": str(folder / "instance"),
                      "RATELIMIT_ENABLED": False, "TODAY": TODAY})
    with app.app_context():
        get_desk()
    print(f"\n== {size:,} logged questions, {distinct:,} different missed wordings ==")
    print(f"fill: {fill(path, size, distinct):.1f} s")
    create_user(connect(path), "bench", PASSWORD, "curator")
    client = app.test_client()
    page = client.get("/staff/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert client.post("/staff/login", data={"username": "bench", "password": PASSWORD,
                                             "csrf_token": token}).status_code == 302
    client.get("/staff/analytics")  # the daily rollups, built once (bench_analytics times that)

    for label, query in [("30 days", ""), ("366 days", "?from=2025-11-30&to=2026-11-30")]:
        first = _median(lambda: client.get("/staff/inbox" + query), 1)
        later = _median(lambda: client.get("/staff/inbox" + query), repeat)
        print(f"inbox page, {label}: first {first * 1000:,.0f} ms, later {later * 1000:,.0f} ms")

    db = connect(path)
    with app.app_context():
        desk = get_desk()
        for label, period in [("30 days", analytics.parse_period(None, None, TODAY)),
                              ("366 days", analytics.parse_period("2025-11-30", "2026-11-30", TODAY))]:
            read = _median(lambda: inbox.missed(db, period), repeat)
            listed = inbox.missed(db, period)
            found = listed.questions
            weight = inbox.word_weight(desk.pipeline.topic_rarity)
            grouping = _median(lambda: inbox.group(found, desk.tokens, weight), repeat)
            groups = inbox.group(found, desk.tokens, weight)
            def ask_leads() -> None:
                desk.clear_cache()  # as on a first view: the desk has not seen these questions
                for g in groups[:25]:
                    desk.ask(g.lead.question)

            asking = _median(ask_leads, repeat)
            plain_group = _median(lambda: _all_pairs(found, desk.tokens, weight), 1)
            db.execute("drop index asks_missed")
            plain_read = _median(lambda: inbox.missed(db, period), 1)
            db.execute("create index asks_missed on asks (created) where status in ('escalated', 'clarify')")
            print(f"{label}: {listed.distinct:,} missed wordings, the {len(found):,} most asked in {len(groups):,} groups | "
                  f"read {read * 1000:,.0f} ms (without the index {plain_read * 1000:,.0f} ms) | "
                  f"group {grouping * 1000:,.0f} ms (all pairs {plain_group * 1000:,.0f} ms) | "
                  f"desk on 25 leads {asking * 1000:,.0f} ms")

    page = client.get("/staff/inbox").get_data(as_text=True)
    block = page[page.index("未能答好的问题"):]
    keys = list(dict.fromkeys(re.findall(r'name="key" value="([^"]+)"', block[:block.index("</article>")])))
    question = re.search(r'<h3 id="g1-title">([^<]+)</h3>', block).group(1)  # type: ignore[union-attr]
    token = re.search(r'name="csrf_token" value="([^"]+)"', block).group(1)  # type: ignore[union-attr]
    started = time.perf_counter()
    done = client.post("/staff/inbox/phrasing", data={"csrf_token": token, "key": keys, "question": question,
                                                      "entry_id": "1"}, follow_redirects=False)
    accepted = time.perf_counter() - started
    change = connect(path).execute("select answered_before, answered_after, total, replayed "
                                   "from inbox_changes order by id desc").fetchone()
    print(f"add a phrasing (status {done.status_code}): {accepted * 1000:,.0f} ms, "
          f"replayed {change[3]:,} of {change[2]:,} questions twice")
    shutil.rmtree(folder, ignore_errors=True)  # gigabytes at ten million


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--distinct", type=int, default=20000)
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        run(size, args.repeat, args.distinct)


if __name__ == "__main__":
    main()
