"""What citizens say of the answers they got (no Flask).

Two kinds of feedback:

* **On the desk's answers.** Every reply of ``POST /api/ask`` carries an opaque ``ask_id``;
  ``POST /api/feedback`` says whether it helped (有用 / 没用) and, if not, why
  (:data:`REASONS`, with an optional note). One feedback per answer.
* **On a reviewer's reply to a ticket.** On the lookup page the citizen rates the reply once
  (满意 / 基本满意 / 不满意, :data:`RATINGS`); it is kept on the ticket.

Why the ``ask_id`` is signed rather than looked up: the question log is written in batches
per worker (:class:`service.tickets.AskLog`), so when a reply leaves, its ``asks`` row may
still sit in the memory of a worker other than the one the feedback reaches, and a worker
that is killed outright never writes it. An ``ask_id`` is therefore ``TOKEN.SIGNATURE``: a
random token, stored in the question's ``asks`` row (``ask_token``) so that feedback and
question can be joined, and an HMAC of the token under the service's secret key. A valid
signature proves that the id was issued here, so feedback is accepted at once, whichever
worker holds the row; forging an id needs the key, and ids issued under a retired key (after
``rotate-secret``) still verify. One feedback per token is enforced by SQLite itself:
``feedback.ask_token`` is the primary key, so a repeat from any worker is refused.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

import sqlite_utils

from .privacy import mask_personal

# Why an answer did not help: a short code stored, the label the citizen reads.
REASONS = {"off_topic": "答非所问", "outdated": "内容过时", "unclear": "看不懂", "other": "其他"}
# How a citizen rates a reviewer's reply to their ticket.
RATINGS = {"satisfied": "满意", "mostly": "基本满意", "unsatisfied": "不满意"}
MAX_REASON = 200
MAX_ASK_ID = 100

_TOKEN_BYTES = 16
_SIGNATURE_BYTES = 12
_ASK_ID_RE = re.compile(r"^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{16})$")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f\u2028\u2029]")

UNKNOWN_ANSWER = "找不到这条回答，无法评价。"
ALREADY_GIVEN = "您已经评价过这条回答，谢谢。"


class FeedbackError(Exception):
    """Feedback was refused; the message is plain Chinese, ``status`` the HTTP code."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


class UnknownAnswer(FeedbackError):
    """The ``ask_id`` was not issued by this service (malformed, or a wrong signature)."""

    def __init__(self) -> None:
        super().__init__(UNKNOWN_ANSWER, 404)


class AlreadyGiven(FeedbackError):
    """This answer, or this ticket's reply, was rated before."""

    def __init__(self, message: str = ALREADY_GIVEN) -> None:
        super().__init__(message, 409)


@dataclass(frozen=True)
class Feedback:
    """One citizen's word on one answer, validated."""

    ask_id: str
    helpful: bool
    reason_code: str | None
    reason: str | None


def _raw(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


def _signature(token: str, key: str | bytes) -> str:
    mac = hmac.new(_raw(key), b"ask-id:" + token.encode(), hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def issue(keys: Sequence[str | bytes]) -> tuple[str, str]:
    """A new ``(token, ask_id)``: the token goes into the question log, the id to the client,
    signed with the current key (the first of ``keys``)."""
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    return token, f"{token}.{_signature(token, keys[0])}"


def token_of(ask_id: str, keys: Sequence[str | bytes]) -> str:
    """The token of an ``ask_id`` signed with any of ``keys`` (current or retired), or
    :class:`UnknownAnswer`."""
    match = _ASK_ID_RE.match(ask_id)
    if not match:
        raise UnknownAnswer()
    token, given = match.groups()
    ok = False
    for key in keys:  # each compared in constant time
        ok |= hmac.compare_digest(given, _signature(token, key))
    if not ok:
        raise UnknownAnswer()
    return token


def clean_note(value: Any) -> str | None:
    """An optional note as stored: a string of at most :data:`MAX_REASON` characters, without
    control characters, with personal numbers masked; None when empty."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise FeedbackError("补充说明必须是一段文字。")
    if len(value) > MAX_REASON:
        raise FeedbackError(f"补充说明过长，请控制在{MAX_REASON}字以内。")
    text = _CONTROL.sub(" ", unicodedata.normalize("NFC", _SURROGATES.sub("\ufffd", value))).strip()
    return mask_personal(text[:MAX_REASON]) or None


def clean(data: Any) -> Feedback:
    """Validate the body of ``POST /api/feedback``; raise :class:`FeedbackError` (400)."""
    if not isinstance(data, dict):
        raise FeedbackError("请求格式不正确：请以 JSON 格式提交，例如 {\"ask_id\": \"…\", \"helpful\": true}。")
    ask_id = data.get("ask_id")
    if not isinstance(ask_id, str) or not ask_id:
        raise FeedbackError("请指明要评价的回答（ask_id）。")
    if len(ask_id) > MAX_ASK_ID:
        raise FeedbackError("回答标识（ask_id）格式不正确。")
    helpful = data.get("helpful")
    if not isinstance(helpful, bool):
        raise FeedbackError("请说明这条回答是否有用（helpful 为 true 或 false）。")
    code = data.get("reason_code")
    if code is not None and (not isinstance(code, str) or code not in REASONS):
        raise FeedbackError("原因无效：请选择" + "、".join(REASONS.values()) + "之一。")
    if code is not None and helpful:
        raise FeedbackError("选择“有用”时无需选择原因。")
    return Feedback(ask_id=ask_id, helpful=helpful, reason_code=code, reason=clean_note(data.get("reason")))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def record(db: sqlite_utils.Database, token: str, feedback: Feedback) -> None:
    """Store the feedback on the answer with this token; :class:`AlreadyGiven` if it has some."""
    cursor = db.execute(
        "insert into feedback (ask_token, helpful, reason_code, reason, created) values (?, ?, ?, ?, ?) "
        "on conflict (ask_token) do nothing",
        [token, int(feedback.helpful), feedback.reason_code, feedback.reason, _now()])
    if cursor.rowcount == 0:
        raise AlreadyGiven()


def rate_reply(db: sqlite_utils.Database, ticket_id: int, rating: Any) -> str:
    """Rate the reply of a ticket once; return the rating's label.

    Only a reply the citizen can read (the ticket answered or closed, with a reply) may be
    rated, and only once: later ratings are refused, politely, with the one given.
    """
    if not isinstance(rating, str) or rating not in RATINGS:
        raise FeedbackError("请选择" + "、".join(f"“{label}”" for label in RATINGS.values()) + "中的一项。")
    cursor = db.execute(
        "update tickets set satisfaction = ?, satisfaction_at = ? where id = ? and satisfaction is null "
        "and status in ('answered', 'closed') and coalesce(reply, '') != ''", [rating, _now(), ticket_id])
    if cursor.rowcount == 1:
        return RATINGS[rating]
    row = db.execute("select satisfaction from tickets where id = ?", [ticket_id]).fetchone()
    if row and row[0]:
        raise AlreadyGiven(f"您已评价过这次答复（{RATINGS.get(row[0], row[0])}），谢谢。")
    raise FeedbackError("工作人员答复后才能评价。", 409)
