"""The reviewers' side of the staff workspace: answering escalated tickets, and handling
those that are formal disclosure applications (政府信息公开申请).

Views parse the form, call :mod:`service.tickets` or :mod:`service.applications`, and
either redirect with a message or show the ticket page again with the error and what was
typed. Deadlines are counted to :func:`today`, which tests and demonstrations may fix with
``app.config["TODAY"]``.

The application screens are a blueprint of their own (``applications``) so that their
endpoints are listed apart from the ticket review's; it is registered together with
``review`` and guarded by the same role.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Callable

import sqlite_utils
from flask import (Blueprint, current_app, flash, g, redirect, render_template, request,
                   url_for)

from .. import annual_table, applications, canned, faq, notify, tickets
from ..accounts import audit
from ..applications import APPLICANT_TYPES, CHANNELS, OUTCOMES, PAUSE_KINDS, ApplicationError
from .staff_auth import role_required
from ..db import get_db
from ..deadlines import (MAX_EXTENSION_DAYS, SUPPLEMENT_NOTICE_DAYS, CalendarRangeError, DeadlineError,
                        WorkCalendar)
from ..feedback import RATINGS
from ..tickets import FAQ_CATEGORIES, STATUSES, TicketError
from ..storage import immediate
from ..text import is_number

bp = Blueprint("review", __name__, url_prefix="/staff")


@bp.record
def _time_zone(state) -> None:  # type: ignore[no-untyped-def]
    # Lists and exports that call tickets.display_time without a zone (analytics) use the
    # configured one too.
    tickets.set_default_time_zone(state.app.config.get("TIME_ZONE"))


@bp.app_template_filter("local_time")
def local_time(value: str | None) -> str:
    """A stored UTC time in the configured zone (``TIME_ZONE``, Beijing time by default)."""
    return tickets.display_time(value, current_app.config.get("TIME_ZONE"))


apps_bp = Blueprint("applications", __name__, url_prefix="/staff")

QUEUE_STATUSES = {"open": "待处理（新建、处理中、等待补充）", **STATUSES, "all": "全部"}
ORDERS = {"newest": "最新的在前", "oldest": "最早的在前", "due": "答复期限最近的在前"}
KINDS = {"faq": "常见问题", "fact": "报告数据", "passage": "报告正文"}
ASK_STATUSES = {"answered": "已回答", "clarify": "请求澄清", "escalated": "转人工"}
TICKET_KINDS = {"inquiry": "一般咨询", "application": "政府信息公开申请"}
KIND_FILTERS = {"all": "全部", "inquiry": "一般咨询", "application": "政府信息公开申请", "unclassified": "未分类"}
DUE_SOON_DAYS = 5  # applications due within this many working days are highlighted in the queue
APPLICATION_ACTIONS = {"mark_inquiry": "标记为一般咨询", "convert": "转为政府信息公开申请",
                       "supplement_requested": "告知补正", "supplement_received": "收到补正",
                       "extend": "延长答复期限", "pause": "暂停计时（征求意见）", "resume": "意见返回，恢复计时",
                       "close_application": "办结申请"}
MAX_SUPPLEMENT_NOTE = 500
NOT_CLOSABLE = "政府信息公开申请须在“办理类型”中选择办理结果后办结，不能直接关闭。"
VIEWS = {"all": "全部工单", "mine": "我的工单"}


@bp.after_request
@apps_bp.after_request
def _no_store(response):  # type: ignore[no-untyped-def]
    # Ticket pages show citizens' contact details: keep them out of shared caches and history.
    response.headers["Cache-Control"] = "no-store"
    return response


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(value or "")))
    except ValueError:
        return default


def today() -> date:
    """The day deadlines are counted to: ``app.config["TODAY"]`` when set, else the real date."""
    return current_app.config.get("TODAY") or date.today()


def calendar() -> WorkCalendar:
    """The working-day calendar: the package's years plus ``knowledge/holidays.toml``."""
    return WorkCalendar.load(Path(current_app.config["KNOWLEDGE_DIR"]) / "holidays.toml")


def clock_view(db: sqlite_utils.Database, cal: WorkCalendar, ticket: dict[str, Any], on: date) -> dict[str, Any]:
    """What the screens show of an application's clock on day ``on``.

    ``due`` is None while the clock is stopped (``note`` says why); ``days_left`` counts
    working days (negative when overdue); ``calendar_error`` holds the message when a date
    falls in a year whose holidays are not known. A closed application is never overdue.
    """
    view: dict[str, Any] = {"due": None, "state": None, "note": "", "notice_due": None, "days_left": None,
                            "overdue": False, "due_soon": False, "calendar_error": None,
                            "closed": bool(ticket.get("outcome"))}
    try:
        deadline = applications.deadline_of(db, cal, ticket)
        view.update(due=deadline.due, state=deadline.state, note=deadline.note,
                    notice_due=deadline.supplement_notice_due)
        if not view["closed"] and deadline.due is not None:
            left = deadline.days_left(cal, on)
            view.update(days_left=left, overdue=left is not None and left < 0,
                        due_soon=left is not None and 0 <= left <= DUE_SOON_DAYS)
    except (CalendarRangeError, DeadlineError) as exc:
        view["calendar_error"] = str(exc)
    return view


_APP_FIELDS = ("kind", "applicant_type", "channel", "received_on", "supplement_requested_on",
               "supplement_received_on", "extension_days", "extension_reason", "outcome", "outcome_on")


@bp.get("/tickets")
@role_required("reviewer")
def index():  # type: ignore[no-untyped-def]
    """The queue: filter by status, type and how often the question was asked, sort, page.

    Overdue applications come first, then the chosen order (by deadline, they lead
    anyway). ``tickets.queue`` filters, orders and pages in SQL by the due date each
    application stores; only the clocks of the rows shown are worked out here.
    """
    status = request.args.get("status", "open")
    status = status if status in QUEUE_STATUSES else "open"
    order = request.args.get("order", "newest")
    order = order if order in ORDERS else "newest"
    kind = request.args.get("kind", "all")
    kind = kind if kind in KIND_FILTERS else "all"
    min_asked = _int(request.args.get("min_asked"), 1, 1, 100_000)
    page = _int(request.args.get("page"), 1, 1, 1_000_000)
    view = request.args.get("view", "all")
    view = view if view in VIEWS else "all"
    merged = request.args.get("merged", "1") != "0"
    db = get_db()
    cal, on = calendar(), today()
    applications.refresh_due_dates(db, cal)  # one read, unless the holidays changed
    rows, total = tickets.queue(db, status=status, min_asked=min_asked, order=order, kind=kind,
                                today=on.isoformat(), page=page, per_page=tickets.PAGE_SIZE,
                                assignee=g.user["id"] if view == "mine" else None, merged=merged)
    pages = max(1, -(-total // tickets.PAGE_SIZE))
    for row in rows:
        if row["kind"] == "application" and row["received_on"]:
            row["clock"] = clock_view(db, cal, row, on)
        row["phone_masked"] = tickets.mask_phone(row["contact_phone"])
        row["email_masked"] = tickets.mask_email(row["contact_email"])
        row["name_masked"] = tickets.mask_name(row["contact_name"])
    filters = {"status": status, "kind": kind, "order": order, "min_asked": min_asked, "view": view,
               "merged": "1" if merged else "0"}
    return render_template("staff/tickets.html", rows=rows, total=total, page=page, pages=pages,
                           filters=filters, views=VIEWS, merged=merged and status == "open",
                           queue_statuses=QUEUE_STATUSES, orders=ORDERS,
                           statuses=STATUSES, kind_filters=KIND_FILTERS, ticket_kinds=TICKET_KINDS,
                           due_soon_days=DUE_SOON_DAYS)





def _application_view(db: sqlite_utils.Database, ticket: dict[str, Any]) -> dict[str, Any]:
    clock = applications.clock_of(db, ticket)
    return {
        **clock_view(db, calendar(), ticket, today()),
        "applicant": APPLICANT_TYPES.get(ticket["applicant_type"] or "", ticket["applicant_type"]),
        "channel": CHANNELS.get(ticket["channel"] or "", ticket["channel"]),
        "pauses": [{"kind": PAUSE_KINDS.get(p.kind, p.kind), "start": p.start, "end": p.end, "reason": p.reason}
                   for p in clock.pauses],
        "open_pause": any(p.end is None for p in clock.pauses),
        "outcome_label": OUTCOMES.get(ticket["outcome"] or ""),
    }


def _page(ticket_id: int, error: str | None = None, form: dict[str, Any] | None = None,
          status: int = 200):  # type: ignore[no-untyped-def]
    db = get_db()
    try:
        ticket = tickets.get_ticket(db, ticket_id)
    except TicketError as exc:
        return render_template("error.html", status=exc.status, message=exc.message), exc.status
    entry_q = request.args.get("entry_q", "").strip()[:100]
    events = [dict(e, label=APPLICATION_ACTIONS.get(e["action"], e["label"])) for e in tickets.events(db, ticket_id)]
    similar = tickets.similar_open(db, ticket)
    similar_total = tickets.similar_open_count(db, ticket)
    is_application = ticket["kind"] == "application" and bool(ticket["received_on"])
    canned_replies = canned.all_replies(db)
    form = dict(form or {})
    picked = request.args.get("canned", "")
    if picked and "reply" not in form:
        chosen = next((c for c in canned_replies if str(c["id"]) == picked), None)
        if chosen is None:
            error = error or "所选的常用答复不存在，可能已被删除。"
        else:
            form["reply"] = chosen["body"]
            form["canned"] = chosen["id"]
    return render_template(
        "staff/ticket.html", ticket=ticket, error=error, form=form, canned_replies=canned_replies,
        assignees=tickets.assignees(db), publishes=_publishes(),
        satisfaction=RATINGS.get(ticket.get("satisfaction") or "", ticket.get("satisfaction")),
        history=tickets.session_history(db, ticket), candidates=tickets.resolve_candidates(db, ticket["candidates"]),
        similar=similar, similar_total=similar_total, events=events,
        event_total=tickets.event_count(db, ticket_id) if len(events) >= tickets.EVENTS_SHOWN else len(events),
        entry_q=entry_q, entries=tickets.search_entries(db, entry_q) if entry_q else [],
        statuses=STATUSES, kinds=KINDS, ask_statuses=ASK_STATUSES,
        categories=list(dict.fromkeys([*FAQ_CATEGORIES, *faq.categories(db)])),
        max_reply=tickets.MAX_REPLY, open_statuses=tickets.OPEN_STATUSES,
        application=_application_view(db, ticket) if is_application else None,
        closable=not (ticket["kind"] == "application" and not ticket["outcome"]),
        ticket_kinds=TICKET_KINDS, applicant_types=APPLICANT_TYPES, channels=CHANNELS,
        pause_kinds=PAUSE_KINDS, outcome_groups=annual_table.outcome_groups(), today=today().isoformat(),
        max_extension=MAX_EXTENSION_DAYS, notice_days=SUPPLEMENT_NOTICE_DAYS,
    ), status


@bp.get("/tickets/<int:ticket_id>")
@role_required("reviewer")
def show(ticket_id: int):  # type: ignore[no-untyped-def]
    """One ticket: the question, its context, the matcher's candidates, contact, history."""
    return _page(ticket_id)


def _publishes() -> bool:
    """Whether promoting a ticket publishes at once: admins, where the config allows it."""
    return bool(current_app.config.get("PROMOTE_PUBLISHES_FOR_ADMINS")) and g.user["role"] == "admin"


def _notify(db: sqlite_utils.Database, outbox_ids: list[int]) -> None:
    """Send the e-mails just queued; a mail server that fails only leaves them unsent."""
    settings = notify.settings_from(current_app.config)
    if not outbox_ids or settings is None:
        return
    result = notify.send_pending(db, settings, outbox_ids)
    if result["failed"]:
        flash(f"有 {result['failed']} 封通知邮件未能发出（邮件服务器暂不可用），已记录，下次发送时重试。")
    elif result["sent"]:
        flash(f"已发送 {result['sent']} 封邮件，告知留下电子邮箱的群众答复已可查看。")
        notify.send_pending(db, settings)  # the server is up: retry what failed before


def _queue_mail(db: sqlite_utils.Database, ticket_ids: list[int]) -> list[int]:
    if notify.settings_from(current_app.config) is None:
        return []
    base = current_app.config.get("PUBLIC_URL") or request.url_root
    url = base.rstrip("/") + url_for("chat.lookup")
    with immediate(db):
        return notify.queue_answered(db, ticket_ids, url, product=current_app.config.get("PRODUCT_NAME", "政务公开智能问答"),
                                     agency=current_app.config.get("HOME_AGENCY", ""))


def _done(ticket_id: int, message: str):  # type: ignore[no-untyped-def]
    flash(message)
    return redirect(url_for("review.show", ticket_id=ticket_id))


def _closing_refused(ticket_id: int, status: str) -> str | None:
    """Why ``status`` may not be set by hand: an open application closes only with an outcome."""
    row = get_db().execute("select kind, outcome from tickets where id = ?", [ticket_id]).fetchone()
    if status == "closed" and row and row[0] == "application" and not row[1]:
        return NOT_CLOSABLE
    return None


@bp.post("/tickets/<int:ticket_id>/take")
@role_required("reviewer")
def take(ticket_id: int):  # type: ignore[no-untyped-def]
    """Assign the ticket to me and start working on it."""
    try:
        tickets.take(get_db(), ticket_id, g.user)
    except TicketError as exc:
        return _page(ticket_id, exc.message, status=exc.status)
    return _done(ticket_id, "已接手，工单状态改为“处理中”。")


@bp.post("/tickets/<int:ticket_id>/reply")
@role_required("reviewer")
def reply(ticket_id: int):  # type: ignore[no-untyped-def]
    """Answer the ticket, and the checked similar tickets with the same text."""
    text = request.form.get("reply", "")
    also = [int(v) for v in request.form.getlist("also") if is_number(v)][:tickets.SIMILAR_SHOWN]
    whole_group = request.form.get("whole_group") == "1"
    db = get_db()
    try:
        answered = tickets.reply(db, ticket_id, g.user, text, also, whole_group=whole_group)
    except TicketError as exc:
        return _page(ticket_id, exc.message, {"reply": text, "also": also, "whole_group": whole_group}, exc.status)
    flash(_answered_message(answered))
    _notify(db, _queue_mail(db, answered))
    return redirect(url_for("review.show", ticket_id=ticket_id))


def _answered_message(answered: list[int]) -> str:
    extra = f"，并一并答复了 {len(answered) - 1} 张相同问题的工单" if len(answered) > 1 else ""
    return f"已答复{extra}。群众可凭各自的工单编号和查询密码查看答复。"


@bp.post("/tickets/<int:ticket_id>/assign")
@role_required("reviewer")
def assign(ticket_id: int):  # type: ignore[no-untyped-def]
    """Give the ticket to another reviewer."""
    chosen = request.form.get("assignee", "").strip()
    if not is_number(chosen):
        return _page(ticket_id, "请选择一位办理工单的工作人员。", status=400)
    try:
        name = tickets.assign(get_db(), ticket_id, g.user, int(chosen))
    except TicketError as exc:
        return _page(ticket_id, exc.message, status=exc.status)
    return _done(ticket_id, f"已分派给 {name}。")


@bp.post("/tickets/<int:ticket_id>/status")
@role_required("reviewer")
def update_status(ticket_id: int):  # type: ignore[no-untyped-def]
    """Change the ticket's status, with an optional note for the history."""
    status = request.form.get("status", "")
    refused = _closing_refused(ticket_id, status)
    if refused:
        return _page(ticket_id, refused, {"note": request.form.get("note", "")}, 400)
    try:
        tickets.set_status(get_db(), ticket_id, g.user, status, request.form.get("note", ""))
    except TicketError as exc:
        return _page(ticket_id, exc.message, {"note": request.form.get("note", "")}, exc.status)
    return _done(ticket_id, f"工单状态已改为“{STATUSES[status]}”。")


@bp.post("/tickets/<int:ticket_id>/close")
@role_required("reviewer")
def close(ticket_id: int):  # type: ignore[no-untyped-def]
    """Close the ticket (an open application is closed with its outcome instead)."""
    refused = _closing_refused(ticket_id, "closed")
    if refused:
        return _page(ticket_id, refused, status=400)
    try:
        tickets.close(get_db(), ticket_id, g.user, request.form.get("note", ""))
    except TicketError as exc:
        return _page(ticket_id, exc.message, status=exc.status)
    return _done(ticket_id, "工单已关闭。")


@bp.post("/tickets/<int:ticket_id>/promote/new")
@role_required("reviewer")
def promote_new(ticket_id: int):  # type: ignore[no-untyped-def]
    """Make a draft FAQ entry from the ticket's question and an answer (published at once
    for admins when ``PROMOTE_PUBLISHES_FOR_ADMINS`` is set)."""
    fields = {k: request.form.get(k, "") for k in ("question", "answer", "category", "source")}
    publish = _publishes()
    try:
        entry_id, warnings = tickets.promote_new(get_db(), ticket_id, g.user, **fields, publish=publish)
    except TicketError as exc:
        return _page(ticket_id, exc.message, {f"faq_{k}": v for k, v in fields.items()}, exc.status)
    for warning in warnings:
        flash(warning)
    if publish:
        return _done(ticket_id, f"已发布为常见问题（条目 {entry_id}），智能问答即可回答这个问题。")
    return _done(ticket_id, f"已保存为常见问题草稿（条目 {entry_id}）。须由问答库管理员审核发布后，智能问答才会回答这个问题。")


@bp.post("/tickets/<int:ticket_id>/promote/alternate")
@role_required("reviewer")
def promote_alternate(ticket_id: int):  # type: ignore[no-untyped-def]
    """Add the ticket's question as another phrasing of an existing FAQ entry."""
    entry_id = request.form.get("entry_id", "").strip()
    if not is_number(entry_id):
        return _page(ticket_id, "请选择或填写常见问题的条目编号。", status=400)
    try:
        warnings = tickets.promote_alternate(get_db(), ticket_id, g.user, int(entry_id))
    except TicketError as exc:
        return _page(ticket_id, exc.message, status=exc.status)
    for warning in warnings:
        flash(warning)
    return _done(ticket_id, f"已添加为条目 {entry_id} 的相似问法，智能问答即可回答这个问题。")


# -- disclosure applications: the ticket page's "办理类型" panel ------------------------------

def _application_state(db: sqlite_utils.Database, ticket_id: int) -> dict[str, Any] | None:
    """What the audit log records of an application: its facts, status and pauses."""
    rows = list(db.query(f"select status, {', '.join(_APP_FIELDS)} from tickets where id = ?", [ticket_id]))
    if not rows:
        return None
    pauses = [dict(r) for r in db.query("select kind, start_on, end_on, reason from ticket_pauses "
                                        "where ticket_id = ? order by id", [ticket_id])]
    return {**rows[0], "pauses": pauses}


def _change(ticket_id: int, action: str, change: Callable[[sqlite_utils.Database, dict[str, Any]], None],
            message: str):  # type: ignore[no-untyped-def]
    """Run one application change, audit it, and redirect; on refusal show the page with a 400."""
    db = get_db()
    form = {k: v for k, v in request.form.items() if k != "csrf_token"}
    try:
        ticket = tickets.get_ticket(db, ticket_id)
    except TicketError as exc:
        return render_template("error.html", status=exc.status, message=exc.message), exc.status
    try:
        with immediate(db):  # the change and its audit row commit together, or neither
            before = _application_state(db, ticket_id)
            change(db, ticket)
            audit(db, g.user, f"application_{action}", f"ticket:{ticket_id}", before=before,
                  after=_application_state(db, ticket_id))
    except (ApplicationError, CalendarRangeError, DeadlineError) as exc:
        return _page(ticket_id, str(exc), form, 400)
    return _done(ticket_id, message)


def _date_field(name: str) -> str:
    return request.form.get(name, "").strip()


@apps_bp.post("/tickets/<int:ticket_id>/inquiry")
@role_required("reviewer")
def mark_inquiry(ticket_id: int):  # type: ignore[no-untyped-def]
    """Mark the ticket as a general inquiry (一般咨询)."""
    return _change(ticket_id, "mark_inquiry", lambda db, t: applications.mark_inquiry(db, ticket_id, g.user),
                   "已标记为一般咨询。")


@apps_bp.post("/tickets/<int:ticket_id>/application")
@role_required("reviewer")
def convert(ticket_id: int):  # type: ignore[no-untyped-def]
    """Convert the ticket into a disclosure application (or correct its type, channel, date)."""
    def run(db: sqlite_utils.Database, ticket: dict[str, Any]) -> None:
        if ticket["status"] == "closed" and not ticket["outcome"]:
            raise ApplicationError("工单已关闭：请先将状态改为“处理中”，再转为政府信息公开申请。")
        applications.convert(db, ticket_id, g.user, applicant_type=request.form.get("applicant_type", ""),
                             channel=request.form.get("channel", ""), received_on=_date_field("received_on"),
                             today=today())

    return _change(ticket_id, "convert", run, "已登记为政府信息公开申请，答复期限按收到申请之日计算。")


@apps_bp.post("/tickets/<int:ticket_id>/application/supplement")
@role_required("reviewer")
def request_supplement(ticket_id: int):  # type: ignore[no-untyped-def]
    """Record the one notice to supplement (告知补正); the clock stops until it arrives."""
    note = request.form.get("supplement_note", "").strip()

    def run(db: sqlite_utils.Database, ticket: dict[str, Any]) -> None:
        if len(note) > MAX_SUPPLEMENT_NOTE:
            raise ApplicationError(f"补正说明不能超过{MAX_SUPPLEMENT_NOTE}字。")
        applications.request_supplement(db, ticket_id, g.user, _date_field("requested_on"), note)

    return _change(ticket_id, "supplement_requested", run, "已记录告知补正，答复期限暂停计算，收到补正后重新计算。")


@apps_bp.post("/tickets/<int:ticket_id>/application/supplement/received")
@role_required("reviewer")
def supplement_received(ticket_id: int):  # type: ignore[no-untyped-def]
    """Record the supplement's arrival: the 20 working days start again from that day."""
    return _change(ticket_id, "supplement_received",
                   lambda db, t: applications.supplement_received(db, ticket_id, g.user, _date_field("supplement_on")),
                   "已记录收到补正，答复期限自该日起重新计算。")


@apps_bp.post("/tickets/<int:ticket_id>/application/extend")
@role_required("reviewer")
def extend(ticket_id: int):  # type: ignore[no-untyped-def]
    """The one extension of the reply period, with its reason (第三十三条)."""
    def run(db: sqlite_utils.Database, ticket: dict[str, Any]) -> None:
        days = request.form.get("days", "").strip()
        if not is_number(days):
            raise ApplicationError(f"延长期限应为1至{MAX_EXTENSION_DAYS}个工作日。")
        applications.extend(db, ticket_id, g.user, int(days), request.form.get("reason", ""))

    return _change(ticket_id, "extend", run, "已延长答复期限。")


@apps_bp.post("/tickets/<int:ticket_id>/application/pause")
@role_required("reviewer")
def start_pause(ticket_id: int):  # type: ignore[no-untyped-def]
    """Start consulting a third party or other agencies; the time is not counted (第三十二条)."""
    return _change(ticket_id, "pause",
                   lambda db, t: applications.start_pause(db, ticket_id, g.user, request.form.get("pause_kind", ""),
                                                          _date_field("pause_on"), request.form.get("pause_reason", "")),
                   "已开始征求意见，期间不计入答复期限。")


@apps_bp.post("/tickets/<int:ticket_id>/application/resume")
@role_required("reviewer")
def end_pause(ticket_id: int):  # type: ignore[no-untyped-def]
    """The opinions came back: the clock runs again."""
    return _change(ticket_id, "resume",
                   lambda db, t: applications.end_pause(db, ticket_id, g.user, _date_field("resume_on")),
                   "已记录意见返回，恢复计算答复期限。")


@apps_bp.post("/tickets/<int:ticket_id>/application/close")
@role_required("reviewer")
def close_application(ticket_id: int):  # type: ignore[no-untyped-def]
    """Close the application with exactly one outcome of table 三 and the reply the citizen reads."""
    def run(db: sqlite_utils.Database, ticket: dict[str, Any]) -> None:
        chosen = [v for v in request.form.getlist("outcome") if v]
        if len(chosen) != 1:
            raise ApplicationError("请选择一项办理结果（只能选择一项）。")
        applications.close(db, ticket_id, g.user, chosen[0], _date_field("closed_on"),
                           reply=request.form.get("reply", ""))

    response = _change(ticket_id, "close", run, "申请已办结，答复已可供申请人查看。")
    if not isinstance(response, tuple):  # a redirect: closed
        db = get_db()
        _notify(db, _queue_mail(db, [ticket_id]))
    return response


# -- canned replies (常用答复): kept by curators, picked by reviewers on the ticket page ----

@bp.get("/canned")
@role_required("curator")
def canned_index():  # type: ignore[no-untyped-def]
    """The canned replies, with a form to add one."""
    return _canned_page()


def _canned_page(error: str | None = None, form: dict[str, Any] | None = None, editing: int | None = None,
                 status: int = 200):  # type: ignore[no-untyped-def]
    return render_template("staff/canned.html", replies=canned.all_replies(get_db()), error=error,
                           form=form or {}, editing=editing, max_title=canned.MAX_TITLE,
                           max_body=canned.MAX_BODY), status


@bp.post("/canned")
@role_required("curator")
def canned_create():  # type: ignore[no-untyped-def]
    """Add a canned reply."""
    form = {k: request.form.get(k, "") for k in ("title", "body")}
    try:
        canned.create(get_db(), g.user, form["title"], form["body"])
    except canned.CannedError as exc:
        return _canned_page(exc.message, form, status=exc.status)
    flash(f"已添加常用答复“{' '.join(form['title'].split())}”。")
    return redirect(url_for("review.canned_index"))


@bp.get("/canned/<int:canned_id>")
@role_required("curator")
def canned_edit(canned_id: int):  # type: ignore[no-untyped-def]
    """The form to change one canned reply."""
    try:
        reply_ = canned.get(get_db(), canned_id)
    except canned.CannedError as exc:
        return render_template("error.html", status=exc.status, message=exc.message), exc.status
    return render_template("staff/canned_edit.html", reply=reply_, form={}, error=None,
                           max_title=canned.MAX_TITLE, max_body=canned.MAX_BODY)


@bp.post("/canned/<int:canned_id>")
@role_required("curator")
def canned_update(canned_id: int):  # type: ignore[no-untyped-def]
    """Change a canned reply's title and text."""
    form = {k: request.form.get(k, "") for k in ("title", "body")}
    db = get_db()
    try:
        canned.update(db, g.user, canned_id, form["title"], form["body"])
    except canned.CannedError as exc:
        if exc.status == 404:
            return render_template("error.html", status=404, message=exc.message), 404
        return render_template("staff/canned_edit.html", reply=canned.get(db, canned_id), form=form,
                               error=exc.message, max_title=canned.MAX_TITLE, max_body=canned.MAX_BODY), exc.status
    flash("常用答复已保存。")
    return redirect(url_for("review.canned_index"))


@bp.post("/canned/<int:canned_id>/delete")
@role_required("curator")
def canned_delete(canned_id: int):  # type: ignore[no-untyped-def]
    """Remove a canned reply."""
    try:
        canned.delete(get_db(), g.user, canned_id)
    except canned.CannedError as exc:
        return render_template("error.html", status=exc.status, message=exc.message), exc.status
    flash("常用答复已删除。")
    return redirect(url_for("review.canned_index"))
