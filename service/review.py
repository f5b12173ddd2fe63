"""The reviewers' side of the staff workspace: answering escalated tickets.

Views parse the form, call :mod:`service.tickets`, and either redirect with a message or
show the ticket page again with the error and what was typed.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from . import faq, tickets
from .auth import role_required
from .db import get_db
from .tickets import FAQ_CATEGORIES, STATUSES, TicketError

bp = Blueprint("review", __name__, url_prefix="/staff")
bp.add_app_template_filter(tickets.display_time, "local_time")

QUEUE_STATUSES = {"open": "待处理（新建、处理中、等待补充）", **STATUSES, "all": "全部"}
ORDERS = {"newest": "最新的在前", "oldest": "最早的在前"}
KINDS = {"faq": "常见问题", "fact": "报告数据", "passage": "报告正文"}
ASK_STATUSES = {"answered": "已回答", "clarify": "请求澄清", "escalated": "转人工"}


@bp.after_request
def _no_store(response):  # type: ignore[no-untyped-def]
    # Ticket pages show citizens' contact details: keep them out of shared caches and history.
    response.headers["Cache-Control"] = "no-store"
    return response


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(value or "")))
    except ValueError:
        return default


@bp.get("/tickets")
@role_required("reviewer")
def index():  # type: ignore[no-untyped-def]
    """The queue: filter by status and by how often the question was asked, sort, page."""
    status = request.args.get("status", "open")
    status = status if status in QUEUE_STATUSES else "open"
    order = request.args.get("order", "newest")
    order = order if order in ORDERS else "newest"
    min_asked = _int(request.args.get("min_asked"), 1, 1, 100_000)
    page = _int(request.args.get("page"), 1, 1, 1_000_000)
    rows, total = tickets.queue(get_db(), status=status, min_asked=min_asked, order=order, page=page)
    pages = max(1, -(-total // tickets.PAGE_SIZE))
    for row in rows:
        row["phone_masked"] = tickets.mask_phone(row["contact_phone"])
        row["email_masked"] = tickets.mask_email(row["contact_email"])
        row["name_masked"] = tickets.mask_name(row["contact_name"])
    filters = {"status": status, "order": order, "min_asked": min_asked}
    return render_template("staff/tickets.html", rows=rows, total=total, page=page, pages=pages,
                           filters=filters, queue_statuses=QUEUE_STATUSES, orders=ORDERS,
                           statuses=STATUSES)


def _page(ticket_id: int, error: str | None = None, form: dict[str, Any] | None = None,
          status: int = 200):  # type: ignore[no-untyped-def]
    db = get_db()
    try:
        ticket = tickets.get_ticket(db, ticket_id)
    except TicketError as exc:
        return render_template("error.html", status=exc.status, message=exc.message), exc.status
    entry_q = request.args.get("entry_q", "").strip()[:100]
    return render_template(
        "staff/ticket.html", ticket=ticket, error=error, form=form or {},
        history=tickets.session_history(db, ticket), candidates=tickets.resolve_candidates(db, ticket["candidates"]),
        similar=tickets.similar_open(db, ticket), events=tickets.events(db, ticket_id),
        entry_q=entry_q, entries=tickets.search_entries(db, entry_q) if entry_q else [],
        statuses=STATUSES, kinds=KINDS, ask_statuses=ASK_STATUSES,
        categories=list(dict.fromkeys([*FAQ_CATEGORIES, *faq.categories(db)])),
        max_reply=tickets.MAX_REPLY, open_statuses=tickets.OPEN_STATUSES,
    ), status


@bp.get("/tickets/<int:ticket_id>")
@role_required("reviewer")
def show(ticket_id: int):  # type: ignore[no-untyped-def]
    """One ticket: the question, its context, the matcher's candidates, contact, history."""
    return _page(ticket_id)


def _done(ticket_id: int, message: str):  # type: ignore[no-untyped-def]
    flash(message)
    return redirect(url_for("review.show", ticket_id=ticket_id))


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
    also = [int(v) for v in request.form.getlist("also") if v.isdigit()]
    try:
        answered = tickets.reply(get_db(), ticket_id, g.user, text, also)
    except TicketError as exc:
        return _page(ticket_id, exc.message, {"reply": text, "also": also}, exc.status)
    extra = f"，并一并答复了 {len(answered) - 1} 张相同问题的工单" if len(answered) > 1 else ""
    return _done(ticket_id, f"已答复{extra}。群众可凭编号和查询密码查看答复。")


@bp.post("/tickets/<int:ticket_id>/status")
@role_required("reviewer")
def update_status(ticket_id: int):  # type: ignore[no-untyped-def]
    """Change the ticket's status, with an optional note for the history."""
    status = request.form.get("status", "")
    try:
        tickets.set_status(get_db(), ticket_id, g.user, status, request.form.get("note", ""))
    except TicketError as exc:
        return _page(ticket_id, exc.message, {"note": request.form.get("note", "")}, exc.status)
    return _done(ticket_id, f"工单状态已改为“{STATUSES[status]}”。")


@bp.post("/tickets/<int:ticket_id>/close")
@role_required("reviewer")
def close(ticket_id: int):  # type: ignore[no-untyped-def]
    """Close the ticket."""
    try:
        tickets.close(get_db(), ticket_id, g.user, request.form.get("note", ""))
    except TicketError as exc:
        return _page(ticket_id, exc.message, status=exc.status)
    return _done(ticket_id, "工单已关闭。")


@bp.post("/tickets/<int:ticket_id>/promote/new")
@role_required("reviewer")
def promote_new(ticket_id: int):  # type: ignore[no-untyped-def]
    """Publish a new FAQ entry from the ticket's question and an answer."""
    fields = {k: request.form.get(k, "") for k in ("question", "answer", "category", "source")}
    try:
        entry_id, warnings = tickets.promote_new(get_db(), ticket_id, g.user, **fields)
    except TicketError as exc:
        return _page(ticket_id, exc.message, {f"faq_{k}": v for k, v in fields.items()}, exc.status)
    for warning in warnings:
        flash(warning)
    return _done(ticket_id, f"已发布为常见问题（条目 {entry_id}），智能问答即可回答这个问题。")


@bp.post("/tickets/<int:ticket_id>/promote/alternate")
@role_required("reviewer")
def promote_alternate(ticket_id: int):  # type: ignore[no-untyped-def]
    """Add the ticket's question as another phrasing of an existing FAQ entry."""
    entry_id = request.form.get("entry_id", "").strip()
    if not entry_id.isdigit():
        return _page(ticket_id, "请选择或填写常见问题的条目编号。", status=400)
    try:
        warnings = tickets.promote_alternate(get_db(), ticket_id, g.user, int(entry_id))
    except TicketError as exc:
        return _page(ticket_id, exc.message, status=exc.status)
    for warning in warnings:
        flash(warning)
    return _done(ticket_id, f"已添加为条目 {entry_id} 的相似问法，智能问答即可回答这个问题。")
