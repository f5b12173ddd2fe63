"""Database connections and transactions, shared by the app, the CLI and the tests (no Flask).

SQLite (a file path) is the embedded default; a ``postgresql://`` URL opens PostgreSQL
through the adapter in :mod:`service.pg`, which takes the same calls and the same SQL.
"""
from __future__ import annotations

import os
import secrets
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlite_utils

from . import pg

BUSY_TIMEOUT_MS = 10_000

# What a failing statement raises, on either database.
Error = (sqlite3.Error, pg.Error)


def is_url(target: str | Path) -> bool:
    """Whether ``target`` names a PostgreSQL database (else it is a SQLite file)."""
    return pg.is_url(target)


def is_postgres(db: object) -> bool:
    """Whether an open database is PostgreSQL."""
    return getattr(db, "is_postgres", False)


def exists(target: str | Path) -> bool:
    """Whether the database exists (a URL is taken to: the server says otherwise on connecting)."""
    return is_url(target) or Path(target).exists()


def connect(path: str | Path) -> sqlite_utils.Database:
    """Open the database: a PostgreSQL URL through :mod:`service.pg`, else a SQLite file in
    WAL mode with a busy timeout, foreign keys on.

    Autocommit mode (``isolation_level=None``): every write outside an explicit
    transaction commits at once, and transactions are always explicit and short.
    """
    if is_url(path):
        return pg.Database(str(path))  # type: ignore[return-value]
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # Deleted and overwritten content is zeroed, so erased personal data does not linger
    # in free pages.
    conn.execute("PRAGMA secure_delete = ON")
    return sqlite_utils.Database(conn)


@contextmanager
def immediate(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """A write transaction that takes the lock at once (``BEGIN IMMEDIATE``).

    Read-then-write sequences inside it cannot be interleaved with another process's
    writes; sqlite-utils calls inside it nest as savepoints, and so does a nested
    ``immediate``.
    """
    if db.conn.in_transaction:
        # Inside a caller's transaction (a change and its audit row, say): a savepoint,
        # so the whole stays one transaction.
        name = f"sp_{secrets.token_hex(6)}"
        db.execute(f"SAVEPOINT {name}")
        try:
            yield db
        except BaseException:
            if db.conn.in_transaction:
                db.execute(f"ROLLBACK TO SAVEPOINT {name}")
                db.execute(f"RELEASE SAVEPOINT {name}")
            raise
        db.execute(f"RELEASE SAVEPOINT {name}")
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class BackupError(Exception):
    """A file that is not a usable backup of this service's database."""


def backup(source: str | Path, target: str | Path) -> int:
    """Copy a live database with SQLite's online backup API; return the page count.

    Consistent even while other processes write: the copy is a snapshot of one moment.
    The copy is checked with ``PRAGMA integrity_check`` before returning.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    partial.unlink(missing_ok=True)
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # owner-only from the start
    src = sqlite3.connect(str(source), timeout=BUSY_TIMEOUT_MS / 1000)
    dst = sqlite3.connect(str(partial))
    try:
        src.backup(dst, pages=256)
        pages = dst.execute("pragma page_count").fetchone()[0]
        if dst.execute("pragma integrity_check").fetchone()[0] != "ok":
            raise BackupError("备份文件完整性检查未通过")
    finally:
        dst.close()
        src.close()
    partial.replace(target)  # a half-written backup never has the final name
    return int(pages)


def restore(source: str | Path, target: str | Path) -> None:
    """Copy a checked backup over the live database, in one locked step, and mark the
    knowledge as changed so every worker reloads it."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        try:
            ok = src.execute("pragma integrity_check").fetchone()[0] == "ok"
            tables = {r[0] for r in src.execute("select name from sqlite_master where type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise BackupError("不是有效的数据库文件") from exc
        if not ok:
            raise BackupError("备份文件完整性检查未通过")
        if not {"_migrations", "entries", "tickets"} <= tables:
            raise BackupError("这不是本服务的数据库备份")
        dst = sqlite3.connect(str(target), timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            row = dst.execute("select value from meta where key = 'kb_version'").fetchone() \
                if dst.execute("select 1 from sqlite_master where name = 'meta'").fetchone() else None
            before = int(row[0]) if row else 0
            src.backup(dst)
            # Past every version a worker may have cached, so all of them reload.
            dst.execute("insert into meta (key, value) values ('kb_version', ?) "
                        "on conflict(key) do update set value = max(cast(value as integer), ?) + 1",
                        [str(before + 1), before])
            dst.commit()
        finally:
            dst.close()
    finally:
        src.close()


def purge_contacts(db: sqlite_utils.Database, cutoff: str) -> tuple[int, bool]:
    """Erase contact details of tickets closed, or else last changed, before ``cutoff``
    (whatever their status: answered and waiting tickets too, but not a disclosure
    application still being handled), then
    checkpoint and truncate the write-ahead log so no old copy stays in it.

    Returns how many tickets were erased and whether the log could be emptied (a reader
    holding an old snapshot keeps its frames until it finishes).
    """
    cursor = db.execute(
        "update tickets set contact_name = null, contact_phone = null, contact_email = null "
        "where coalesce(closed_at, updated, created) < ? and "
        # An application whose statutory clock still runs keeps the applicant's contact.
        "not (kind = 'application' and outcome is null and received_on is not null) and "
        "(contact_name is not null or contact_phone is not null or contact_email is not null)", [cutoff])
    if is_postgres(db):
        # PostgreSQL's VACUUM frees the old row versions (its log is the server's to manage).
        db.execute("vacuum tickets")
        return int(cursor.rowcount), True
    busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return int(cursor.rowcount), not busy or busy[0] == 0
