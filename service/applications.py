"""Disclosure applications: the tickets that are formal 政府信息公开申请 (no Flask).

A reviewer marks a ticket as a general inquiry or converts it into an application with
its applicant type and date of receipt (第三十一条); records a request to supplement
(补正) and the supplement's arrival, one extension with its reason, and pauses for
third-party or inter-agency consultation; and closes it with exactly one outcome from
table 三. Every change is kept in ``ticket_events`` with who and when. Deadlines come
from :mod:`service.deadlines`; the year's table 三 from :mod:`service.annual_table`.

Each application's reply deadline is also stored in ``tickets.due_on``, written in the
same transaction as every change that moves it, so that the reviewers' queue can sort
and page by it in SQL. Working days depend on the calendar: the fingerprint of the
calendar the stored dates were computed with is kept in ``meta``, and a different
calendar (a year added to ``knowledge/holidays.toml``) computes them all again.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import sqlite_utils

from . import annual_table
from .deadlines import (MAX_EXTENSION_DAYS, CalendarRangeError, Clock, Deadline, DeadlineError, Pause,
                        WorkCalendar, compute)
from .knowledge import now
from .reports import TABLE3_COLS
from .storage import immediate

APPLICANT_TYPES = {k: TABLE3_COLS[k] for k in annual_table.APPLICANT_COLS}
CHANNELS = {"in_person": "当面提交（以提交之日为收到之日）",
            "post": "邮寄（以签收之日为收到之日）",
            "online": "网上或传真（以双方确认之日为收到之日）"}
OUTCOMES = annual_table.OUTCOME_LABELS  # 不予公开：属于国家秘密, …
PAUSE_KINDS = {"third_party": "征求第三方意见", "consultation": "征求其他机关意见"}
DEFAULT_HOLIDAYS = Path(__file__).resolve().parent.parent / "knowledge" / "holidays.toml"
DUE_CALENDAR_KEY = "due_calendar"  # meta: the fingerprint of the calendar behind tickets.due_on


class ApplicationError(Exception):
    """An application change that the rules refuse; the message is plain Chinese."""


def _event(db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any] | None, action: str, detail: str) -> None:
    db["ticket_events"].insert({"ticket_id": ticket_id, "at": now(), "user_id": user["id"] if user else None,
                                "username": user["username"] if user else "系统", "action": action,
                                "detail": detail})


def _date(value: str | date, what: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise ApplicationError(f"{what}不是有效日期（应为 YYYY-MM-DD）。") from exc


def _ticket(db: sqlite_utils.Database, ticket_id: int) -> dict[str, Any]:
    rows = list(db.query("select * from tickets where id = ?", [ticket_id]))
    if not rows:
        raise ApplicationError("工单不存在。")
    return rows[0]


def _application(db: sqlite_utils.Database, ticket_id: int) -> dict[str, Any]:
    ticket = _ticket(db, ticket_id)
    if ticket["kind"] != "application":
        raise ApplicationError("该工单不是政府信息公开申请。")
    if ticket["outcome"]:
        raise ApplicationError("该申请已办结。")
    return ticket


def mark_inquiry(db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any], *,
                 cal: WorkCalendar | None = None) -> None:
    """Mark a ticket as a general inquiry (一般咨询)."""
    with immediate(db):
        ticket = _ticket(db, ticket_id)
        if ticket["kind"] == "application" and ticket["outcome"]:
            raise ApplicationError("已办结的申请不能改为一般咨询。")
        db.execute("update tickets set kind = 'inquiry', updated = ? where id = ?", [now(), ticket_id])
        store_due(db, ticket_id, cal)
        _event(db, ticket_id, user, "mark_inquiry", "标记为一般咨询")


def convert(db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any], *, applicant_type: str,
            channel: str, received_on: str | date, today: date | None = None,
            cal: WorkCalendar | None = None) -> None:
    """Make a ticket a disclosure application received on ``received_on`` by ``channel``."""
    if applicant_type not in APPLICANT_TYPES:
        raise ApplicationError("请选择申请人类型。")
    if channel not in CHANNELS:
        raise ApplicationError("请选择申请提交方式。")
    received = _date(received_on, "收到申请日期")
    if received > (today or date.today()):
        raise ApplicationError("收到申请日期不能晚于今天。")
    with immediate(db):
        ticket = _ticket(db, ticket_id)
        if ticket["outcome"]:
            raise ApplicationError("该申请已办结。")
        later = [d for d in (ticket["supplement_requested_on"], ticket["supplement_received_on"]) if d]
        later += [r[0] for r in db.execute("select start_on from ticket_pauses where ticket_id = ?", [ticket_id])]
        if any(received > date.fromisoformat(d) for d in later):
            raise ApplicationError("收到申请日期不能晚于已记录的补正或暂停日期。")
        db.execute("update tickets set kind = 'application', applicant_type = ?, channel = ?, received_on = ?, "
                   "extension_days = coalesce(extension_days, 0), updated = ? where id = ?",
                   [applicant_type, channel, received.isoformat(), now(), ticket_id])
        store_due(db, ticket_id, cal)
        _event(db, ticket_id, user, "convert",
               f"转为政府信息公开申请：{APPLICANT_TYPES[applicant_type]}，{CHANNELS[channel]}，收到日期 {received}")


def request_supplement(db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any], on: str | date,
                       note: str = "", *, cal: WorkCalendar | None = None) -> None:
    """Record the notice to supplement (补正); the reply clock stops until it arrives."""
    day = _date(on, "补正告知日期")
    with immediate(db):
        ticket = _application(db, ticket_id)
        if ticket["supplement_requested_on"]:
            raise ApplicationError("补正只能告知一次（第三十条）。")
        if day < date.fromisoformat(ticket["received_on"]):
            raise ApplicationError("补正告知日期不能早于收到申请日期。")
        db.execute("update tickets set supplement_requested_on = ?, status = 'waiting', updated = ? where id = ?",
                   [day.isoformat(), now(), ticket_id])
        store_due(db, ticket_id, cal)
        _event(db, ticket_id, user, "supplement_requested", f"{day} 告知补正：{note}".rstrip("："))


def supplement_received(db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any], on: str | date, *,
                        cal: WorkCalendar | None = None) -> None:
    """Record the supplement's arrival; the 20 working days start again from this day."""
    day = _date(on, "收到补正日期")
    with immediate(db):
        ticket = _application(db, ticket_id)
        if not ticket["supplement_requested_on"]:
            raise ApplicationError("尚未告知补正。")
        if ticket["supplement_received_on"]:
            raise ApplicationError("已记录收到补正。")
        if day < date.fromisoformat(ticket["supplement_requested_on"]):
            raise ApplicationError("收到补正日期不能早于补正告知日期。")
        db.execute("update tickets set supplement_received_on = ?, status = 'in_progress', updated = ? where id = ?",
                   [day.isoformat(), now(), ticket_id])
        store_due(db, ticket_id, cal)
        _event(db, ticket_id, user, "supplement_received", f"{day} 收到补正，答复期限重新计算")


def extend(db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any], days: int, reason: str, *,
           cal: WorkCalendar | None = None) -> None:
    """The one extension of at most 20 working days (第三十三条), with its reason."""
    reason = reason.strip()
    if not 1 <= days <= MAX_EXTENSION_DAYS:
        raise ApplicationError(f"延长期限应为1至{MAX_EXTENSION_DAYS}个工作日。")
    if not reason or len(reason) > 500:
        raise ApplicationError("请填写延长理由（500字以内）。")
    with immediate(db):
        ticket = _application(db, ticket_id)
        if ticket["extension_days"]:
            raise ApplicationError("答复期限只能延长一次。")
        db.execute("update tickets set extension_days = ?, extension_reason = ?, updated = ? where id = ?",
                   [days, reason, now(), ticket_id])
        store_due(db, ticket_id, cal)
        _event(db, ticket_id, user, "extend", f"延长{days}个工作日：{reason}")


def start_pause(db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any], kind: str, on: str | date,
                reason: str = "", *, cal: WorkCalendar | None = None) -> None:
    """Start a consultation during which the clock does not run (第三十二条)."""
    if kind not in PAUSE_KINDS:
        raise ApplicationError("暂停类型无效。")
    day = _date(on, "开始日期")
    with immediate(db):
        ticket = _application(db, ticket_id)
        if day < date.fromisoformat(ticket["received_on"]):
            raise ApplicationError("暂停开始日期不能早于收到申请日期。")
        if db.execute("select 1 from ticket_pauses where ticket_id = ? and end_on is null", [ticket_id]).fetchone():
            raise ApplicationError("已有未结束的暂停。")
        db["ticket_pauses"].insert({"ticket_id": ticket_id, "kind": kind, "start_on": day.isoformat(),
                                    "end_on": None, "reason": reason.strip()[:500]})
        store_due(db, ticket_id, cal)
        _event(db, ticket_id, user, "pause", f"{day} 起{PAUSE_KINDS[kind]}，期间不计入答复期限：{reason}".rstrip("："))


def end_pause(db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any], on: str | date, *,
              cal: WorkCalendar | None = None) -> None:
    """End the open consultation pause."""
    day = _date(on, "结束日期")
    with immediate(db):
        _application(db, ticket_id)
        row = db.execute("select id, kind, start_on from ticket_pauses where ticket_id = ? and end_on is null",
                         [ticket_id]).fetchone()
        if row is None:
            raise ApplicationError("没有未结束的暂停。")
        if day < date.fromisoformat(row[2]):
            raise ApplicationError("结束日期不能早于开始日期。")
        if day > date.today():
            raise ApplicationError("结束日期不能晚于今天。")
        db.execute("update ticket_pauses set end_on = ? where id = ?", [day.isoformat(), row[0]])
        store_due(db, ticket_id, cal)
        _event(db, ticket_id, user, "resume", f"{day} {PAUSE_KINDS[row[1]]}结束，恢复计算答复期限")


def close(db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any], outcome: str, on: str | date,
          reply: str | None = None) -> None:
    """Close an application with exactly one outcome from table 三 and the reply the citizen
    reads on the lookup page (答复).

    The staff desk always passes ``reply``: an empty one is refused. ``None`` is for
    scripts that record outcomes decided and answered elsewhere (on paper); the ticket
    then keeps whatever reply it has.
    """
    if outcome not in OUTCOMES:
        raise ApplicationError("请选择一项办理结果。")
    day = _date(on, "办结日期")
    with immediate(db):
        ticket = _application(db, ticket_id)
        if day < date.fromisoformat(ticket["received_on"]):
            raise ApplicationError("办结日期不能早于收到申请日期。")
        text = None if reply is None else _reply_text(reply)
        db.execute("update tickets set outcome = ?, outcome_on = ?, status = 'closed', closed_at = ?, updated = ? "
                   "where id = ?", [outcome, day.isoformat(), now(), now(), ticket_id])
        if text is not None:
            db.execute("update tickets set reply = ?, replied_at = ?, replied_by = ? where id = ?",
                       [text, now(), user["id"], ticket_id])
        detail = f"{day} 办结：{OUTCOMES[outcome]}" + (f"\n答复：{text}" if text is not None else "")
        _event(db, ticket_id, user, "close_application", detail)


def _reply_text(reply: str) -> str:
    from .tickets import TicketError, clean_reply  # tickets' rules for a reply's text

    try:
        return clean_reply(reply)
    except TicketError as exc:
        if not (reply or "").strip():
            raise ApplicationError("请填写给申请人的答复（申请人凭工单编号和查询密码查看），再办结申请。") from exc
        raise ApplicationError(exc.message) from exc


def clock_of(db: sqlite_utils.Database, ticket: dict[str, Any]) -> Clock:
    """The deadline facts of an application ticket."""
    pauses = [Pause(r["kind"], date.fromisoformat(r["start_on"]),
                    date.fromisoformat(r["end_on"]) if r["end_on"] else None, r["reason"] or "")
              for r in db.query("select * from ticket_pauses where ticket_id = ? order by id", [ticket["id"]])]
    return Clock(
        received=date.fromisoformat(ticket["received_on"]),
        supplement_requested=date.fromisoformat(ticket["supplement_requested_on"]) if ticket["supplement_requested_on"] else None,
        supplement_received=date.fromisoformat(ticket["supplement_received_on"]) if ticket["supplement_received_on"] else None,
        extension_days=ticket["extension_days"] or 0, extension_reason=ticket["extension_reason"] or "",
        pauses=pauses)


def deadline_of(db: sqlite_utils.Database, cal: WorkCalendar, ticket: dict[str, Any]) -> Deadline:
    """The computed deadline of an application ticket (may raise CalendarRangeError)."""
    return compute(cal, clock_of(db, ticket))


def due_on(db: sqlite_utils.Database, cal: WorkCalendar, ticket: dict[str, Any]) -> str | None:
    """The reply deadline to store for a ticket (ISO date), or None: not an application with
    a date of receipt, the clock stopped (supplement, consultation), or dates the calendar
    does not cover. Closing does not clear it: the lists leave out applications with an
    outcome themselves."""
    if ticket["kind"] != "application" or not ticket["received_on"]:
        return None
    try:
        due = deadline_of(db, cal, ticket).due
    except (CalendarRangeError, DeadlineError):
        return None
    return due.isoformat() if due else None


def default_calendar() -> WorkCalendar:
    """The calendar of the shipped ``knowledge/holidays.toml``, for callers that pass none."""
    return WorkCalendar.load(DEFAULT_HOLIDAYS)


def _due_calendar(db: sqlite_utils.Database) -> str | None:
    row = db.execute("select value from meta where key = ?", [DUE_CALENDAR_KEY]).fetchone()
    return row[0] if row else None


def store_due(db: sqlite_utils.Database, ticket_id: int, cal: WorkCalendar | None = None) -> None:
    """Store one ticket's due date after a change that may move it (call inside the change's
    transaction). With a calendar other than the one the stored dates were computed with,
    every application's date is computed again, so that they all agree."""
    cal = cal or default_calendar()
    db.execute("update tickets set due_on = ? where id = ?", [due_on(db, cal, _ticket(db, ticket_id)), ticket_id])
    if _due_calendar(db) != cal.fingerprint():
        store_due_dates(db, cal)


def store_due_dates(db: sqlite_utils.Database, cal: WorkCalendar) -> int:
    """Compute every application's due date with ``cal`` and record the calendar's
    fingerprint; return how many stored dates changed."""
    changed = 0
    with immediate(db):
        for ticket in list(db.query("select * from tickets where kind = 'application'")):
            due = due_on(db, cal, ticket)
            if due != ticket["due_on"]:
                db.execute("update tickets set due_on = ? where id = ?", [due, ticket["id"]])
                changed += 1
        db.execute("insert into meta (key, value) values (?, ?) on conflict(key) do update set value = excluded.value",
                   [DUE_CALENDAR_KEY, cal.fingerprint()])
    return changed


def refresh_due_dates(db: sqlite_utils.Database, cal: WorkCalendar) -> int:
    """Bring the stored due dates up to ``cal`` when it is not the calendar they were computed
    with (a year added to ``knowledge/holidays.toml``, a newer chinese-calendar); one read of
    ``meta`` otherwise. Returns how many dates changed."""
    if _due_calendar(db) == cal.fingerprint():
        return 0
    return store_due_dates(db, cal)


def table_for_year(db: sqlite_utils.Database, year: int) -> annual_table.Table3:
    """Table 三 for ``year`` from every application in the database."""
    apps = []
    for row in db.query("select code, applicant_type, received_on, outcome, outcome_on from tickets "
                        "where kind = 'application' and received_on is not null"):
        apps.append(annual_table.Application(
            row["code"], row["applicant_type"] or "", date.fromisoformat(row["received_on"]),
            date.fromisoformat(row["outcome_on"]) if row["outcome_on"] else None, row["outcome"]))
    return annual_table.compute(year, apps)
