"""Rate-limit counters shared by every worker process on a host, without a server (no Flask).

Flask-Limiter's in-memory storage counts per process: 120 questions a minute became 240 on
two workers and about 1,900 on sixteen. This storage keeps the counters in a small SQLite
file of their own (``sqlite:///path/ratelimits.db``), apart from the service's database so
that counting never waits for its write lock; a count is one short write. With Redis
configured (``redis://…``) Flask-Limiter's own Redis storage is used instead, for several
hosts.

A counted request costs one write: the count and window end that the write returns are
kept for the rate-limit headers of the same response (``X-RateLimit-Remaining``,
``-Reset``), which would otherwise read them back with two more queries.
"""
from __future__ import annotations

import os
import re
import sqlite3
import threading
import time

from limits.storage import Storage

# How long after counting a request its count stands for the stored one (the headers of
# its response are read within milliseconds; another worker may count meanwhile).
JUST_COUNTED_SECONDS = 1.0

_SCHEMA = "create table if not exists counters (key text primary key, count integer not null, expires real not null)"


class SQLiteStorage(Storage):
    """Fixed-window counters in a SQLite file: ``sqlite:////absolute/path.db``."""

    STORAGE_SCHEME = ["sqlite"]

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options: float | str | bool) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        path = uri[len("sqlite://"):] or ":memory:"
        if re.match(r"^/[A-Za-z]:[\\/]", path):  # sqlite:///C:/... on Windows
            path = path[1:]
        self.path = path
        self._local = threading.local()
        self._writes = 0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sqlite3.Error

    def _conn(self) -> sqlite3.Connection:
        """One connection per thread and process (a forked worker opens its own)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            if self.path != ":memory:":
                os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=5, isolation_level=None, check_same_thread=False)
            for attempt in range(50):  # several workers may open a new file at once
                try:
                    conn.execute("PRAGMA journal_mode = WAL")
                    break
                except sqlite3.OperationalError:
                    if attempt == 49:
                        raise
                    time.sleep(0.02)
            conn.execute("PRAGMA synchronous = OFF")  # counters, not records: speed over durability
            conn.execute(_SCHEMA)
            if self.path != ":memory:":
                os.chmod(self.path, 0o600)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        at = time.time()
        conn = self._conn()
        count, expires = conn.execute(
            "insert into counters (key, count, expires) values (?, ?, ?) on conflict(key) do update set "
            "count = case when expires <= ? then excluded.count else count + excluded.count end, "
            "expires = case when expires <= ? then excluded.expires else expires end returning count, expires",
            [key, amount, at + expiry, at, at]).fetchone()
        self._writes += 1
        if self._writes % 1000 == 0:  # now and then, forget windows that ran out
            conn.execute("delete from counters where expires <= ?", [at])
        self._local.counted = (key, int(count), float(expires), at)
        return int(count)

    def _just_counted(self, key: str) -> tuple[int, float] | None:
        """The count and window end this thread's last count of ``key`` returned, if it was
        made a moment ago (for the headers of the response to the request it counted)."""
        counted = getattr(self._local, "counted", None)
        if counted is None or counted[0] != key:
            return None
        now = time.time()
        if now - counted[3] > JUST_COUNTED_SECONDS or counted[2] <= now:
            self._local.counted = None
            return None
        return counted[1], counted[2]

    def get(self, key: str) -> int:
        known = self._just_counted(key)
        if known is not None:
            return known[0]
        row = self._conn().execute("select count from counters where key = ? and expires > ?",
                                   [key, time.time()]).fetchone()
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        known = self._just_counted(key)
        if known is not None:
            # The headers read the count, then the window's end: both are now given.
            self._local.counted = None
            return known[1]
        row = self._conn().execute("select expires from counters where key = ?", [key]).fetchone()
        return float(row[0]) if row and row[0] > time.time() else time.time()

    def check(self) -> bool:
        try:
            self._conn().execute("select 1")
            return True
        except sqlite3.Error:
            return False

    def reset(self) -> int | None:
        self._local.counted = None
        return int(self._conn().execute("delete from counters").rowcount)

    def clear(self, key: str) -> None:
        self._local.counted = None
        self._conn().execute("delete from counters where key = ?", [key])
