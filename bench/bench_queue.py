"""How long the reviewers' lists take with 10,000, 100,000 and 1,000,000 tickets, old and new.

    python bench/bench_queue.py [--sizes 10000,100000,1000000] [--old-max 20000] [--repeat 5]

For each size a scratch database is filled the way the service fills it, in one
transaction per table: many distinct questions, some asked in many sessions (groups of
every size, one asked 20,000 times in a row by one session, as a flood would), every
status, 1% disclosure applications in every state of their clock (supplement, extension,
consultation, closed) and 2% general inquiries, two log rows per ticket and the events.
It is filled with the schema before migration 0009_ticket_queue, which is then applied
and timed: that is the backfill an existing database goes through.

Then each staff list is timed, the query as it was before issue 10 beside the new one
(median of ``--repeat`` runs; the old ones once each, and only up to ``--old-max``
tickets: they group every ticket for every row, and at 100,000 one page takes hours).
"Page" means what the reviewers' queue page computes: the rows, their count, and the
deadline of each application shown; the old page read every ticket to do so.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from service import applications, tickets  # noqa: E402
from service.views import staff_review as review  # noqa: E402
from service.migrations import MIGRATIONS, apply_migrations  # noqa: E402
from service.storage import connect, immediate  # noqa: E402
from test_queue_scale import _OLD_GROUP, _OLD_GROUPS  # noqa: E402  (the old queries, kept word for word)
from test_queue_scale import old_queue as _old_queue  # noqa: E402

TODAY = date(2026, 11, 30)
PER_PAGE = tickets.PAGE_SIZE
FLOOD = 20_000  # one session asking the same question this many times
TOPICS = ["居住证", "公租房", "低保", "养老金", "医保", "社保卡", "营业执照", "不动产登记", "户口迁移",
          "出生证明", "结婚登记", "护照", "驾驶证", "公积金", "失业金", "残疾证", "教师资格", "建筑许可", "排污许可",
          "食品经营许可"]
ASKS = ["怎么办理", "需要什么材料", "在哪里办", "多久能办好", "要收费吗", "可以网上办吗", "有什么条件",
        "过期了怎么办", "丢了怎么补", "能委托别人办吗"]
# status, share: most new, as when one address floods the desk
STATUS_MIX = [("new", 55), ("in_progress", 5), ("waiting", 3), ("answered", 20), ("closed", 17)]


# -- the queries before issue 10, word for word (as in tests/test_queue_scale.py) ----------------

def old_queue(db, *, per_page=PER_PAGE, **kwargs):  # type: ignore[no-untyped-def]
    """The queue query before migration 0009, as the tests keep it word for word."""
    return _old_queue(db, per_page=per_page, **kwargs)


def old_page(db, cal, *, status="open", kind="all", min_asked=1, order="newest", page=1):  # type: ignore[no-untyped-def]
    """review.index before issue 10: every matching row, every ticket's facts, the deadline
    of every application, then one page."""
    rows, _ = old_queue(db, status=status, min_asked=min_asked, order=order, page=1, per_page=1_000_000_000)
    facts = {r["id"]: dict(r) for r in db.query(
        "select id, status, kind, applicant_type, channel, received_on, supplement_requested_on, "
        "supplement_received_on, extension_days, extension_reason, outcome, outcome_on from tickets")}
    wanted = {"all": lambda k: True, "inquiry": lambda k: k == "inquiry",
              "application": lambda k: k == "application",
              "unclassified": lambda k: k not in ("inquiry", "application")}[kind]
    rows = [r for r in rows if wanted(facts[r["id"]]["kind"])]
    for row in rows:
        if facts[row["id"]]["kind"] == "application" and facts[row["id"]]["received_on"]:
            row["clock"] = review.clock_view(db, cal, facts[row["id"]], TODAY)
    rows.sort(key=lambda r: not (r.get("clock") and r["clock"]["overdue"]))
    return rows[(page - 1) * PER_PAGE:page * PER_PAGE], len(rows)


def old_ticket_page(db, ticket_id: int) -> int:  # type: ignore[no-untyped-def]
    """The ticket page's reads before issue 10 (the log had no index on ticket_id)."""
    ticket = dict(next(db.query(
        _OLD_GROUPS + "select t.*, a.username as assignee, r.username as replier, g.same_count, g.asked_total "
        f"from tickets t join groups g on g.grp = {_OLD_GROUP.format(t='t')} "
        "left join users a on a.id = t.assigned_to left join users r on r.id = t.replied_by "
        "where t.id = ?", [ticket_id])))
    similar = list(db.query(
        f"select id, code, question, status, created, asked_count from tickets where normalised = ? "
        f"and id != ? and status in ({', '.join('?' for _ in tickets.OPEN_STATUSES)}) order by id",
        [ticket["normalised"], ticket["id"], *tickets.OPEN_STATUSES]))
    events = list(db.query("select * from ticket_events where ticket_id = ? order by id", [ticket_id]))
    first = db.execute("select min(id) from asks not indexed where ticket_id = ?", [ticket_id]).fetchone()[0]
    history = list(db.query("select created, question, status from asks where session = ? and id < ? "
                            "order by id desc limit 20", [ticket["session"], first or 0]))
    return len(similar) + len(events) + len(history)


# -- the new ones: what review.index and review.show now do ---------------------------------

def new_page(db, cal, *, status="open", kind="all", min_asked=1, order="newest", page=1):  # type: ignore[no-untyped-def]
    applications.refresh_due_dates(db, cal)
    rows, total = tickets.queue(db, status=status, kind=kind, min_asked=min_asked, order=order,
                                today=TODAY.isoformat(), page=page, per_page=PER_PAGE)
    for row in rows:
        if row["kind"] == "application" and row["received_on"]:
            row["clock"] = review.clock_view(db, cal, row, TODAY)
    return rows, total


def new_ticket_page(db, ticket_id: int) -> int:  # type: ignore[no-untyped-def]
    ticket = tickets.get_ticket(db, ticket_id)
    similar = tickets.similar_open(db, ticket)
    events = tickets.events(db, ticket_id)
    count = tickets.event_count(db, ticket_id) if len(events) >= tickets.EVENTS_SHOWN else len(events)
    history = tickets.session_history(db, ticket)
    return len(similar) + count + len(history)


# -- the scratch database -----------------------------------------------------------------------

def _day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randrange((end - start).days))


def fill(path: Path, size: int, seed: int = 10) -> dict[str, float]:
    """A database of ``size`` tickets at schema 0008, then migrated; returns timings."""
    rng = random.Random(seed)
    db = connect(path)
    db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    for name, fn in sorted(MIGRATIONS):
        if name < "0009":
            fn(db)
            db["_migrations"].insert({"name": name, "applied_at": "2026-01-01T00:00:00+00:00"})
    db.execute("insert into users (id, username, password_hash, role, created) values "
               "(1, 'reviewer1', 'x', 'reviewer', '2025-01-01'), (2, 'reviewer2', 'x', 'reviewer', '2025-01-01')")
    started = time.perf_counter()
    popular = [f"{rng.choice(TOPICS)}{rng.choice(ASKS)}{''.join(chr(rng.randint(0x4e00, 0x9fa5)) for _ in range(2))}"
               for _ in range(max(50, size // 200))]
    weights = [1 / (k + 1) for k in range(len(popular))]
    statuses = [s for s, share in STATUS_MIX for _ in range(share)]
    opened = datetime(2025, 1, 1, tzinfo=timezone.utc)
    rows, events, asks, pauses = [], [], [], []
    flood_id = None
    for i in range(1, size + 1):
        if rng.random() < 0.3:
            question = rng.choices(popular, weights)[0]
        else:
            question = (f"{rng.choice(TOPICS)}{rng.choice(ASKS)}"
                        f"{''.join(chr(rng.randint(0x4e00, 0x9fa5)) for _ in range(4))}")
        asked = 1 if rng.random() < 0.85 else rng.randint(2, 5)
        if flood_id is None and question == popular[0]:
            flood_id, asked = i, FLOOD
        # About two years of tickets, in order of id give or take ten minutes.
        created = (opened + timedelta(seconds=int(i / size * 690 * 86400) + rng.randrange(600))).isoformat()
        status = rng.choice(statuses)
        kind = facts = None
        r = rng.random()
        if r < 0.01:
            kind = "application"
            received = _day(rng, date(2025, 1, 1), date(2026, 10, 31))
            requested = got = outcome = outcome_on = None
            extension = 0
            s = rng.random()
            if s < 0.1:
                requested = received + timedelta(days=3)
                got = received + timedelta(days=rng.randint(5, 30)) if rng.random() < 0.5 else None
                status = "waiting" if got is None else status
            elif s < 0.3:
                extension = rng.randint(5, 20)
            elif s < 0.35:
                end = received + timedelta(days=20) if rng.random() < 0.5 else None
                pauses.append((i, "third_party", (received + timedelta(days=5)).isoformat(),
                               end.isoformat() if end else None, "征求第三方意见"))
            if rng.random() < 0.6:
                outcome, outcome_on, status = "disclosed", (received + timedelta(days=25)).isoformat(), "closed"
            facts = ("natural", "post", received.isoformat(), requested and requested.isoformat(),
                     got and got.isoformat(), extension, "需要调取档案" if extension else None, outcome, outcome_on)
        elif r < 0.03:
            kind = "inquiry"
        session = f"s{i}"
        rows.append((i, f"GK{i:010d}", question, question, session, "[]", status, asked, created, created, "x",
                     rng.choice([None, None, 1, 2]), "138****1234" if rng.random() < 0.2 else None, kind,
                     *(facts or (None,) * 9)))
        events.append((i, created, None, "群众", "open", ""))
        events += [(i, created, None, "群众", "ask_again", "")] * (asked - 1)
        asks.append((created, session, "您好", "您好", "answered", "chitchat", None, None, 1.0, 10.0, None))
        asks += [(created, session, question, question, "escalated", "none", None, None, 0.1, 12.0, i)] * asked
    with immediate(db):
        db.conn.executemany(
            "insert into tickets (id, code, question, normalised, session, candidates, status, asked_count, created, "
            "updated, password_hash, assigned_to, contact_phone, kind, applicant_type, channel, received_on, "
            "supplement_requested_on, supplement_received_on, extension_days, extension_reason, outcome, outcome_on) "
            "values (" + ", ".join("?" * 23) + ")", rows)
        db.conn.executemany("insert into ticket_events (ticket_id, at, user_id, username, action, detail) "
                            "values (?, ?, ?, ?, ?, ?)", events)
        db.conn.executemany("insert into asks (created, session, question, normalised, status, kind, entry_id, ref, "
                            "confidence, latency_ms, ticket_id) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", asks)
        db.conn.executemany("insert into ticket_pauses (ticket_id, kind, start_on, end_on, reason) "
                            "values (?, ?, ?, ?, ?)", pauses)
    filled = time.perf_counter() - started
    started = time.perf_counter()
    with immediate(db):  # 0009 alone, as apply_migrations runs it
        dict(MIGRATIONS)["0009_ticket_queue"](db)
        db["_migrations"].insert({"name": "0009_ticket_queue", "applied_at": "2026-01-01T00:00:00+00:00"})
    migrated = time.perf_counter() - started
    apply_migrations(db)  # any later ones
    db.execute("analyze")
    db.close()
    return {"fill": filled, "migrate": migrated, "flood_id": float(flood_id or 1)}


# -- timing ---------------------------------------------------------------------------------------

def timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Median milliseconds of ``repeat`` runs."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def cases(db, cal, flood_id: int) -> list[tuple[str, object, object]]:  # type: ignore[no-untyped-def]
    """(name, old, new): each staff list, old and new, returning comparable results."""
    def pages(status: str, **kw):  # type: ignore[no-untyped-def]
        total = new_page(db, cal, status=status, **kw)[1]
        return -(-total // PER_PAGE) or 1

    last_open = pages("open")
    last_all = pages("all")
    return [
        ("queue status=all", lambda: old_page(db, cal, status="all"), lambda: new_page(db, cal, status="all")),
        ("queue open (default view)", lambda: old_page(db, cal), lambda: new_page(db, cal)),
        ("queue status=answered", lambda: old_page(db, cal, status="answered"),
         lambda: new_page(db, cal, status="answered")),
        ("queue open, min_asked=2", lambda: old_page(db, cal, min_asked=2), lambda: new_page(db, cal, min_asked=2)),
        ("queue all, min_asked=50", lambda: old_page(db, cal, status="all", min_asked=50),
         lambda: new_page(db, cal, status="all", min_asked=50)),
        ("queue answered, min_asked=2", lambda: old_page(db, cal, status="answered", min_asked=2),
         lambda: new_page(db, cal, status="answered", min_asked=2)),
        ("queue open, oldest first", lambda: old_page(db, cal, order="oldest"),
         lambda: new_page(db, cal, order="oldest")),
        ("queue open, last page", lambda: old_page(db, cal, page=last_open),
         lambda: new_page(db, cal, page=last_open)),
        ("queue all, middle page", lambda: old_page(db, cal, status="all", page=last_all // 2),
         lambda: new_page(db, cal, status="all", page=last_all // 2)),
        ("queue unclassified, open", lambda: old_page(db, cal, kind="unclassified"),
         lambda: new_page(db, cal, kind="unclassified")),
        ("applications, overdue first", lambda: old_page(db, cal, status="all", kind="application"),
         lambda: new_page(db, cal, status="all", kind="application")),
        ("applications by deadline", None, lambda: new_page(db, cal, kind="application", order="due")),
        ("all open by deadline", None, lambda: new_page(db, cal, order="due")),
        ("ticket page (flooded ticket)", lambda: old_ticket_page(db, flood_id), lambda: new_ticket_page(db, flood_id)),
        ("ticket page (single ticket)", lambda: old_ticket_page(db, 2), lambda: new_ticket_page(db, 2)),
    ]


def main() -> None:
    """Fill, migrate and time each size; print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--old-max", type=int, default=20_000, help="time the old queries up to this many tickets")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    cal = applications.default_calendar()
    results: dict[str, dict[int, tuple[float | None, float]]] = {}
    notes = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in sizes:
            path = Path(scratch) / f"queue-{size}.db"
            info = fill(path, size)
            db = connect(path)
            megabytes = path.stat().st_size / 1e6
            apps = db.execute("select count(*) from tickets where kind = 'application'").fetchone()[0]
            groups = db.execute("select count(*), max(same_count) from ticket_groups").fetchone()
            notes.append(f"{size:>9,} tickets: filled in {info['fill']:.1f} s, migration 0009 (backfill) "
                         f"{info['migrate']:.1f} s, {megabytes:,.0f} MB, {apps:,} applications, {groups[0]:,} "
                         f"question groups (largest {groups[1]:,}), {db.execute('select count(*) from asks').fetchone()[0]:,} "
                         "log rows")
            for name, old, new in cases(db, cal, int(info["flood_id"])):
                if old is not None and size <= args.old_max:
                    old_result, new_result = old(), new()
                    if isinstance(old_result, tuple):  # the same page and count
                        assert [r["id"] for r in old_result[0]] == [r["id"] for r in new_result[0]], name
                        assert old_result[1] == new_result[1], name
                    else:
                        assert new_result <= old_result, name  # the new page lists at most as many
                    old_ms: float | None = timed(old, 1)
                else:
                    old_ms = None
                results.setdefault(name, {})[size] = (old_ms, timed(new, args.repeat))
                print(f"  {size:>9,}  {name:<32} old {'—' if old_ms is None else f'{old_ms:,.1f}':>10} ms   "
                      f"new {results[name][size][1]:8.2f} ms", file=sys.stderr, flush=True)
            db.close()
            path.unlink()
    print()
    for note in notes:
        print(note)
    print(f"\nMilliseconds per page (old: once; new: median of {args.repeat}); "
          f"old queries timed up to {args.old_max:,} tickets only, — above.\n")
    header = "| list | " + " | ".join(f"{s:,} old | {s:,} new" for s in sizes) + " |"
    print(header)
    print("|" + "---|" * (1 + 2 * len(sizes)))
    for name, by_size in results.items():
        cells = []
        for size in sizes:
            old_ms, new_ms = by_size[size]
            cells += ["—" if old_ms is None else f"{old_ms:,.0f}", f"{new_ms:.1f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
