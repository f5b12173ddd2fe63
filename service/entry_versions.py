"""The history of each FAQ entry: one snapshot per saved version (table ``entry_versions``,
migration 0015), listed with who saved it, when, and what changed.

Pure Python (no Flask). Snapshots are what :func:`service.faq._snapshot` returns: the
entry's key, editable fields, version and alternate texts.
"""
from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from .audit_text import Change, action_name, field_changes
from .knowledge import now

#: Fields compared between versions (key and version number aside), in page order.
CONTENT = ("question", "alternates", "answer", "category", "source", "status")
#: How a version came about, where the audit action's name does not say it.
VERSION_ACTIONS = {"baseline": "建立历史记录前的内容", "backfill": "建立历史记录时的内容"}


def content(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The part of a snapshot a restore brings back."""
    return {k: snapshot.get(k) for k in CONTENT}


def record(db: sqlite_utils.Database, user: dict[str, Any] | None, entry_id: int, action: str,
           snapshot: dict[str, Any], before: dict[str, Any] | None = None, note: str | None = None) -> None:
    """Keep ``snapshot`` as the entry's version ``snapshot["version"]``.

    ``before`` is the entry as it was: if its version was never kept (an entry seeded, or
    changed by code that does not record versions), it is kept first, so the history
    always holds the content a curator may want back.
    """
    if before is not None and not db.execute("select 1 from entry_versions where entry_id = ? and version = ?",
                                             [entry_id, before["version"]]).fetchone():
        _insert(db, None, entry_id, "baseline", before, None, at="")  # when it was saved is unknown
    _insert(db, user, entry_id, action, snapshot, note)


def _insert(db: sqlite_utils.Database, user: dict[str, Any] | None, entry_id: int, action: str,
            snapshot: dict[str, Any], note: str | None, at: str | None = None) -> None:
    db.execute(
        "insert into entry_versions (entry_id, version, action, user_id, username, at, note, snapshot) "
        "values (?, ?, ?, ?, ?, ?, ?, ?) on conflict (entry_id, version) do update set "
        "action = excluded.action, user_id = excluded.user_id, username = excluded.username, "
        "at = excluded.at, note = excluded.note, snapshot = excluded.snapshot",
        [entry_id, int(snapshot["version"]), action, user["id"] if user else None,
         user["username"] if user else None, now() if at is None else at, note, json.dumps(snapshot, ensure_ascii=False)])


def get(db: sqlite_utils.Database, entry_id: int, version: int) -> dict[str, Any] | None:
    """One kept version's snapshot, or ``None``."""
    row = db.execute("select snapshot from entry_versions where entry_id = ? and version = ?",
                     [entry_id, version]).fetchone()
    return json.loads(row[0]) if row else None


def history(db: sqlite_utils.Database, entry_id: int,
            value_names: dict[str, dict[str, str]] | None = None) -> list[dict[str, Any]]:
    """The entry's kept versions, newest first, each with ``label`` (how it came about) and
    ``changes`` (a list of :class:`~service.audit_text.Change` against the version before)."""
    rows = [dict(r) for r in db.query("select version, action, username, at, note, snapshot from entry_versions "
                                      "where entry_id = ? order by version", [entry_id])]
    previous: dict[str, Any] | None = None
    for row in rows:
        snapshot = json.loads(row.pop("snapshot"))
        row["content"] = content(snapshot)
        row["label"] = VERSION_ACTIONS.get(row["action"]) or action_name(row["action"])
        changes: list[Change] = field_changes(previous, row["content"], value_names)
        row["changes"] = changes
        row["first"] = previous is None
        previous = row["content"]
    return rows[::-1]

