"""How long the staff analytics page takes with 1,000,000 and 10,000,000 logged questions.

    python bench/bench_analytics.py [--sizes 1000000,10000000] [--repeat 5] [--keep DIR]

For each size a scratch database is made by the app factory (migrated, the knowledge
seeded), then filled in one transaction per table: the questions spread over the year
before TODAY (more on weekdays, the hours of a working day in Beijing), answered /
clarified / escalated 75 / 10 / 15 per cent, answered ones by FAQ entries with a
long-tailed popularity (a few entries are never hit), one in 30 rated 有用 or 没用,
and 200,000 tickets (fewer at 1M), most replied after an hour to a few weeks.

Then, through the test client and signed in as a reviewer, it times:

* the first view of the page: it rolls the whole log up into ``ask_daily``;
* later views (median of ``--repeat``), for the default 30 days and for 366 days;
* a view after a day's questions (30,000 rows) were logged since the last one;
* the CSV export of 30 and 366 days.

Last, the write cost the lazy rollup avoids: the ask log's batched inserts (64 rows per
transaction, as ``service.tickets.AskLog`` writes them) with and without a per-row trigger
that would keep the rollup instead.
"""
from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service import create_app  # noqa: E402
from service.accounts import create_user  # noqa: E402
from service.storage import connect, immediate  # noqa: E402
from service.tickets import _ASK_INSERT  # noqa: E402

TODAY = date(2026, 11, 30)
BEIJING = timezone(timedelta(hours=8))
PASSWORD = "bench-Passw0rd-42"
STATUSES = ["answered"] * 75 + ["clarify"] * 10 + ["escalated"] * 15
ANSWER_KINDS = ["faq"] * 70 + ["fact"] * 20 + ["chitchat"] * 5 + ["referral"] * 5
BATCH = 64


def fill(db_path: Path, size: int, seed: int = 7) -> dict[str, float]:
    """Fill the log, feedback and tickets; return the seconds each took."""
    rng = random.Random(seed)
    db = connect(db_path)
    entries = [r[0] for r in db.execute("select id from entries where status = 'published' order by id")]
    # Long tail: entry k is asked about in proportion to 1/(k+1); the last 5% never.
    popular = entries[: max(1, int(len(entries) * 0.95))]
    weights = [1 / (k + 1) for k in range(len(popular))]
    days = [TODAY - timedelta(days=d) for d in range(364, -1, -1)]
    day_weight = [1.0 if d.weekday() < 5 else 0.35 for d in days]
    per_day = _split(size, day_weight)
    timings: dict[str, float] = {}

    started = time.perf_counter()

    def rows():  # type: ignore[no-untyped-def]
        i = 0
        for day, n in zip(days, per_day):
            midnight = datetime.combine(day, datetime.min.time(), BEIJING).astimezone(timezone.utc)
            seconds = sorted(int(rng.triangular(7 * 3600, 23 * 3600, 14 * 3600)) for _ in range(n))
            entry_picks = rng.choices(popular, weights, k=n)
            for s, entry in zip(seconds, entry_picks):
                i += 1
                status = rng.choice(STATUSES)
                if status == "answered":
                    kind = rng.choice(ANSWER_KINDS)
                    entry_id = entry if kind == "faq" else None
                else:
                    kind, entry_id = ("handoff" if status == "escalated" else None), None
                stamp = (midnight + timedelta(seconds=s)).isoformat(timespec="seconds")
                yield (stamp, f"s{i % 400_000}", "问题", "问题", status, kind, entry_id, None,
                       0.8, 20.0 + (i % 50), None, f"t{i:010d}")

    with immediate(db):
        db.conn.executemany(_ASK_INSERT, rows())
    timings["fill asks"] = time.perf_counter() - started

    started = time.perf_counter()
    step = 30
    with immediate(db):
        db.conn.executemany(
            "insert into feedback (ask_token, helpful, reason, created) "
            "select ask_token, ?, null, created from asks where id = ?",
            ((int(rng.random() < 0.7), i) for i in range(1, size + 1, step)))
    timings["fill feedback"] = time.perf_counter() - started

    started = time.perf_counter()
    ticket_count = min(200_000, size // 50)
    first_day = datetime.combine(days[0], datetime.min.time(), timezone.utc)

    def tickets():  # type: ignore[no-untyped-def]
        for i in range(ticket_count):
            created = first_day + timedelta(seconds=rng.randrange(365 * 86400))
            replied = created + timedelta(hours=rng.expovariate(1 / 60)) if rng.random() < 0.8 else None
            yield (f"GKB{i:09d}", "问题", f"问题{i}", "new" if replied is None else "answered",
                   created.isoformat(timespec="seconds"), created.isoformat(timespec="seconds"),
                   replied.isoformat(timespec="seconds") if replied else None,
                   "application" if i % 50 == 0 else "inquiry")

    with immediate(db):
        db.conn.executemany("insert into tickets (code, question, normalised, status, created, updated, replied_at, kind) "
                            "values (?, ?, ?, ?, ?, ?, ?, ?)", tickets())
    timings["fill tickets"] = time.perf_counter() - started
    db.close()
    return timings


def _split(total: int, weights: list[float]) -> list[int]:
    whole = sum(weights)
    counts = [int(total * w / whole) for w in weights]
    counts[-1] += total - sum(counts)
    return counts


def _timed(fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def _client(app):  # type: ignore[no-untyped-def]
    client = app.test_client()
    page = client.get("/staff/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    response = client.post("/staff/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.status_code
    return client


def _get(client, url: str) -> int:  # type: ignore[no-untyped-def]
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(response.get_data())


def append_asks(db_path: Path, n: int, *, start: datetime, batch: int = BATCH) -> float:
    """Log ``n`` questions the way AskLog does (``batch`` rows per write transaction); seconds taken."""
    db = connect(db_path)
    rows = [((start + timedelta(seconds=i)).isoformat(timespec="seconds"), "s", "问题", "问题", "answered", "faq",
             1, None, 0.9, 30.0, None, f"x{start.timestamp():.0f}-{i}") for i in range(n)]
    started = time.perf_counter()
    for k in range(0, n, batch):
        with immediate(db):
            db.conn.executemany(_ASK_INSERT, rows[k:k + batch])
    took = time.perf_counter() - started
    db.close()
    return took


TRIGGER = ("create trigger bench_ask_daily after insert on asks begin "
           "insert into ask_daily (day, status, kind, entry_id, n, latency_ms) values "
           "(date(new.created, '+8 hours'), coalesce(new.status, ''), coalesce(new.kind, ''), "
           "coalesce(new.entry_id, 0), 1, coalesce(new.latency_ms, 0)) "
           "on conflict (day, status, kind, entry_id) do update set n = n + 1, "
           "latency_ms = latency_ms + excluded.latency_ms; end")


def run(size: int, folder: Path, repeat: int) -> None:
    db_path = folder / f"analytics-{size}.db"
    app = create_app({"TESTING": True, "DATABASE": str(db_path), "RATELIMIT_ENABLED": False,
                      "INSTANCE_PATH": str(folder / "instance"), "TODAY": TODAY})
    with app.app_context():
        from service.db import get_db

        create_user(get_db(), "bench", PASSWORD, "reviewer")
    print(f"\n== {size:,} logged questions ==")
    for what, seconds in fill(db_path, size).items():
        print(f"{what:<34}{seconds:9.1f} s")
    print(f"{'database size':<34}{db_path.stat().st_size / 1e9:9.2f} GB")
    client = _client(app)
    last30 = "/staff/analytics"
    year = f"/staff/analytics?from={(TODAY - timedelta(days=365)).isoformat()}&to={TODAY.isoformat()}"

    took, length = _timed(lambda: _get(client, last30))
    print(f"{'first view (builds the rollup)':<34}{took * 1000:9.0f} ms  ({length:,} bytes)")
    db = connect(db_path)
    print(f"{'rollup rows (ask_daily)':<34}{db.execute('select count(*) from ask_daily').fetchone()[0]:9,}")
    db.close()
    for label, url in (("later view, 30 days", last30), ("later view, 366 days", year),
                       ("CSV, 30 days", last30.replace("analytics", "analytics.csv")),
                       ("CSV, 366 days", year.replace("analytics?", "analytics.csv?"))):
        times = [_timed(lambda: _get(client, url))[0] for _ in range(repeat)]
        print(f"{label:<34}{statistics.median(times) * 1000:9.0f} ms  (median of {repeat})")

    today_start = datetime.combine(TODAY, datetime.min.time(), BEIJING).astimezone(timezone.utc)
    append_asks(db_path, 30_000, start=today_start)
    took, _ = _timed(lambda: _get(client, last30))
    print(f"{'view after 30,000 new questions':<34}{took * 1000:9.0f} ms")

    # The write cost of the alternative: a trigger keeping the rollup on every insert.
    n = 64 * 400
    plain = append_asks(db_path, n, start=today_start + timedelta(hours=1))
    db = connect(db_path)
    db.execute(TRIGGER)
    db.close()
    triggered = append_asks(db_path, n, start=today_start + timedelta(hours=2))
    db = connect(db_path)
    db.execute("drop trigger bench_ask_daily")
    db.close()
    print(f"{'log write, 64-row batches':<34}{plain / n * 1e6:9.1f} µs per question")
    print(f"{'  the same with a rollup trigger':<34}{triggered / n * 1e6:9.1f} µs per question "
          f"(+{(triggered - plain) / plain * 100:.0f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="a folder to keep the scratch databases in")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for size in (int(s) for s in args.sizes.split(",")):
            run(size, folder, args.repeat)


if __name__ == "__main__":
    main()
