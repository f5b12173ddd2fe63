"""Canned replies (常用答复): texts curators keep for reviewers to start a reply from (no Flask)."""
from __future__ import annotations

import re
import unicodedata
from typing import Any

import sqlite_utils

from .accounts import audit
from .knowledge import now
from .storage import immediate

MAX_TITLE = 40
MAX_BODY = 2000  # a reply's own limit (tickets.MAX_REPLY)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")  # no line breaks or controls in a title


class CannedError(Exception):
    """A canned reply was refused; the message is plain Chinese, ``status`` the HTTP code."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else ""
    return unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\x00", "").strip()


def clean(title: Any, body: Any) -> dict[str, str]:
    """A title (1 to :data:`MAX_TITLE` characters, one line) and a body (1 to :data:`MAX_BODY`)."""
    title, body = " ".join(_CONTROL_RE.sub(" ", _text(title)).split()), _text(body)
    if not title:
        raise CannedError("请填写常用答复的标题。")
    if len(title) > MAX_TITLE:
        raise CannedError(f"标题不能超过{MAX_TITLE}字。")
    if not body:
        raise CannedError("请填写常用答复的内容。")
    if len(body) > MAX_BODY:
        raise CannedError(f"内容不能超过{MAX_BODY}字（当前{len(body)}字）。")
    return {"title": title, "body": body}


def all_replies(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every canned reply, by title."""
    return [dict(r) for r in db.query("select * from canned_replies order by title, id")]


def get(db: sqlite_utils.Database, canned_id: int) -> dict[str, Any]:
    """One canned reply, or :class:`CannedError` (404)."""
    rows = list(db.query("select * from canned_replies where id = ?", [canned_id]))
    if not rows:
        raise CannedError("常用答复不存在。", 404)
    return dict(rows[0])


def _taken(db: sqlite_utils.Database, title: str, canned_id: int | None) -> None:
    row = db.execute("select id from canned_replies where title = ? and id is not ?", [title, canned_id]).fetchone()
    if row:
        raise CannedError(f"已有标题为“{title}”的常用答复。")


def create(db: sqlite_utils.Database, user: dict[str, Any], title: Any, body: Any) -> int:
    """Add a canned reply; return its id."""
    fields = clean(title, body)
    with immediate(db):
        _taken(db, fields["title"], None)
        stamp = now()
        canned_id = int(db["canned_replies"].insert({**fields, "created": stamp, "updated": stamp,
                                                     "updated_by": user["username"]}).last_pk)
        audit(db, user, "canned_create", f"canned:{canned_id}", after=fields)
    return canned_id


def update(db: sqlite_utils.Database, user: dict[str, Any], canned_id: int, title: Any, body: Any) -> None:
    """Change a canned reply's title and text."""
    fields = clean(title, body)
    with immediate(db):
        before = get(db, canned_id)
        _taken(db, fields["title"], canned_id)
        db.execute("update canned_replies set title = ?, body = ?, updated = ?, updated_by = ? where id = ?",
                   [fields["title"], fields["body"], now(), user["username"], canned_id])
        audit(db, user, "canned_update", f"canned:{canned_id}",
              before={k: before[k] for k in ("title", "body")}, after=fields)


def delete(db: sqlite_utils.Database, user: dict[str, Any], canned_id: int) -> None:
    """Remove a canned reply (replies already sent keep their text)."""
    with immediate(db):
        before = get(db, canned_id)
        db.execute("delete from canned_replies where id = ?", [canned_id])
        audit(db, user, "canned_delete", f"canned:{canned_id}", before={k: before[k] for k in ("title", "body")})
