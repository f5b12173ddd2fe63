"""Replies shared by the worker processes of one server.

Each worker keeps its own cache of recent replies (:meth:`service.desk.Desk.ask`). With
several workers, each of them works out every question again the first time it is asked
of *it*: with two workers, a question asked twice costs two analyses as often as not, and
a worker forked afresh (a re-fork after a save, a worker replaced for its memory) starts
with nothing. This cache sits behind the workers' own: one SQLite file that every worker
forked by one server reads and writes, keyed by the knowledge (its version, the database's
id and when that version was logged: :attr:`service.desk.Desk.knowledge_key`), the year
(answers name deadlines of the current year) and the question as typed.

The file is the server's, not the database's: the server makes it in a private temporary
folder before it forks its workers and removes it when it stops, so that every reader runs
the same code and settings. Only replies are stored: JSON, never pickles.

Best effort throughout: a reply that cannot be read or written in a moment is worked out
again, never an error for the citizen. Pure Python and sqlite3 (no Flask).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sqlite3
import tempfile
import threading
from pathlib import Path

from .replies import Reply

# Rows kept: a reply is 1-3 KB of JSON, so at most some 60 MB of a temporary folder.
MAX_ROWS = 20_000
# How often a worker tidies: every this many writes, the oldest replies beyond MAX_ROWS go
# (those of older knowledge versions, never read again, among them): a few dozen rows at a
# time, so that no citizen's question waits for a large delete.
PRUNE_EVERY = 50
# How long a write waits for another worker's (a checkpoint, a tidy): a cache write is never
# worth more than a moment of a citizen's wait.
BUSY_MS = 5

_SCHEMA = """
create table if not exists replies (
    id integer primary key,
    knowledge text not null,
    year integer not null,
    question text not null,
    body text not null,
    unique (knowledge, year, question)
)"""
_FIELDS = tuple(f.name for f in dataclasses.fields(Reply))
PREFIX = "inquiry-replies-"


def _alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _encode(reply: Reply) -> str:
    return json.dumps([getattr(reply, name) for name in _FIELDS], ensure_ascii=False, separators=(",", ":"))


def _decode(body: str) -> Reply | None:
    values = json.loads(body)
    if not isinstance(values, list) or len(values) != len(_FIELDS):
        return None
    return Reply(**dict(zip(_FIELDS, values)))


class SharedReplies:
    """The replies of one server's workers, in one SQLite file (see the module's doc)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._writes = 0
        self.stats = {"hits": 0, "misses": 0, "writes": 0, "errors": 0}

    @classmethod
    def create(cls) -> "SharedReplies":
        """A cache in a new private temporary folder (mode 0700), for one server's life,
        named after this process. The folders of servers that were killed outright (the
        process named is gone) are removed first: they hold citizens' questions."""
        base = Path(tempfile.gettempdir())
        for old in base.glob(f"{PREFIX}*-*"):
            pid = old.name[len(PREFIX):].split("-", 1)[0]
            try:
                if pid.isdigit() and old.stat().st_uid == os.getuid() and not _alive(int(pid)):
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                continue
        folder = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base)
        return cls(Path(folder) / "replies.db")

    def remove(self) -> None:
        """Delete the cache's folder (the server is stopping)."""
        shutil.rmtree(os.path.dirname(self.path), ignore_errors=True)

    def _conn(self) -> sqlite3.Connection:
        """One connection per thread and process: a forked worker opens its own."""
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"pragma busy_timeout = {BUSY_MS}")
            conn.execute("pragma journal_mode = wal")
            conn.execute("pragma synchronous = off")  # a cache: speed over durability
            conn.execute(_SCHEMA)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def get(self, knowledge: str, year: int, question: str) -> Reply | None:
        """The reply stored for this question, or None."""
        try:
            row = self._conn().execute("select body from replies where knowledge = ? and year = ? and question = ?",
                                       [knowledge, year, question]).fetchone()
            reply = _decode(row[0]) if row else None
        except (sqlite3.Error, ValueError, TypeError):
            self.stats["errors"] += 1
            return None
        self.stats["hits" if reply is not None else "misses"] += 1
        return reply

    def put(self, knowledge: str, year: int, question: str, reply: Reply) -> None:
        """Store a reply (another worker's reply to the same question is kept)."""
        try:
            body = _encode(reply)
            conn = self._conn()
            conn.execute("insert or ignore into replies (knowledge, year, question, body) values (?, ?, ?, ?)",
                         [knowledge, year, question, body])
            self._writes += 1
            self.stats["writes"] += 1
            if self._writes % PRUNE_EVERY == 0:
                conn.execute("delete from replies where id <= (select max(id) from replies) - ?", [MAX_ROWS])
        except (sqlite3.Error, TypeError, ValueError):
            self.stats["errors"] += 1

    def count(self) -> int:
        """How many replies are stored (for tests and the benchmark)."""
        return int(self._conn().execute("select count(*) from replies").fetchone()[0])

