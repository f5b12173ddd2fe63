"""The reviewers' lists read from indexes (issue 10): the same results as the queries they
replace, the bookkeeping behind them (ticket groups, stored due dates), the migration that
backfills both, and the question log's ticket links across a restore.

The old queries are kept here word for word as references (``old_queue``, ``old_view``,
``old_group``). How fast the new ones are is measured in ``bench/bench_queue.py``.
"""
from __future__ import annotations

import random
import re
import sqlite3
from datetime import date

import pytest

from service import applications, storage, tickets
from service.views import staff_review as review
from service.deadlines import WorkCalendar
from service.migrations import MIGRATIONS, apply_migrations
from service.storage import connect

USER = {"id": 1, "username": "reviewer1"}
CAL = WorkCalendar()
TODAY = date(2026, 3, 16)
KEY = "test-key"  # query passwords by HMAC: the slow hash without a key would dominate the tests
QUEUE_STATUSES = ["open", *tickets.STATUSES, "all"]
KIND_FILTERS = ["all", "inquiry", "application", "unclassified"]

# -- the queries before issue 10, word for word ---------------------------------------------

_OLD_GROUP = "coalesce(nullif({t}.normalised, ''), 'id:' || {t}.id)"
_OLD_GROUPS = ("with groups as (select " + _OLD_GROUP.format(t="tickets") + " as grp, count(*) as same_count, "
               "sum(asked_count) as asked_total from tickets group by grp) ")


def old_queue(db, *, status="open", min_asked=1, order="newest", page=1, per_page=20):  # type: ignore[no-untyped-def]
    where, params = ["g.asked_total >= ?"], [max(1, min_asked)]
    if status == "open":
        where.append(f"t.status in ({', '.join('?' for _ in tickets.OPEN_STATUSES)})")
        params += tickets.OPEN_STATUSES
    elif status in tickets.STATUSES:
        where.append("t.status = ?")
        params.append(status)
    join = f"from tickets t join groups g on g.grp = {_OLD_GROUP.format(t='t')} "
    clause = "where " + " and ".join(where)
    total = db.execute(_OLD_GROUPS + "select count(*) " + join + clause, params).fetchone()[0]
    direction = "asc" if order == "oldest" else "desc"
    rows = db.query(
        _OLD_GROUPS + "select t.id, t.code, t.question, t.status, t.created, t.asked_count, t.contact_name, "
        "t.contact_phone, t.contact_email, u.username as assignee, g.same_count, g.asked_total " + join +
        "left join users u on u.id = t.assigned_to " + clause +
        f" order by t.created {direction}, t.id {direction} limit ? offset ?",
        [*params, per_page, (max(1, page) - 1) * per_page])
    return [dict(r) for r in rows], int(total)


def old_view(db, *, status, kind, min_asked, order, page, per_page):  # type: ignore[no-untyped-def]
    """What review.index listed before: every matching row, filtered by type, overdue
    applications moved first by deadlines computed in Python, then sliced."""
    rows, _ = old_queue(db, status=status, min_asked=min_asked, order=order, page=1, per_page=10 ** 9)
    facts = {r["id"]: dict(r) for r in db.query("select * from tickets")}
    wanted = {"all": lambda k: True, "inquiry": lambda k: k == "inquiry",
              "application": lambda k: k == "application",
              "unclassified": lambda k: k not in ("inquiry", "application")}[kind]
    rows = [r for r in rows if wanted(facts[r["id"]]["kind"])]
    for row in rows:
        fact = facts[row["id"]]
        if fact["kind"] == "application" and fact["received_on"]:
            row["clock"] = review.clock_view(db, CAL, fact, TODAY)
    rows.sort(key=lambda r: not (r.get("clock") and r["clock"]["overdue"]))
    return [r["id"] for r in rows[(page - 1) * per_page:page * per_page]], len(rows)


def old_group(db, ticket_id):  # type: ignore[no-untyped-def]
    row = db.execute(_OLD_GROUPS + "select g.same_count, g.asked_total from tickets t join groups g on g.grp = "
                     f"{_OLD_GROUP.format(t='t')} where t.id = ?", [ticket_id]).fetchone()
    return tuple(row)


def new_ticket(db, question: str, session: str | None = None,  # type: ignore[no-untyped-def]
               normalised: str | None = None) -> dict:
    """What the chat opens (or reuses) for a question it escalates."""
    return tickets.open_ticket(db, question=question, normalised=question if normalised is None else normalised,
                               session=session, candidates=[], secret=KEY)


def groups_recomputed(db) -> dict:  # type: ignore[no-untyped-def]
    """ticket_groups as it must be: one aggregate over every ticket."""
    return {r[0]: tuple(r[1:]) for r in db.execute(
        "select coalesce(nullif(normalised, ''), 'id:' || id), count(*), coalesce(sum(asked_count), 0), "
        f"total({tickets.OPEN_SQL}) from tickets group by 1")}


def groups_kept(db) -> dict:  # type: ignore[no-untyped-def]
    """ticket_groups as the triggers keep it."""
    return {r[0]: tuple(r[1:]) for r in db.execute("select grp, same_count, asked_total, open_count from ticket_groups")}


def counts_kept_and_recomputed(db) -> tuple[dict, dict]:  # type: ignore[no-untyped-def]
    """ticket_counts as the triggers keep it, and as it must be."""
    return (dict(db.execute("select status, n from ticket_counts where n != 0").fetchall()),
            dict(db.execute("select status, count(*) from tickets group by status").fetchall()))


# -- a small database with everything the lists distinguish -----------------------------------

@pytest.fixture
def db(tmp_path):  # type: ignore[no-untyped-def]
    database = connect(tmp_path / "queue.db")
    apply_migrations(database)
    database.execute("insert into users (id, username, password_hash, role, created) "
                     "values (1, 'reviewer1', 'x', 'reviewer', '2025-01-01')")
    return database


def fill(db, seed: int = 7, n: int = 150) -> list[int]:  # type: ignore[no-untyped-def]
    """``n`` tickets: repeated and single questions, empty normalisations, every status, equal
    timestamps; then applications in every state of their clock, and some inquiries."""
    rng = random.Random(seed)
    ids = []
    for i in range(n):
        r = rng.random()
        normalised = "" if r < 0.1 else f"常问{rng.randrange(5)}" if r < 0.45 else f"问题{rng.randrange(60)}"
        created = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T0{rng.randint(0, 2)}:00:00+00:00"
        cursor = db.execute(
            "insert into tickets (code, question, normalised, session, status, asked_count, created, updated, "
            "assigned_to, contact_phone) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [f"GK{i:010d}", normalised or f"无法规范化的问题{i}", normalised, f"s{i}",
             rng.choice(list(tickets.STATUSES)), rng.choice([1, 1, 1, 2, 3]), created, created,
             rng.choice([None, 1]), rng.choice([None, "13800001234"])])
        ids.append(cursor.lastrowid)
    chosen = rng.sample(ids, 40)
    for tid in chosen[:27]:
        received = date(2025, rng.randint(6, 12), rng.randint(1, 28))
        applications.convert(db, tid, USER, applicant_type="natural", channel="post", received_on=received,
                             cal=CAL)
        step = rng.random()
        if step < 0.15:
            applications.request_supplement(db, tid, USER, received, cal=CAL)
            if rng.random() < 0.5:
                applications.supplement_received(db, tid, USER, date(2026, 1, rng.randint(5, 30)), cal=CAL)
        elif step < 0.3:
            applications.start_pause(db, tid, USER, "third_party", date(2026, 1, 5), cal=CAL)
            if rng.random() < 0.5:
                applications.end_pause(db, tid, USER, date(2026, 1, 20), cal=CAL)
        elif step < 0.45:
            applications.extend(db, tid, USER, 20, "需要调取档案", cal=CAL)
        elif step < 0.6:
            applications.close(db, tid, USER, "disclosed", date(2026, 2, 2))
    # Due the day before TODAY (overdue), on TODAY (not yet) and the day after.
    for tid, received in zip(chosen[27:30], ["2026-02-09", "2026-02-10", "2026-02-11"]):
        applications.convert(db, tid, USER, applicant_type="natural", channel="post", received_on=received, cal=CAL)
    # Received late in 2026 and extended into 2027, whose holidays are unknown: no due date.
    applications.convert(db, chosen[30], USER, applicant_type="natural", channel="online",
                         received_on="2026-11-20", cal=CAL)
    applications.extend(db, chosen[30], USER, 20, "跨年", cal=CAL)
    for tid in chosen[31:]:
        applications.mark_inquiry(db, tid, USER, cal=CAL)
    return ids


def test_the_sample_covers_what_the_lists_distinguish(db) -> None:
    fill(db)
    states = {review.clock_view(db, CAL, dict(r), TODAY)["overdue"] for r in
              db.query("select * from tickets where kind = 'application' and outcome is null")}
    assert states == {True, False}
    assert db.execute("select count(*) from tickets where outcome is null and due_on = ?",
                      [TODAY.isoformat()]).fetchone()[0] == 1
    assert db.execute("select count(*) from tickets where due_on is null and kind = 'application'").fetchone()[0] >= 3
    assert db.execute("select count(*) from ticket_groups where same_count > 1").fetchone()[0] >= 5
    assert db.execute("select count(*) from (select created from tickets group by created having count(*) > 1)"
                      ).fetchone()[0] > 0
    assert {r[0] for r in db.execute("select distinct status from tickets")} == set(tickets.STATUSES)


@pytest.mark.parametrize("sparse_limit", [0, 10 ** 9])  # groups walked in ticket order, or read first
def test_queue_gives_what_the_old_query_gave(db, monkeypatch, sparse_limit: int) -> None:
    monkeypatch.setattr(tickets, "SPARSE_GROUPS", sparse_limit)
    fill(db)
    for status in QUEUE_STATUSES:
        for min_asked in (1, 2, 4, 7):
            for order in ("newest", "oldest"):
                _, old_total = old_queue(db, status=status, min_asked=min_asked, order=order)
                for page in range(1, old_total // 7 + 3):
                    old_rows, _ = old_queue(db, status=status, min_asked=min_asked, order=order, page=page, per_page=7)
                    new_rows, total = tickets.queue(db, status=status, min_asked=min_asked, order=order, page=page,
                                                    per_page=7)
                    assert total == old_total, (status, min_asked, order)
                    columns = old_rows[0].keys() if old_rows else ()
                    assert [{k: r[k] for k in columns} for r in new_rows] == old_rows, (status, min_asked, order, page)


@pytest.mark.parametrize("sparse_limit", [0, 10 ** 9])
def test_queue_by_type_with_overdue_first_gives_what_the_view_gave(db, monkeypatch, sparse_limit: int) -> None:
    monkeypatch.setattr(tickets, "SPARSE_GROUPS", sparse_limit)
    fill(db)
    for status in QUEUE_STATUSES:
        for kind in KIND_FILTERS:
            for min_asked in (1, 3):
                for order in ("newest", "oldest"):
                    _, old_total = old_view(db, status=status, kind=kind, min_asked=min_asked, order=order, page=1,
                                            per_page=6)
                    for page in range(1, old_total // 6 + 3):
                        old_ids, _ = old_view(db, status=status, kind=kind, min_asked=min_asked, order=order,
                                              page=page, per_page=6)
                        rows, total = tickets.queue(db, status=status, kind=kind, min_asked=min_asked, order=order,
                                                    today=TODAY.isoformat(), page=page, per_page=6)
                        assert (total, [r["id"] for r in rows]) == (old_total, old_ids), \
                            (status, kind, min_asked, order, page)


def test_queue_by_deadline_lists_running_clocks_first_earliest_first(db) -> None:
    fill(db)
    every = [dict(r) for r in db.query("select * from tickets")]
    for status in ("open", "all", "waiting"):
        for kind in ("all", "application", "unclassified"):
            matching = [r for r in every if (status == "all" or r["status"] == status or
                                             (status == "open" and r["status"] in tickets.OPEN_STATUSES))
                        and (kind == "all" or (r["kind"] == kind if kind != "unclassified"
                                               else r["kind"] not in ("inquiry", "application")))]
            running = sorted((r for r in matching if r["due_on"] and not r["outcome"]),
                             key=lambda r: (r["due_on"], r["id"]))
            rest = sorted((r for r in matching if not (r["due_on"] and not r["outcome"])),
                          key=lambda r: (r["created"], r["id"]), reverse=True)
            expected = [r["id"] for r in running + rest]
            listed = []
            for page in range(1, len(expected) // 5 + 2):
                rows, total = tickets.queue(db, status=status, kind=kind, order="due", page=page, per_page=5)
                assert total == len(expected)
                listed += [r["id"] for r in rows]
            assert listed == expected, (status, kind)
            if kind == "application" and status == "all":
                assert len(running) >= 5 and len(rest) >= 5  # both stretches, and a page across them


def test_the_ticket_page_counts_and_similar_tickets_as_before(db) -> None:
    ids = fill(db)
    for tid in ids:
        ticket = tickets.get_ticket(db, tid)
        assert (ticket["same_count"], ticket["asked_total"]) == old_group(db, tid)
        # The open tickets of the same question a reply can answer: never an application,
        # which is closed through its own workflow.
        old_similar = [dict(r) for r in db.query(
            "select id, code, question, status, created, asked_count from tickets where normalised = ? and id != ? "
            f"and status in ({', '.join('?' for _ in tickets.OPEN_STATUSES)}) "
            "and coalesce(kind, '') != 'application' order by id",
            [ticket["normalised"], tid, *tickets.OPEN_STATUSES])] if ticket["normalised"] else []
        assert tickets.similar_open(db, ticket) == old_similar
        assert tickets.similar_open_count(db, ticket) == len(old_similar)
        assert tickets.similar_open(db, ticket, limit=2) == old_similar[:2]


def test_a_ticket_page_shows_only_the_latest_events(db) -> None:
    first = new_ticket(db, "同一个问题", "s")
    for _ in range(tickets.EVENTS_SHOWN + 4):
        assert new_ticket(db, "同一个问题", "s")["reused"]
    shown = tickets.events(db, first["id"])
    assert len(shown) == tickets.EVENTS_SHOWN and tickets.event_count(db, first["id"]) == tickets.EVENTS_SHOWN + 5
    ids = [e["id"] for e in shown]
    assert ids == sorted(ids) and ids[-1] == db.execute("select max(id) from ticket_events").fetchone()[0]
    assert tickets.get_ticket(db, first["id"])["asked_total"] == tickets.EVENTS_SHOWN + 5


def test_group_counts_follow_every_change(db) -> None:
    fill(db, n=60)
    assert groups_kept(db) == groups_recomputed(db)
    rng = random.Random(3)
    for _ in range(200):
        tid = rng.choice([r[0] for r in db.execute("select id from tickets")])
        action = rng.randrange(6)
        if action == 0:  # the chat: a new ticket, or the same session asking again
            session = rng.choice(["a", "b", "c"])
            question = rng.choice(["常问0", "常问1", "新问题", ""])
            new_ticket(db, question or "？", session, normalised=question)
        elif action == 1:
            db.execute("update tickets set status = ? where id = ?", [rng.choice(list(tickets.STATUSES)), tid])
        elif action == 2:
            db.execute("update tickets set normalised = ? where id = ?", [rng.choice(["常问2", "", "问题1"]), tid])
        elif action == 3:
            db.execute("update tickets set asked_count = asked_count + ? where id = ?", [rng.randint(1, 3), tid])
        elif action == 4 and rng.random() < 0.3:
            db.execute("delete from ticket_events where ticket_id = ?", [tid])
            db.execute("delete from tickets where id = ?", [tid])
        else:
            db.execute("update tickets set question = question || '？', updated = 'x' where id = ?", [tid])
        assert groups_kept(db) == groups_recomputed(db), action
        kept, recomputed = counts_kept_and_recomputed(db)
        assert kept == recomputed, action
    assert db.execute("select count(*) from tickets where grp != coalesce(nullif(normalised, ''), 'id:' || id)"
                      ).fetchone()[0] == 0


def test_a_failed_transaction_leaves_the_groups_as_they_were(db) -> None:
    fill(db, n=60)
    before = groups_kept(db)
    with pytest.raises(RuntimeError):
        with storage.immediate(db):
            new_ticket(db, "常问0", "z")
            raise RuntimeError("rolled back")
    assert groups_kept(db) == before == groups_recomputed(db)


# -- the stored due date ----------------------------------------------------------------------

def _due(db, tid: int) -> str | None:  # type: ignore[no-untyped-def]
    return db.execute("select due_on from tickets where id = ?", [tid]).fetchone()[0]


def _computed(db, tid: int, cal: WorkCalendar = CAL) -> str | None:  # type: ignore[no-untyped-def]
    ticket = dict(next(db.query("select * from tickets where id = ?", [tid])))
    return applications.due_on(db, cal, ticket)


def test_the_due_date_column_follows_every_change_that_moves_it(db) -> None:
    tid = new_ticket(db, "申请公开文件")["id"]
    assert _due(db, tid) is None
    applications.convert(db, tid, USER, applicant_type="business", channel="post", received_on="2026-02-06")
    assert _due(db, tid) == "2026-03-12"  # counted by hand in tests/test_applications.py
    applications.convert(db, tid, USER, applicant_type="business", channel="post", received_on="2026-02-09")
    assert _due(db, tid) == _computed(db, tid) != "2026-03-12"  # a corrected date of receipt
    applications.request_supplement(db, tid, USER, "2026-02-10", "请明确所需文件名称")
    assert _due(db, tid) is None  # the clock stops
    applications.supplement_received(db, tid, USER, "2026-03-16")
    assert _due(db, tid) == "2026-04-14"
    applications.extend(db, tid, USER, 5, "需要调取历史档案")
    assert _due(db, tid) == _computed(db, tid) == "2026-04-21"
    applications.start_pause(db, tid, USER, "third_party", "2026-03-20", "涉及企业商业秘密")
    assert _due(db, tid) is None
    applications.end_pause(db, tid, USER, "2026-03-27")
    assert _due(db, tid) == "2026-04-28"
    applications.close(db, tid, USER, "disclosed", "2026-04-20")
    assert _due(db, tid) == "2026-04-28"  # kept; the lists leave out applications with an outcome
    other = new_ticket(db, "另一个")["id"]
    applications.convert(db, other, USER, applicant_type="natural", channel="online", received_on="2026-03-02")
    assert _due(db, other) is not None
    applications.mark_inquiry(db, other, USER)
    assert _due(db, other) is None


def test_a_new_calendar_computes_every_stored_due_date_again(db, tmp_path) -> None:
    fill(db)
    assert applications.refresh_due_dates(db, CAL) == 0  # the dates were stored with this calendar
    holidays = tmp_path / "holidays.toml"
    # A made-up day off in January 2026 moves every deadline running across it.
    holidays.write_text('[[year]]\nyear = 2026\nholidays = ["2026-01-14"]\nworkdays = []\n', encoding="utf-8")
    shifted = WorkCalendar.load(holidays)
    moved = applications.refresh_due_dates(db, shifted)
    assert moved > 0
    for (tid,) in db.execute("select id from tickets where kind = 'application'").fetchall():
        assert _due(db, tid) == _computed(db, tid, shifted)
    assert applications.refresh_due_dates(db, shifted) == 0
    # A change made with another calendar brings every stored date to that calendar.
    tid = db.execute("select id from tickets where kind = 'application' and outcome is null and due_on is not null "
                     "and extension_days = 0").fetchone()[0]
    applications.extend(db, tid, USER, 3, "再核实", cal=CAL)
    for (tid,) in db.execute("select id from tickets where kind = 'application'").fetchall():
        assert _due(db, tid) == _computed(db, tid, CAL)


# -- the migration -----------------------------------------------------------------------------

def test_the_migration_backfills_groups_and_due_dates_of_an_existing_database(tmp_path) -> None:
    db = connect(tmp_path / "old.db")
    db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    for name, fn in sorted(MIGRATIONS):
        if name < "0009":
            fn(db)
            db["_migrations"].insert({"name": name, "applied_at": "2026-01-01T00:00:00+00:00"})
    rng = random.Random(5)
    for i in range(80):
        normalised = rng.choice(["", "常问0", "常问1", f"问题{i}"])
        db.execute("insert into tickets (code, question, normalised, status, asked_count, created) "
                   "values (?, ?, ?, ?, ?, ?)", [f"GK{i:010d}", f"问{i}", normalised,
                                                 rng.choice(list(tickets.STATUSES)), rng.randint(1, 3),
                                                 f"2025-05-{i % 28 + 1:02d}T08:00:00+00:00"])
    # Applications as the code before due_on wrote them: facts only.
    db.execute("update tickets set kind = 'application', applicant_type = 'natural', channel = 'post', "
               "received_on = '2026-02-06', extension_days = 0 where id in (1, 2, 3)")
    db.execute("update tickets set supplement_requested_on = '2026-02-10', "
               "supplement_received_on = '2026-03-16', extension_days = 5 where id = 2")
    db.execute("insert into ticket_pauses (ticket_id, kind, start_on, end_on) values (3, 'consultation', "
               "'2026-02-10', null)")
    db.execute("update tickets set kind = 'inquiry', received_on = '2026-02-06' where id = 4")
    old_pages = [old_queue(db, status=s, min_asked=m, page=p, per_page=9)
                 for s in QUEUE_STATUSES for m in (1, 2, 4) for p in (1, 2, 3)]

    assert "0009_ticket_queue" in apply_migrations(db)
    assert groups_kept(db) == groups_recomputed(db)
    kept, recomputed = counts_kept_and_recomputed(db)
    assert kept == recomputed and sum(kept.values()) == 80
    assert [_due(db, i) for i in (1, 2, 3, 4, 5)] == ["2026-03-12", "2026-04-21", None, None, None]
    assert db.execute("select value from meta where key = ?", [applications.DUE_CALENDAR_KEY]).fetchone()[0] == \
        applications.default_calendar().fingerprint()
    new_pages = [tickets.queue(db, status=s, min_asked=m, page=p, per_page=9)
                 for s in QUEUE_STATUSES for m in (1, 2, 4) for p in (1, 2, 3)]
    for (old_rows, old_total), (rows, total) in zip(old_pages, new_pages):
        assert total == old_total and [r["id"] for r in rows] == [r["id"] for r in old_rows]
    indexes = {r[0] for r in db.execute("select name from sqlite_master where type = 'index'")}
    assert {"tickets_created", "tickets_open_created", "tickets_status_created", "tickets_running_due",
            "asks_ticket", "ticket_groups_asked"} <= indexes
    # And the triggers keep it so from now on.
    new_ticket(db, "常问0", "new")
    assert groups_kept(db) == groups_recomputed(db)


# -- no list sorts or counts every ticket when it need not ------------------------------------

def _plans(db, run) -> list[str]:  # type: ignore[no-untyped-def]
    """The query plans of the selects ``run`` sends."""
    sent: list[str] = []
    db.conn.set_trace_callback(sent.append)
    try:
        run()
    finally:
        db.conn.set_trace_callback(None)
    plans = []
    for sql in sent:
        if sql.lstrip().lower().startswith("select"):
            plans.append(" | ".join(r[3] for r in db.conn.execute("explain query plan " + sql)))
    return plans


@pytest.mark.parametrize("status", QUEUE_STATUSES)
@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_queue_pages_walk_an_index_in_order(db, status: str, order: str) -> None:
    fill(db, n=60)
    for kind in KIND_FILTERS:
        plans = _plans(db, lambda: tickets.queue(db, status=status, kind=kind, order=order,
                                                 today=TODAY.isoformat(), page=2, per_page=3))
        assert plans
        for plan in plans:
            sorts_all = "TEMP B-TREE" in plan and "tickets_running_due" not in plan  # only applications are sorted
            assert not sorts_all and "groups" not in plan.lower().replace("ticket_groups", ""), plan
            assert "SCAN t " not in plan.replace("SCAN t USING", ""), plan  # never the table itself


def test_the_ticket_page_reads_by_key(db) -> None:
    ids = fill(db, n=60)
    ticket = tickets.get_ticket(db, ids[0])
    for plan in _plans(db, lambda: (tickets.get_ticket(db, ids[0]), tickets.similar_open(db, ticket),
                                    tickets.session_history(db, ticket), tickets.events(db, ids[0]))):
        assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan


# -- the question log across a restore ---------------------------------------------------------

def _open(db, question: str) -> dict:  # type: ignore[no-untyped-def]
    return new_ticket(db, question, session=question)


def _record(ticket: dict, question: str, **extra) -> dict:  # type: ignore[no-untyped-def]
    return {"session": question, "question": question, "normalised": question, "status": "escalated",
            "ticket_id": ticket["id"], **extra}


def test_buffered_question_rows_keep_to_their_tickets_across_a_restore(tmp_path) -> None:
    path = tmp_path / "live.db"
    db = connect(path)
    apply_migrations(db)
    kept = _open(db, "备份之前的问题")
    storage.backup(path, tmp_path / "copy.db")
    lost = _open(db, "备份之后的问题")  # not in the copy
    log = tickets.AskLog()
    log.add(db, _record(kept, "备份之前的问题"), batch=100)
    log.add(db, _record(lost, "备份之后的问题"), batch=100)
    log.add(db, {"session": "x", "question": "不转人工的问题", "status": "answered"}, batch=100)
    assert log.pending == 3

    storage.restore(tmp_path / "copy.db", path)
    reused = _open(db, "恢复之后的另一个问题")
    assert reused["id"] == lost["id"]  # the restored database gives the id out again
    log.add(db, _record(reused, "恢复之后的另一个问题"), batch=100)
    assert log.flush(db) == 4

    links = dict(db.execute("select question, ticket_id from asks").fetchall())
    assert links == {"备份之前的问题": kept["id"], "备份之后的问题": None, "不转人工的问题": None,
                     "恢复之后的另一个问题": reused["id"]}


def test_a_question_row_given_its_ticket_code_needs_no_lookup(tmp_path) -> None:
    db = connect(tmp_path / "live.db")
    apply_migrations(db)
    ticket = _open(db, "问题")
    log = tickets.AskLog()
    log.add(db, _record(ticket, "问题", ticket_code="GK0000000000"), batch=100)  # a code that is not its ticket's
    log.add(db, _record(ticket, "问题", ticket_code=ticket["code"]), batch=100)
    log.flush(db)
    assert [r[0] for r in db.execute("select ticket_id from asks order by id")] == [None, ticket["id"]]


def test_question_rows_stay_buffered_when_writing_fails(tmp_path) -> None:
    db = connect(tmp_path / "live.db")
    apply_migrations(db)
    ticket = _open(db, "问题")
    log = tickets.AskLog()
    log.add(db, _record(ticket, "问题"), batch=100)
    db.execute("alter table asks rename to asks_away")
    with pytest.raises(sqlite3.OperationalError):
        log.flush(db)
    assert log.pending == 1
    db.execute("alter table asks_away rename to asks")
    assert log.flush(db) == 1
    assert db.execute("select ticket_id from asks").fetchone()[0] == ticket["id"]


# -- the page ----------------------------------------------------------------------------------

def test_the_queue_page_sorts_applications_by_deadline(app, client, auth) -> None:
    auth.login("reviewer1", "reviewer")
    app.config["TODAY"] = TODAY
    db = connect(app.config["DATABASE"])
    ids = [new_ticket(db, f"申请{i}")["id"] for i in range(4)]
    for tid, received in zip(ids, ["2026-02-13", "2026-02-06", "2026-03-13"]):
        applications.convert(db, tid, USER, applicant_type="natural", channel="post", received_on=received)
    codes = {tid: db.execute("select code from tickets where id = ?", [tid]).fetchone()[0] for tid in ids}
    page = client.get("/staff/tickets?status=all&order=due").get_data(as_text=True)
    listed = [c.replace("-", "") for c in re.findall(r'class="ticket-code">(GK[0-9A-Z-]{12})<', page)]
    # Due 12 Mar (overdue), 19 Mar, 13 Apr; then the inquiry that has no deadline.
    assert listed == [codes[ids[1]], codes[ids[0]], codes[ids[2]], codes[ids[3]]]
    assert "答复期限最近的在前" in page and 'class="overdue"' in page


def test_the_ticket_page_says_when_it_lists_only_part(app, client, auth, monkeypatch) -> None:
    monkeypatch.setattr(tickets, "SIMILAR_SHOWN", 2)
    monkeypatch.setattr(tickets, "EVENTS_SHOWN", 3)
    auth.login("reviewer1", "reviewer")
    db = connect(app.config["DATABASE"])
    first = new_ticket(db, "同一个问题", "s0")
    for _ in range(4):
        new_ticket(db, "同一个问题", "s0")  # asked again: an event each time
    others = [new_ticket(db, "同一个问题", f"s{i}") for i in range(1, 4)]
    page = client.get(f"/staff/tickets/{first['id']}").get_data(as_text=True)
    assert "共 3 张，这里列出最早的 2 张" in page
    assert [tickets.display_code(others[0]["code"]), tickets.display_code(others[1]["code"])] == \
        re.findall(r'name="also" value="\d+" checked>\s*<a [^>]*>(GK[\w-]+)<', page)
    assert "共 5 条记录，这里显示最近的 3 条" in page
    alone = new_ticket(db, "另一个问题", "s9")
    new_ticket(db, "另一个问题", "s8")
    page = client.get(f"/staff/tickets/{alone['id']}").get_data(as_text=True)
    assert "同时答复相同问题" in page and "这里列出" not in page and "这里显示" not in page
