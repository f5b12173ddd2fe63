"""The citizens' side: the chat page and ``POST /api/ask``."""
from __future__ import annotations

import re
import time
import tomllib
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request

from .db import get_db, get_desk
from .errors import ApiError
from .tickets import last_figure_ref, log_ask, open_ticket

bp = Blueprint("chat", __name__)

_SURROGATES = re.compile(r"[\ud800-\udfff]")
MAX_SESSION_CHARS = 128


def _examples() -> list[str]:
    path = Path(current_app.config["KNOWLEDGE_DIR"]) / "site.toml"
    try:
        with path.open("rb") as fh:
            return list(tomllib.load(fh).get("examples", []))
    except (OSError, tomllib.TOMLDecodeError):
        return []


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
    # Lone surrogates cannot be stored as UTF-8; NUL bytes have no place in a question.
    question = _SURROGATES.sub("\ufffd", question).replace("\x00", "")
    if not question.strip():
        raise ApiError("请输入您的问题。")
    limit = current_app.config["MAX_QUESTION_CHARS"]
    if len(question) > limit:
        raise ApiError(f"问题过长，请控制在{limit}字以内。")
    session = data.get("session")
    if session is not None and not isinstance(session, (str, int)):
        raise ApiError("会话标识格式不正确。")
    session = _SURROGATES.sub("", str(session))[:MAX_SESSION_CHARS] if session not in (None, "") else None
    return question.strip(), session


@bp.post("/api/ask")
def ask():  # type: ignore[no-untyped-def]
    """Answer a question: answered, clarify (with suggestions) or escalated (with a ticket)."""
    started = time.perf_counter()
    question, session = _read_question()
    db = get_db()
    desk = get_desk()
    reply = desk.ask(question, desk.context_from_ref(last_figure_ref(db, session)) if session else None)
    body = reply.public()
    body["ticket"] = None
    ticket_id = None
    if reply.status == "escalated":
        ticket = open_ticket(db, question=question, normalised=reply.normalised, session=session,
                             candidates=reply.candidates)
        ticket_id = ticket["id"]
        body["ticket"] = {"code": ticket["code"]}
        body["answer"] = (f"抱歉，这个问题暂时无法自动解答。已为您生成工单（编号 {ticket['code']}），"
                          "工作人员会尽快跟进答复，请保存好工单编号以便查询。")
    latency_ms = (time.perf_counter() - started) * 1000
    log_ask(db, {"session": session, "question": question, "normalised": reply.normalised,
                 "status": reply.status, "kind": reply.kind, "entry_id": reply.entry_id,
                 "ref": reply.ref, "confidence": reply.confidence, "latency_ms": latency_ms,
                 "ticket_id": ticket_id})
    return jsonify(body)
