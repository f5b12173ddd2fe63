"""One citizen's question through the API, apart from reading the HTTP request and writing
the response: what ``POST /api/ask`` does.

Two edges call it: the Flask view (``service/views/citizen_chat.py``) and the ask lane
(``service/views/ask_lane.py``), which serves the same route without Flask's request
machinery. Neither holds any of the logic below, so the two cannot drift apart. Nothing
here imports Flask; the edges hand in the database, the desk and the settings.
"""
from __future__ import annotations

import dataclasses
import re
import time
from typing import Any, Callable, Mapping, Sequence

import sqlite_utils

from . import feedback, inbox
from .privacy import mask_personal
from .replies import Reply
from .tickets import display_code, last_figure_ref, log_ask, open_ticket, remember_figure

_SURROGATES = re.compile(r"[\ud800-\udfff]")
MAX_SESSION_CHARS = 128
BAD_JSON = "请求格式不正确：请以 JSON 格式提交，例如 {\"question\": \"如何申请政府信息公开？\"}。"


class AskRefused(Exception):
    """A question the API turns away, with a plain Chinese message and its status (4xx)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclasses.dataclass(frozen=True)
class Surroundings:
    """What answering needs from the app: its settings and keys, the database and the desk
    (fetched only once the question has passed its checks), the other workers' replies, and
    whether the caller may open a ticket now (counted by the rate limiter when called)."""

    db: Callable[[], sqlite_utils.Database]
    desk: Callable[[], Any]
    config: Mapping[str, Any]
    keys: Sequence[str | bytes]
    shared: Any
    may_open_ticket: Callable[[], bool]


def read_question(data: Any, max_chars: int) -> tuple[str, str | None]:
    """The question and session of an ask's JSON (``data``, None when the body was not
    JSON), checked; :class:`AskRefused` with a plain message otherwise."""
    if not isinstance(data, dict):
        raise AskRefused(BAD_JSON)
    question = data.get("question")
    if question is None:
        raise AskRefused("请输入您的问题。")
    if not isinstance(question, str):
        raise AskRefused("问题必须是一段文字。")
    if not question.strip():
        raise AskRefused("请输入您的问题。")
    if len(question) > max_chars:
        raise AskRefused(f"问题过长，请控制在{max_chars}字以内。")
    # Lone surrogates cannot be stored as UTF-8; NUL bytes have no place in a question.
    # Phone, ID-card and e-mail numbers are masked before anything sees or stores them.
    question = mask_personal(_SURROGATES.sub("\ufffd", question).replace("\x00", ""))
    if not question.strip():
        raise AskRefused("请输入您的问题。")
    session = data.get("session")
    if session is not None and not isinstance(session, str):
        raise AskRefused("会话标识格式不正确。")
    if isinstance(session, str) and len(session) > MAX_SESSION_CHARS:
        raise AskRefused(f"会话标识过长（最多{MAX_SESSION_CHARS}个字符）。")
    session = _SURROGATES.sub("", session) if session else None
    return question.strip(), session


def _record_pick(db: sqlite_utils.Database, data: dict[str, Any], keys: Sequence[str | bytes]) -> None:
    """The ``pick`` of an ask: the citizen clicked one of the "did you mean" suggestions of
    an earlier answer; the pairing goes to the curators' inbox as a suggested phrasing."""
    pick = data.get("pick")
    if pick is None:
        return
    try:
        token, entry_id = inbox.read_pick(pick, keys)
    except inbox.InboxError as exc:
        raise AskRefused(exc.message, exc.status) from exc
    inbox.record_pick(db, token, entry_id)


def _with_picks(suggestions: list[dict[str, Any]], token: str, keys: Sequence[str | bytes]) -> list[dict[str, Any]]:
    """The suggestions of a clarify reply, each FAQ entry with its signed ``pick``."""
    return [dict(s, pick=inbox.pick_token(token, s["id"], keys)) if isinstance(s.get("id"), int) else dict(s)
            for s in suggestions]


def _wants_a_person(data: dict[str, Any]) -> bool:
    """The ``escalate`` flag of an ask: the citizen found the answer no help and asks for a
    ticket (the chat's 转人工办理 under 没用)."""
    flag = data.get("escalate")
    if flag is not None and not isinstance(flag, bool):
        raise AskRefused("转人工标记（escalate）必须为 true 或 false。")
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


def answer(data: Any, around: Surroundings) -> dict[str, Any]:
    """Answer the question of an ask's JSON: the response body, answered, clarify (with
    suggestions) or escalated (with a ticket). Raises :class:`AskRefused` for bad input.

    With ``"escalate": true`` the question is sent to staff as a ticket whatever the desk
    would answer (small talk aside). Every reply carries an ``ask_id`` for feedback.
    """
    started = time.perf_counter()
    config, keys = around.config, around.keys
    question, session = read_question(data, config["MAX_QUESTION_CHARS"])
    requested = _wants_a_person(data)
    db = around.db()
    _record_pick(db, data, keys)
    desk = around.desk()
    previous = last_figure_ref(db, session) if session else None
    # The server's other workers may have answered it already (service/shared_replies.py).
    reply = desk.ask(question, desk.context_from_ref(previous) if previous else None, shared=around.shared)
    # Another body's business is referred, not queued, unless the citizen still asks for staff.
    requested = (requested and (reply.status != "escalated" or reply.kind == "referral")
                 and reply.kind not in _NEVER_TICKETS)
    if requested:
        reply = _handed_over(reply)
    body = reply.public()
    body["question"] = question  # as stored: the chat keeps this, with personal numbers masked
    from .related import for_desk  # the public knowledge base's related entries (您可能还想了解)

    body["related"] = (for_desk(desk).questions(reply.entry_id)
                       if reply.status == "answered" and reply.kind == "faq" and reply.entry_id is not None else [])
    body["ticket"] = None
    token, body["ask_id"] = feedback.issue(keys)
    if reply.status == "clarify":
        body["suggestions"] = _with_picks(body["suggestions"], token, keys)
    ticket_id = ticket_code = None
    if reply.kind == "referral":
        pass  # the answer says whose business it is and where to go; no ticket
    elif reply.status == "escalated" and not around.may_open_ticket():
        body["answer"] = ("抱歉，这个问题暂时无法自动解答。您提交的待人工答复问题较多，暂时无法再生成工单，"
                          "请稍后再试，或通过页面上的电话、信函等渠道联系我们。")
        body["ticket_refused"] = True
    elif reply.status == "escalated":
        ticket = open_ticket(db, secret=keys, question=question, normalised=reply.normalised, session=session,
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
            batch=config["ASK_LOG_BATCH"], max_delay=config["ASK_LOG_MAX_DELAY"], path=config["DATABASE"])
    return body
