"""The citizens' side: the chat page, ``POST /api/ask`` and ``POST /api/feedback``, and
looking up (and rating the reply to) a ticket.

The whole blueprint is exempt from the app-wide CSRF check because the JSON API uses no
cookies; the HTML forms here (``/tickets``, ``/tickets/rate``) check their token themselves.
"""
from __future__ import annotations

import dataclasses
import re
import time
import tomllib
from pathlib import Path
from typing import Any

import sqlite_utils
from flask import Blueprint, current_app, jsonify, make_response, render_template, request

from .. import applications, feedback, inbox
from ..db import get_db, get_desk
from ..deadlines import CalendarRangeError, DeadlineError, WorkCalendar
from ..errors import ApiError
from ..privacy import mask_personal
from ..replies import Reply
from ..security import ask_limit, counted, limiter, lookup_limit, may_open_ticket
from ..tickets import (CITIZEN_STATUSES, TicketError, citizen_ticket, clean_code, clean_contact, display_code,
                      display_time, last_figure_ref, log_ask, open_ticket, remember_figure,
                      save_contact)

bp = Blueprint("chat", __name__)
bp.add_app_template_filter(display_time, "local_time")
bp.add_app_template_global(feedback.RATINGS, "satisfaction_ratings")
bp.add_app_template_global(feedback.REASONS, "feedback_reasons")

_SURROGATES = re.compile(r"[\ud800-\udfff]")
MAX_SESSION_CHARS = 128


def ticket_keys() -> list[str]:
    """The keys query passwords are checked with: the current one first, then retired ones."""
    # Flask's own default for SECRET_KEY_FALLBACKS is None (a SECRET_KEY set in config.py).
    return [current_app.config["SECRET_KEY"], *(current_app.config.get("SECRET_KEY_FALLBACKS") or [])]


def feedback_limit() -> str:
    """Rate limit of ``POST /api/feedback`` per client address."""
    return current_app.config["RATE_LIMIT_FEEDBACK"]


def _examples() -> list[str]:
    path = Path(current_app.config["KNOWLEDGE_DIR"]) / "site.toml"
    try:
        with path.open("rb") as fh:
            return list(tomllib.load(fh).get("examples", []))
    except (OSError, tomllib.TOMLDecodeError):
        return []


@bp.get("/api/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    """The OpenAPI description of the public API."""
    spec = (Path(__file__).parent.parent / "openapi.json").read_bytes()
    return current_app.response_class(spec, mimetype="application/json")


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    """The chat page."""
    return render_template("index.html", agency=current_app.config["HOME_AGENCY"],
                           product=current_app.config["PRODUCT_NAME"], examples=_examples())


def _read_question() -> tuple[str, str | None]:
    """Validate the body of an ask; raise :class:`ApiError` with a plain message."""
    request.max_content_length = current_app.config["MAX_API_BODY"]
    data: Any = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError("请求格式不正确：请以 JSON 格式提交，例如 {\"question\": \"如何申请政府信息公开？\"}。")
    question = data.get("question")
    if question is None:
        raise ApiError("请输入您的问题。")
    if not isinstance(question, str):
        raise ApiError("问题必须是一段文字。")
    if not question.strip():
        raise ApiError("请输入您的问题。")
    limit = current_app.config["MAX_QUESTION_CHARS"]
    if len(question) > limit:
        raise ApiError(f"问题过长，请控制在{limit}字以内。")
    # Lone surrogates cannot be stored as UTF-8; NUL bytes have no place in a question.
    # Phone, ID-card and e-mail numbers are masked before anything sees or stores them.
    question = mask_personal(_SURROGATES.sub("\ufffd", question).replace("\x00", ""))
    if not question.strip():
        raise ApiError("请输入您的问题。")
    session = data.get("session")
    if session is not None and not isinstance(session, str):
        raise ApiError("会话标识格式不正确。")
    if isinstance(session, str) and len(session) > MAX_SESSION_CHARS:
        raise ApiError(f"会话标识过长（最多{MAX_SESSION_CHARS}个字符）。")
    session = _SURROGATES.sub("", session) if session else None
    return question.strip(), session


def _record_pick(db: sqlite_utils.Database) -> None:
    """The ``pick`` of an ask: the citizen clicked one of the "did you mean" suggestions of
    an earlier answer; the pairing goes to the curators' inbox as a suggested phrasing."""
    data: Any = request.get_json(silent=True)
    pick = data.get("pick") if isinstance(data, dict) else None
    if pick is None:
        return
    try:
        token, entry_id = inbox.read_pick(pick, ticket_keys())
    except inbox.InboxError as exc:
        raise ApiError(exc.message, exc.status) from exc
    inbox.record_pick(db, token, entry_id)


def _with_picks(suggestions: list[dict[str, Any]], token: str) -> list[dict[str, Any]]:
    """The suggestions of a clarify reply, each FAQ entry with its signed ``pick``."""
    keys = ticket_keys()
    return [dict(s, pick=inbox.pick_token(token, s["id"], keys)) if isinstance(s.get("id"), int) else dict(s)
            for s in suggestions]


def _wants_a_person() -> bool:
    """The ``escalate`` flag of an ask: the citizen found the answer no help and asks for a
    ticket (the chat's 转人工办理 under 没用)."""
    data: Any = request.get_json(silent=True)
    flag = data.get("escalate") if isinstance(data, dict) else None
    if flag is not None and not isinstance(flag, bool):
        raise ApiError("转人工标记（escalate）必须为 true 或 false。")
    return bool(flag)


# Small talk and requests for a person never become tickets, even when asked to: a ticket
# whose question is 谢谢 or 转人工 is nothing a reviewer can answer.
_NEVER_TICKETS = ("chitchat", "handoff")


def _handed_over(reply: Reply) -> Reply:
    """The reply, escalated at the citizen's request: the ticket keeps the matcher's
    candidates for the reviewer, the log no longer names the answer that did not help."""
    return dataclasses.replace(reply, status="escalated", kind=None, answer="", source=None, source_url=None,
                               entry_id=None, suggestions=[], ref=None, key=None,
                               reason="群众认为自动答复没有帮助，要求转人工")


@bp.post("/api/ask")
@counted(ask_limit, "ask")
def ask():  # type: ignore[no-untyped-def]
    """Answer a question: answered, clarify (with suggestions) or escalated (with a ticket).

    With ``"escalate": true`` the question is sent to staff as a ticket whatever the desk
    would answer (small talk aside). Every reply carries an ``ask_id`` for feedback.
    """
    started = time.perf_counter()
    question, session = _read_question()
    requested = _wants_a_person()
    db = get_db()
    _record_pick(db)
    desk = get_desk()
    previous = last_figure_ref(db, session) if session else None
    # The server's other workers may have answered it already (service/shared_replies.py).
    reply = desk.ask(question, desk.context_from_ref(previous) if previous else None,
                     shared=current_app.extensions.get("shared_replies"))
    # Another body's business is referred, not queued, unless the citizen still asks for staff.
    requested = (requested and (reply.status != "escalated" or reply.kind == "referral")
                 and reply.kind not in _NEVER_TICKETS)
    if requested:
        reply = _handed_over(reply)
    body = reply.public()
    body["question"] = question  # as stored: the chat keeps this, with personal numbers masked
    from ..related import for_desk  # the public knowledge base's related entries (您可能还想了解)

    body["related"] = (for_desk(desk).questions(reply.entry_id)
                       if reply.status == "answered" and reply.kind == "faq" and reply.entry_id is not None else [])
    body["ticket"] = None
    token, body["ask_id"] = feedback.issue(ticket_keys())
    if reply.status == "clarify":
        body["suggestions"] = _with_picks(body["suggestions"], token)
    ticket_id = ticket_code = None
    if reply.kind == "referral":
        pass  # the answer says whose business it is and where to go; no ticket
    elif reply.status == "escalated" and not may_open_ticket():
        body["answer"] = ("抱歉，这个问题暂时无法自动解答。您提交的待人工答复问题较多，暂时无法再生成工单，"
                          "请稍后再试，或通过页面上的电话、信函等渠道联系我们。")
        body["ticket_refused"] = True
    elif reply.status == "escalated":
        ticket = open_ticket(db, secret=ticket_keys(), question=question,
                             normalised=reply.normalised, session=session,
                             candidates=reply.candidates)
        ticket_id, ticket_code = ticket["id"], ticket["code"]
        if ticket["reused"]:
            body["ticket"] = {"code": ticket["code"], "reused": True,
                              "note": "此前获得的查询密码仍然有效，请凭工单编号和该密码查询办理情况。"}
            body["answer"] = (f"这个问题您刚才已经提交过（工单编号 {display_code(ticket['code'])}），工作人员会尽快跟进答复，"
                              "请凭工单编号和此前获得的查询密码查询办理情况。")
        elif requested:
            body["ticket"] = {"code": ticket["code"], "password": ticket["password"]}
            body["answer"] = (f"已按您的要求转交工作人员，并为您生成工单（工单编号 {display_code(ticket['code'])}），"
                              "工作人员会尽快跟进答复，请保存好工单编号和查询密码以便查询。")
        else:
            body["ticket"] = {"code": ticket["code"], "password": ticket["password"]}
            body["answer"] = (f"抱歉，这个问题暂时无法自动解答。已为您生成工单（工单编号 {display_code(ticket['code'])}），"
                              "工作人员会尽快跟进答复，请保存好工单编号和查询密码以便查询。")
    latency_ms = (time.perf_counter() - started) * 1000
    if session and reply.ref and reply.ref.startswith(("fact:", "decline:", "faq:")):
        # The last two things answered, for follow-ups (那部分公开的呢, 合起来多少, 这个怎么收费).
        kept = [r for r in (previous or "").split("|") if r.startswith(("fact:", "decline:"))][:2]
        remember_figure(db, session, "|".join([reply.ref, *kept][:3]))
    log_ask(db, {"session": session, "question": question, "normalised": reply.normalised,
                 "status": reply.status, "kind": reply.kind, "entry_id": reply.entry_id,
                 "ref": reply.ref, "confidence": reply.confidence, "latency_ms": latency_ms,
                 "ticket_id": ticket_id, "ticket_code": ticket_code, "ask_token": token},
            batch=current_app.config["ASK_LOG_BATCH"], max_delay=current_app.config["ASK_LOG_MAX_DELAY"],
            path=current_app.config["DATABASE"])
    return jsonify(body)


@bp.post("/api/feedback")
@limiter.limit(feedback_limit)
def give_feedback():  # type: ignore[no-untyped-def]
    """Say whether an answer helped: ``{"ask_id", "helpful", "reason_code", "reason"}``, once
    per answer (see :mod:`service.feedback` for why the id is signed)."""
    request.max_content_length = current_app.config["MAX_API_BODY"]
    try:
        given = feedback.clean(request.get_json(silent=True))
        token = feedback.token_of(given.ask_id, ticket_keys())
        feedback.record(get_db(), token, given)
    except feedback.FeedbackError as exc:
        raise ApiError(exc.message, exc.status) from exc
    message = "感谢您的反馈！" if given.helpful else "感谢您的反馈，我们会据此改进答复。"
    return jsonify(ok=True, message=message)


def _throttled_headers(exc: TicketError) -> dict[str, str]:
    wait = getattr(exc, "wait_seconds", None)
    return {"Retry-After": str(wait)} if wait else {}


CALENDAR_GAP = "答复期限涉及的年份节假日安排尚未公布，暂无法按工作日计算；我们将依法按期答复。"


def _application(db: sqlite_utils.Database, found: dict[str, Any]) -> dict[str, Any] | None:
    """What a citizen sees of their disclosure application: the dates that set the reply
    deadline, any extension, consultation or supplement, and the outcome once closed."""
    if found.get("kind") != "application" or not found.get("received_on"):
        return None
    clock = applications.clock_of(db, found)
    view: dict[str, Any] = {
        "received_on": found["received_on"], "channel": applications.CHANNELS.get(found["channel"] or ""),
        "supplement_requested_on": found["supplement_requested_on"],
        "supplement_received_on": found["supplement_received_on"],
        "extension_days": found["extension_days"] or 0, "extension_reason": found["extension_reason"] or "",
        "pauses": [{"kind": applications.PAUSE_KINDS.get(p.kind, p.kind), "start": p.start, "end": p.end,
                    "reason": p.reason} for p in clock.pauses],
        "outcome": applications.OUTCOMES.get(found["outcome"] or ""), "outcome_on": found["outcome_on"],
        "due": None, "stopped": "", "calendar_gap": None,
    }
    cal = WorkCalendar.load(Path(current_app.config["KNOWLEDGE_DIR"]) / "holidays.toml")
    try:
        deadline = applications.deadline_of(db, cal, found)
    except (CalendarRangeError, DeadlineError):
        view["calendar_gap"] = CALENDAR_GAP
    else:
        view["due"], view["stopped"] = deadline.due, "" if deadline.due else deadline.note
    return view


def _citizen_view(found: dict[str, Any]) -> dict[str, Any]:
    """What the citizen sees of their ticket: never contact details or staff names."""
    return {"code": found["code"], "question": found["question"], "created": found["created"],
            "status": CITIZEN_STATUSES.get(found["status"], found["status"]),
            "answered": found["status"] in ("answered", "closed") and bool(found["reply"]),
            "reply": found["reply"], "replied_at": found["replied_at"],
            "satisfaction": feedback.RATINGS.get(found.get("satisfaction") or ""),
            "application": _application(get_db(), found)}


@bp.route("/tickets", methods=["GET", "POST"])
@limiter.limit(lookup_limit, methods=["POST"])
def lookup():  # type: ignore[no-untyped-def]
    """Look a ticket up with its code and query password: status, when asked, the reply,
    and for a disclosure application its dates and outcome."""
    code = clean_code(request.values.get("code", ""))[:32]
    error, ticket, status, headers = None, None, 200, {}
    if request.method == "POST":
        current_app.extensions["csrf"].protect()
        try:
            found = citizen_ticket(get_db(), code, request.form.get("password", ""), request.remote_addr,
                                   secret=ticket_keys())
        except TicketError as exc:
            error, status, headers = exc.message, exc.status, _throttled_headers(exc)
        else:
            ticket = _citizen_view(found)
    response = make_response(render_template(
        "tickets.html", agency=current_app.config["HOME_AGENCY"], product=current_app.config["PRODUCT_NAME"],
        code=code, error=error, ticket=ticket), status)
    response.headers.update(headers)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/tickets/rate")
@limiter.limit(lookup_limit)
def rate():  # type: ignore[no-untyped-def]
    """Rate the reply to one's ticket (满意 / 基本满意 / 不满意), once, from the lookup page:
    the form carries the code and query password, checked again as a lookup is."""
    current_app.extensions["csrf"].protect()
    code = clean_code(request.form.get("code", ""))[:32]
    error, notice, ticket, status, headers = None, None, None, 200, {}
    db = get_db()
    try:
        found = citizen_ticket(db, code, request.form.get("password", ""), request.remote_addr,
                               secret=ticket_keys())
    except TicketError as exc:
        error, status, headers = exc.message, exc.status, _throttled_headers(exc)
    else:
        rating = request.form.get("rating")
        try:
            feedback.rate_reply(db, found["id"], rating)
        except feedback.FeedbackError as exc:
            error, status = exc.message, exc.status
        else:
            notice, found = "感谢您的评价！", {**found, "satisfaction": rating}
        ticket = _citizen_view(found)
    response = make_response(render_template(
        "tickets.html", agency=current_app.config["HOME_AGENCY"], product=current_app.config["PRODUCT_NAME"],
        code=code, error=error, notice=notice, ticket=ticket), status)
    response.headers.update(headers)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/api/tickets/<code>/contact")
@limiter.limit(lookup_limit)
def contact(code: str):  # type: ignore[no-untyped-def]
    """Leave a name and a phone number or email on a ticket (authenticated by its password)."""
    request.max_content_length = current_app.config["MAX_API_BODY"]
    data: Any = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError("请求格式不正确：请以 JSON 格式提交。")
    password = data.get("password")
    try:
        # The ticket's code and password first: nothing about the contact rules is told
        # to someone who does not hold the ticket.
        ticket = citizen_ticket(get_db(), code[:32], password if isinstance(password, str) else "",
                                request.remote_addr, secret=ticket_keys())
        details = clean_contact(data.get("name"), data.get("phone"), data.get("email"))
    except TicketError as exc:
        return jsonify(error=exc.message), exc.status, _throttled_headers(exc)
    save_contact(get_db(), ticket["id"], details)
    return jsonify(ok=True, message="已收到您的联系方式，仅供工作人员办理本工单时联系您使用。")
