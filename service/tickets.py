"""Tickets for questions the desk could not answer, and the question log (no Flask)."""
from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlite_utils

from .knowledge import now
from .storage import immediate

# Crockford's base32 without look-alike letters: easy to read out on the phone.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_PREFIX = "GK"
REUSE_WINDOW = timedelta(days=1)


def new_code() -> str:
    """An unguessable ticket code: GK + 10 random base32 characters (50 bits)."""
    return CODE_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(10))


def open_ticket(db: sqlite_utils.Database, *, question: str, normalised: str, session: str | None,
                candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """Create a ticket, or reuse the one the same session opened for the same question today.

    Returns ``{"id", "code", "reused"}``.
    """
    stamp = now()
    since = (datetime.now(timezone.utc) - REUSE_WINDOW).isoformat(timespec="seconds")
    with immediate(db):
        if session:
            row = db.execute(
                "select id, code from tickets where session = ? and normalised = ? and created >= ? "
                "order by id desc limit 1", [session, normalised, since]).fetchone()
            if row:
                db.execute("update tickets set asked_count = asked_count + 1, updated = ? where id = ?",
                           [stamp, row[0]])
                return {"id": row[0], "code": row[1], "reused": True}
        for _ in range(5):
            code = new_code()
            if not db.execute("select 1 from tickets where code = ?", [code]).fetchone():
                break
        ticket_id = db["tickets"].insert({
            "code": code, "question": question, "normalised": normalised, "session": session,
            "candidates": json.dumps(candidates, ensure_ascii=False), "status": "new",
            "asked_count": 1, "created": stamp, "updated": stamp,
        }).last_pk
    return {"id": ticket_id, "code": code, "reused": False}


def log_ask(db: sqlite_utils.Database, record: dict[str, Any]) -> None:
    """Append one question to the analytics log."""
    db["asks"].insert(dict(record, created=now()))


FOLLOW_UP_WINDOW = timedelta(minutes=30)


def last_figure_ref(db: sqlite_utils.Database, session: str) -> str | None:
    """The ref of the last report figure this session asked about in the last half hour."""
    since = (datetime.now(timezone.utc) - FOLLOW_UP_WINDOW).isoformat(timespec="seconds")
    row = db.execute(
        "select ref from asks where session = ? and created >= ? and "
        "(ref like 'fact:%' or ref like 'decline:%') order by id desc limit 1", [session, since]).fetchone()
    return row[0] if row else None
