"""Numbered schema migrations, applied in order at start-up and recorded in ``_migrations``.

Never edit a migration that has shipped: add a new one.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import sqlite_utils

from . import pg
from .storage import immediate, is_postgres

Migration = Callable[[sqlite_utils.Database], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(name: str) -> Callable[[Migration], Migration]:
    """Register a migration under a name that sorts in the order it must run."""

    def register(fn: Migration) -> Migration:
        MIGRATIONS.append((name, fn))
        return fn

    return register


@migration("0001_initial")
def _initial(db: sqlite_utils.Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["entries"].create(
        {"id": int, "key": str, "question": str, "answer": str, "category": str, "source": str,
         "status": str, "version": int, "created": str, "updated": str},
        pk="id", not_null={"question", "answer", "status"}, defaults={"version": 1},
    )
    db["entries"].create_index(["key"], unique=True)
    db["entries"].create_index(["status"])
    db["alternates"].create(
        {"id": int, "entry_id": int, "text": str, "created": str},
        pk="id", foreign_keys=[("entry_id", "entries", "id")], not_null={"entry_id", "text"},
    )
    db["alternates"].create_index(["entry_id"])
    db["lexicon_words"].create({"word": str, "freq": int, "created": str}, pk="word")
    db["synonyms"].create({"term": str, "canonical": str, "created": str}, pk="term")
    db["reports"].create(
        {"id": int, "agency": str, "year": int, "title": str, "format": str,
         "source_name": str, "problems": str, "imported_at": str},
        pk="id", not_null={"agency", "year"},
    )
    db["reports"].create_index(["agency", "year"], unique=True)
    db["facts"].create(
        {"id": int, "report_id": int, "tbl": str, "row_key": str, "row_label": str,
         "col_key": str, "col_label": str, "value": float, "unit": str, "section": str},
        pk="id", foreign_keys=[("report_id", "reports", "id")],
    )
    db["facts"].create_index(["report_id", "row_key", "col_key"], unique=True)
    db["passages"].create(
        {"id": int, "report_id": int, "position": int, "section": str, "context": str, "text": str},
        pk="id", foreign_keys=[("report_id", "reports", "id")],
    )
    db["passages"].create_index(["report_id"])
    db["tickets"].create(
        {"id": int, "code": str, "question": str, "normalised": str, "session": str,
         "candidates": str, "status": str, "asked_count": int, "created": str, "updated": str},
        pk="id", not_null={"code", "question", "status"}, defaults={"asked_count": 1},
    )
    db["tickets"].create_index(["code"], unique=True)
    db["tickets"].create_index(["session", "normalised"])
    db["asks"].create(
        {"id": int, "created": str, "session": str, "question": str, "normalised": str,
         "status": str, "kind": str, "entry_id": int, "ref": str, "confidence": float,
         "latency_ms": float, "ticket_id": int},
        pk="id",
    )
    db["asks"].create_index(["session", "id"])


@migration("0002_staff")
def _staff(db: sqlite_utils.Database) -> None:
    db["users"].create(
        {"id": int, "username": str, "password_hash": str, "role": str, "active": int,
         "failed_logins": int, "locked_until": str, "last_login": str, "created": str, "updated": str},
        pk="id", not_null={"username", "password_hash", "role"},
        defaults={"active": 1, "failed_logins": 0},
    )
    db["users"].create_index(["username"], unique=True)
    db["audit_log"].create(
        {"id": int, "at": str, "user_id": int, "username": str, "action": str, "target": str,
         "before": str, "after": str},
        pk="id",
    )
    db["audit_log"].create_index(["at"])


@migration("0003_ticket_review")
def _ticket_review(db: sqlite_utils.Database) -> None:
    # Citizen side: a short query password (stored hashed) and optional contact details.
    # Review side: who holds the ticket, the reply the citizen sees, and a history.
    tickets = db["tickets"]
    for column, kind in [("password_hash", str), ("contact_name", str), ("contact_phone", str),
                         ("contact_email", str), ("assigned_to", int), ("reply", str),
                         ("replied_at", str), ("replied_by", int), ("closed_at", str)]:
        tickets.add_column(column, kind)
    tickets.create_index(["status"])
    tickets.create_index(["normalised"])
    db["ticket_events"].create(
        {"id": int, "ticket_id": int, "at": str, "user_id": int, "username": str, "action": str,
         "detail": str},
        pk="id", foreign_keys=[("ticket_id", "tickets", "id")],
    )
    db["ticket_events"].create_index(["ticket_id"])
    db["ticket_lookups"].create({"key": str, "failures": int, "last_at": str}, pk="key")


@migration("0004_applications")
def _applications(db: sqlite_utils.Database) -> None:
    # A ticket is a general inquiry (一般咨询) or a formal disclosure application
    # (政府信息公开申请) with the facts its statutory deadline depends on.
    tickets = db["tickets"]
    for column, kind in [("kind", str), ("applicant_type", str), ("channel", str), ("received_on", str),
                         ("supplement_requested_on", str), ("supplement_received_on", str),
                         ("extension_days", int), ("extension_reason", str), ("outcome", str),
                         ("outcome_on", str)]:
        tickets.add_column(column, kind)
    tickets.create_index(["kind", "received_on"])
    db["ticket_pauses"].create(
        {"id": int, "ticket_id": int, "kind": str, "start_on": str, "end_on": str, "reason": str},
        pk="id", foreign_keys=[("ticket_id", "tickets", "id")],
    )
    db["ticket_pauses"].create_index(["ticket_id"])


@migration("0005_session_context")
def _session_context(db: sqlite_utils.Database) -> None:
    # The report figure a conversation asked about last, for follow-ups (那2020年呢),
    # kept apart from the analytics log so that the log can be written in batches.
    db["session_context"].create({"session": str, "ref": str, "at": str}, pk="session")


@migration("0006_paraphrases")
def _paraphrases(db: sqlite_utils.Database) -> None:
    # Citizens' wordings rewritten to the knowledge's before tokenising (点样 -> 怎样);
    # seeded from knowledge/paraphrases.toml, then edited by curators.
    db["paraphrases"].create({"variant": str, "standard": str, "section": str, "created": str},
                             pk="variant")


@migration("0007_blank_cells")
def _blank_cells(db: sqlite_utils.Database) -> None:
    # A cell the report left empty is "not stated", which an answer must not give as 0.
    db["facts"].add_column("blank", int, not_null_default=0)


@migration("0008_staff_sessions")
def _staff_sessions(db: sqlite_utils.Database) -> None:
    # Staff sessions live on the server: the cookie carries only a random token whose hash
    # is kept here, so logout, disabling an account, a role or password change, or an
    # admin can end a session at once.
    db["staff_sessions"].create(
        {"id": str, "user_id": int, "created": str, "last_seen": str, "expires": str,
         "address": str, "agent": str, "ended": str, "ended_why": str},
        pk="id", foreign_keys=[("user_id", "users", "id")], not_null={"user_id", "created", "expires"},
    )
    db["staff_sessions"].create_index(["user_id", "ended"])
    # Failed sign-ins per account *and* address, so that nobody can lock out an owner.
    db["login_failures"].create({"key": str, "failures": int, "last_at": str}, pk="key")


@migration("0010_mask_personal_numbers")
def _mask_personal_numbers(db: sqlite_utils.Database) -> None:
    # Questions are masked before they are stored (service/privacy.py); mask what was
    # stored before that, in the log, the tickets and any phrasing promoted from them,
    # a batch of rows at a time (the log may hold millions).
    from .privacy import mask_personal

    for table, columns in (("asks", ("question", "normalised")), ("tickets", ("question", "normalised")),
                           ("alternates", ("text",))):
        has_digit = " or ".join(f"{c} ~ '[0-9０-９@＠]'" if is_postgres(db) else f"{c} glob '*[0-9０-９@＠]*'"
                                for c in columns)
        last = 0
        while True:
            rows = db.execute(f"select id, {', '.join(columns)} from {table} where id > ? and ({has_digit}) "
                              "order by id limit 5000", [last]).fetchall()
            if not rows:
                break
            last = rows[-1][0]
            for row in rows:
                masked = [mask_personal(v) if isinstance(v, str) else v for v in row[1:]]
                if masked != list(row[1:]):
                    db.execute(f"update {table} set {', '.join(c + ' = ?' for c in columns)} where id = ?",
                               [*masked, row[0]])


@migration("0009_ticket_queue")
def _ticket_queue(db: sqlite_utils.Database) -> None:
    # The reviewers' lists page in SQL over indexes, however many tickets there are. A
    # ticket's group (the same normalised question; an empty one groups nothing) is a
    # column; each group's counts (ticket_groups) and the number of tickets in each status
    # (ticket_counts) are kept by triggers, in the same transaction as any insert, delete
    # or change of a ticket's question, count or status.
    opened = "status in ('new', 'in_progress', 'waiting')"  # as tickets.OPEN_SQL writes it
    db.execute("alter table tickets add column grp text "
               "generated always as (coalesce(nullif(normalised, ''), 'id:' || id)) virtual")
    db.execute("create table ticket_groups (grp text primary key, same_count integer not null, "
               "asked_total integer not null, open_count integer not null) without rowid")
    db.execute("insert into ticket_groups (grp, same_count, asked_total, open_count) "
               f"select grp, count(*), coalesce(sum(asked_count), 0), total({opened}) from tickets group by grp")
    if is_postgres(db):
        _ticket_queue_triggers_pg(db, opened)
    else:
        join = (f"insert into ticket_groups (grp, same_count, asked_total, open_count) "
                f"values (new.grp, 1, coalesce(new.asked_count, 0), coalesce(new.{opened}, 0)) "
                "on conflict (grp) do update set same_count = same_count + 1, "
                "asked_total = asked_total + excluded.asked_total, open_count = open_count + excluded.open_count;")
        leave = ("update ticket_groups set same_count = same_count - 1, "
                 "asked_total = asked_total - coalesce(old.asked_count, 0), "
                 f"open_count = open_count - coalesce(old.{opened}, 0) "
                 "where grp = old.grp; delete from ticket_groups where grp = old.grp and same_count <= 0;")
        db.execute(f"create trigger tickets_group_insert after insert on tickets begin {join} end")
        db.execute("create trigger tickets_group_update after update of id, normalised, asked_count, status on tickets "
                   f"begin {leave} {join} end")
        db.execute(f"create trigger tickets_group_delete after delete on tickets begin {leave} end")
        db.execute("create table ticket_counts (status text primary key, n integer not null) without rowid")
        db.execute("insert into ticket_counts (status, n) select status, count(*) from tickets group by status")
        add = ("insert into ticket_counts (status, n) values (new.status, 1) "
               "on conflict (status) do update set n = n + 1;")
        remove = "update ticket_counts set n = n - 1 where status = old.status;"
        db.execute(f"create trigger tickets_count_insert after insert on tickets begin {add} end")
        db.execute(f"create trigger tickets_count_update after update of status on tickets begin {remove} {add} end")
        db.execute(f"create trigger tickets_count_delete after delete on tickets begin {remove} end")
    db.execute("create index ticket_groups_asked on ticket_groups (asked_total, same_count, open_count)")
    # One index per way the queue is read: all, open, one status, one type; a group's tickets.
    db.execute("create index tickets_created on tickets (created, id)")
    db.execute("create index tickets_status_created on tickets (status, created, id)")
    db.execute(f"create index tickets_open_created on tickets (created, id) where {opened}")
    db.execute("create index tickets_kind_created on tickets (kind, created, id)")
    db.execute("create index tickets_kind_status on tickets (kind, status)")
    db.execute("create index tickets_grp_status on tickets (grp, status)")
    db.execute(f"create index tickets_open_grp on tickets (grp, id) where {opened}")
    db.execute("drop index if exists idx_tickets_status")  # a prefix of tickets_status_created
    # The reply deadline of an application, stored so that lists sort and page by it in SQL.
    db.execute("alter table tickets add column due_on text")
    db.execute("create index tickets_running_due on tickets (due_on, id, status, kind, created) "
               "where due_on is not null and outcome is null")
    from .applications import default_calendar, store_due_dates

    store_due_dates(db, default_calendar())
    # The ticket page finds the first question of its ticket in the log.
    db.execute("create index asks_ticket on asks (ticket_id) where ticket_id is not null")
    # The audit log page filters by user, action or target, newest first.
    for column in ("username", "action", "target"):
        db.execute(f"create index audit_log_{column} on audit_log ({column}, id)")


def _ticket_queue_triggers_pg(db: sqlite_utils.Database, opened: str) -> None:
    """Migration 0009's triggers in PL/pgSQL: the same counts, kept in the same transaction."""
    db.execute("create table ticket_counts (status text primary key, n integer not null)")
    db.execute("insert into ticket_counts (status, n) select status, count(*) from tickets group by status")
    is_open = f"(case when {{row}}.{opened} then 1 else 0 end)"
    db.execute(f"""create function tickets_queue_counts() returns trigger language plpgsql as $$
    begin
      if tg_op in ('UPDATE', 'DELETE') then
        update ticket_groups set same_count = same_count - 1,
               asked_total = asked_total - coalesce(old.asked_count, 0),
               open_count = open_count - {is_open.format(row='old')}
         where grp = old.grp;
        delete from ticket_groups where grp = old.grp and same_count <= 0;
        if tg_op = 'DELETE' or old.status is distinct from new.status then
          update ticket_counts set n = n - 1 where status = old.status;
        end if;
      end if;
      if tg_op in ('INSERT', 'UPDATE') then
        insert into ticket_groups as g (grp, same_count, asked_total, open_count)
        values (new.grp, 1, coalesce(new.asked_count, 0), {is_open.format(row='new')})
        on conflict (grp) do update set same_count = g.same_count + 1,
          asked_total = g.asked_total + excluded.asked_total, open_count = g.open_count + excluded.open_count;
        if tg_op = 'INSERT' or old.status is distinct from new.status then
          insert into ticket_counts as c (status, n) values (new.status, 1)
          on conflict (status) do update set n = c.n + 1;
        end if;
      end if;
      return null;
    end $$""")
    db.execute("create trigger tickets_queue_counts after insert or delete or update of id, normalised, "
               "asked_count, status on tickets for each row execute function tickets_queue_counts()")


@migration("0011_feedback")
def _feedback(db: sqlite_utils.Database) -> None:
    # Each answer's random token (its ask_id, signed, is what the client holds: see
    # service/feedback.py), kept with the question so that feedback can be joined to it.
    db.execute("alter table asks add column ask_token text")
    db.execute("create unique index asks_ask_token on asks (ask_token)")
    # One feedback per answer, keyed by the token: the question's row may not be written
    # yet when the feedback arrives (the log is batched per worker).
    db.execute("create table feedback (ask_token text primary key, helpful integer not null, "
               "reason_code text, reason text, created text not null"
               # service/analytics.py reads feedback in the order it arrived, by SQLite's rowid.
               + (", rowid bigint generated by default as identity unique)" if is_postgres(db) else ")"))
    db.execute("create index feedback_created on feedback (created)")
    # The citizen's rating of a ticket's reply (satisfied / mostly / unsatisfied), given once.
    db.execute("alter table tickets add column satisfaction text")
    db.execute("alter table tickets add column satisfaction_at text")


@migration("0012_ask_rollups")
def _ask_rollups(db: sqlite_utils.Database) -> None:
    # Questions per Beijing day, answer status, kind and FAQ entry (kind '' and entry 0
    # where the log has none), for the analytics page: filled lazily from the log by
    # service/analytics.py past a high-water mark of asks.id, never by a trigger on the
    # ask path. Left empty here, so that start-up does not wait on a large log.
    db.execute("create table ask_daily (day text not null, status text not null, kind text not null, "
               "entry_id integer not null, n integer not null, latency_ms real not null default 0, "
               "primary key (day, status, kind, entry_id)) without rowid")
    # 有用 / 没用 per Beijing day and FAQ entry (0: none), filled the same way past a mark
    # of feedback's rowid, once a rating is old enough for its question to be logged.
    db.execute("create table feedback_daily (day text not null, entry_id integer not null, "
               "helpful integer not null, unhelpful integer not null, primary key (day, entry_id)) without rowid")
    # The slowest-answered tickets of a period are those replied in it: the index holds
    # each one's time to reply (the expression as service/analytics.py writes it), so a
    # year's tickets are ranked and averaged without reading the table.
    days = "julianday(replied_at) - julianday(created)"
    if is_postgres(db):
        days = f"({days})"  # PostgreSQL indexes an expression only in parentheses
    db.execute(f"create index tickets_reply_days on tickets (replied_at, {days}) where replied_at is not null")


@migration("0013_inbox")
def _inbox(db: sqlite_utils.Database) -> None:
    # The curators' inbox (service/inbox.py) reads the period's missed questions by date.
    db.execute("create index asks_missed on asks (created) where status in ('escalated', 'clarify')")
    # A citizen's pick of a "did you mean" suggestion: one per answer, keyed like feedback
    # by the answer's token (its question may not be logged yet: the log is batched).
    db.execute("create table suggestion_picks (ask_token text primary key, entry_id integer not null, "
               "created text not null)")
    db.execute("create index suggestion_picks_created on suggestion_picks (created)")
    # A curator's word on a suggested pair (question, entry): accepted or rejected, once.
    db.execute("create table suggestion_decisions (normalised text not null, entry_id integer not null, "
               "decision text not null, username text, decided_at text not null, "
               "primary key (normalised, entry_id)) without rowid")
    # Missed questions a curator dealt with: added as a phrasing, drafted, or dismissed.
    db.execute("create table inbox_marks (normalised text primary key, action text not null, "
               "entry_id integer, username text, marked_at text not null)")
    # What each accepted phrasing did to the answered share (replayed before and after).
    db.execute("create table inbox_changes (id integer primary key, at text not null, username text, "
               "action text not null, entry_id integer, question text, period_start text, period_end text, "
               "total integer not null, "
               "replayed integer not null, answered_before integer not null, answered_after integer not null)")


@migration("0015_entry_versions")
def _entry_versions(db: sqlite_utils.Database) -> None:
    import json  # only this migration stores JSON

    # One snapshot per saved version of an FAQ entry (service/entry_versions.py): its
    # fields and alternates as JSON, who saved it and how, so any version can be restored.
    db.execute("create table entry_versions (id integer primary key, entry_id integer not null, "
               "version integer not null, action text not null, user_id integer, username text, "
               "at text not null, note text, snapshot text not null, unique (entry_id, version))")
    # Existing entries start their history with their content as it is now.
    alternates: dict[int, list[str]] = {}
    for entry_id, text in db.execute("select entry_id, text from alternates order by id"):
        alternates.setdefault(entry_id, []).append(text)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for row in db.query("select id, key, question, answer, category, source, status, version, updated "
                        "from entries order by id"):
        snapshot = {k: row[k] for k in ("key", "question", "answer", "category", "source", "status")}
        snapshot.update(version=row["version"] or 1, alternates=alternates.get(row["id"], []))
        db.execute("insert into entry_versions (entry_id, version, action, at, snapshot) values (?, ?, ?, ?, ?)",
                   [row["id"], row["version"] or 1, "backfill", row["updated"] or stamp,
                    json.dumps(snapshot, ensure_ascii=False)])


@migration("0016_reviewers_desk")
def _reviewers_desk(db: sqlite_utils.Database) -> None:
    # Canned replies (常用答复) that curators keep and reviewers pick into a reply.
    db.execute("create table canned_replies (id integer primary key, title text not null, body text not null, "
               "created text not null, updated text not null, updated_by text)")
    db.execute("create unique index canned_replies_title on canned_replies (title)")
    # E-mails telling citizens their answer is ready: sent at once, kept with the failure
    # when the mail server refused, so that no reviewer's action fails because of it.
    db.execute("create table mail_outbox (id integer primary key, ticket_id integer not null, "
               "recipient text not null, subject text not null, body text not null, created text not null, "
               "sent_at text, attempts integer not null default 0, error text)")
    db.execute("create index mail_outbox_unsent on mail_outbox (id) where sent_at is null")
    # 我的工单: one reviewer's tickets, newest first.
    db.execute("create index tickets_assignee_created on tickets (assigned_to, created, id)")


@migration("0014_remedies")
def _remedies(db: sqlite_utils.Database) -> None:
    # Administrative review and litigation over an application (table 四, service/remedies.py):
    # kind, filing date, result ('pending' until decided) and the decision's date.
    db.execute("create table remedies (id integer primary key, ticket_id integer not null, kind text not null, "
               "filed_on text not null, result text not null default 'pending', decided_on text, note text, "
               "created text not null, updated text not null, updated_by text)")
    db.execute("create index remedies_ticket on remedies (ticket_id)")
    # The drafted annual report (service/annual_report.py): the agency's name per year, the
    # table 二 figures staff enter, and the narrative paragraphs of each section.
    db.execute("create table annual_reports (year integer primary key, agency text not null, "
               "updated text not null, updated_by text)")
    db.execute("create table annual_report_figures (year integer not null, row_key text not null, "
               "col_key text not null, value real not null, primary key (year, row_key, col_key)) without rowid")
    db.execute("create table annual_report_texts (year integer not null, section text not null, body text not null, "
               "primary key (year, section)) without rowid")


@migration("0017_knowledge_changes")
def _knowledge_changes(db: sqlite_utils.Database) -> None:
    # What each knowledge version changed (an entry, a synonym, a report, or everything), so
    # that a worker or another host a few versions behind updates its index for those
    # changes only, and rebuilds in the background when the log cannot tell it.
    db.execute("create table knowledge_changes (version integer primary key, kind text not null, "
               "ref text, created text not null)")


@migration("0018_phrasing_keys")
def _phrasing_keys(db: sqlite_utils.Database) -> None:
    # Each phrasing's comparison key (service/faq.py ``same_key``), so that the warning
    # "another entry has the same phrasing" is an indexed lookup: worked out from every
    # phrasing on each save, it took 7 s at 100,000 entries and held a worker that long.
    # A key is NULL until service/faq.py works it out (at the first lookup: a migration
    # calls no code that may change later); a changed text resets it here.
    db.execute("alter table entries add column same_key text")
    db.execute("alter table alternates add column same_key text")
    db.execute("create index entries_same_key on entries (same_key)")
    db.execute("create index alternates_same_key on alternates (same_key)")
    if is_postgres(db):
        for table, column in (("entries", "question"), ("alternates", "text")):
            db.execute(f"""create function {table}_same_key_reset() returns trigger language plpgsql as $$
            begin
              if new.{column} is distinct from old.{column} then
                new.same_key := null;
              end if;
              return new;
            end $$""")
            db.execute(f"create trigger {table}_same_key_reset before update of {column} on {table} "
                       f"for each row execute function {table}_same_key_reset()")
    else:
        for table, column in (("entries", "question"), ("alternates", "text")):
            db.execute(f"create trigger {table}_same_key_reset after update of {column} on {table} "
                       f"when new.{column} is not old.{column} "
                       f"begin update {table} set same_key = null where id = new.id; end")


def apply_migrations(db: sqlite_utils.Database) -> list[str]:
    """Apply the migrations not yet recorded; return the names applied now."""
    applied_now: list[str] = []
    with immediate(db):  # one process migrates at a time
        if is_postgres(db):
            pg.install_functions(db)  # type: ignore[arg-type]
        if "_migrations" not in db.table_names():
            db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
        done = {row["name"] for row in db["_migrations"].rows}
        for name, fn in sorted(MIGRATIONS):
            if name in done:
                continue
            fn(db)
            db["_migrations"].insert(
                {"name": name, "applied_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            )
            applied_now.append(name)
    return applied_now
