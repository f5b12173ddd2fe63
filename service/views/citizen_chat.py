"""The citizens' side: the chat page, ``POST /api/ask`` and ``POST /api/feedback``, and
looking up (and rating the reply to) a ticket.

The whole blueprint is exempt from the app-wide CSRF check because the JSON API uses no
cookies; the HTML forms here (``/tickets``, ``/tickets/rate``) check their token themselves.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Callable

import sqlite_utils
from flask import Blueprint, current_app, jsonify, make_response, render_template, request

from .. import applications, asking, feedback
from ..db import get_db, get_desk
from ..deadlines import CalendarRangeError, DeadlineError, WorkCalendar
from ..errors import ApiError
from ..security import ask_limit, counted, limiter, lookup_limit, may_open_ticket
from ..tickets import (CITIZEN_STATUSES, TicketError, citizen_ticket, clean_code, clean_contact, display_time,
                      save_contact)

bp = Blueprint("chat", __name__)
bp.add_app_template_filter(display_time, "local_time")
bp.add_app_template_global(feedback.RATINGS, "satisfaction_ratings")
bp.add_app_template_global(feedback.REASONS, "feedback_reasons")


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


def surroundings(may_open_ticket: Callable[[], bool]) -> asking.Surroundings:
    """What :func:`service.asking.answer` needs of the app, for the current app context."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return asking.Surroundings(db=get_db, desk=get_desk, config=app.config, keys=ticket_keys(),
                               shared=app.extensions.get("shared_replies"), may_open_ticket=may_open_ticket)


@bp.post("/api/ask")
@counted(ask_limit, "ask")
def ask():  # type: ignore[no-untyped-def]
    """Answer a question (see :func:`service.asking.answer`). The ask lane
    (``service/views/ask_lane.py``) serves this route ahead of Flask when ``ASK_LANE`` is on,
    as it is by default; this view serves it otherwise."""
    request.max_content_length = current_app.config["MAX_API_BODY"]
    try:
        return jsonify(asking.answer(request.get_json(silent=True), surroundings(may_open_ticket)))
    except asking.AskRefused as exc:
        raise ApiError(exc.message, exc.status) from exc


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
