"""Copying the service's SQLite database into PostgreSQL, table by table, with counts (no Flask)."""
from __future__ import annotations

from typing import Any, Callable

import sqlite_utils

from . import pg
from .migrations import apply_migrations
from .storage import immediate, is_postgres

# Kept by triggers on ``tickets`` (migration 0009): rebuilt by copying the tickets, then
# compared with the source like every other table.
DERIVED = ("ticket_groups", "ticket_counts")
# Tables a new database already fills when it is migrated: replaced by the source's rows.
REPLACED = ("_migrations", "meta")


class TransferError(Exception):
    """The copy cannot start (a target that already holds data) or did not match."""


def _parents_first(target: Any, tables: list[str]) -> list[str]:
    """The tables ordered so that a row's foreign keys point at rows already copied."""
    edges = target.execute(
        "select c.conrelid::regclass::text, c.confrelid::regclass::text from pg_constraint c "
        "where c.contype = 'f'").fetchall()
    needs: dict[str, set[str]] = {t: set() for t in tables}
    for child, parent in edges:
        if child in needs and parent in needs and child != parent:
            needs[child].add(parent)
    ordered: list[str] = []
    while needs:
        ready = sorted(t for t, parents in needs.items() if not parents - set(ordered))
        if not ready:
            raise TransferError("外键关系有环，无法确定复制顺序")
        for table in ready:
            ordered.append(table)
            del needs[table]
    return ordered


def copy_to_postgres(source: sqlite_utils.Database, target: Any,
                     progress: Callable[[str, int], None] | None = None) -> dict[str, tuple[int, int]]:
    """Copy every table of ``source`` (SQLite, migrated) into ``target`` (PostgreSQL), then
    count the rows of each table on both sides; return ``{table: (source, target)}``.

    The target is migrated first and must hold no data of its own. The copy is one
    transaction: a failure leaves the target as empty as it was.
    """
    if not is_postgres(target):
        raise TransferError("目标必须是 PostgreSQL 数据库（postgresql://…）")
    apply_migrations(source)
    apply_migrations(target)
    source_tables = [t for t in source.table_names() if not t.startswith("sqlite_")]
    target_tables = set(target.table_names())
    missing = [t for t in source_tables if t not in target_tables]
    if missing:
        raise TransferError(f"目标数据库缺少这些表：{'、'.join(missing)}")
    busy = [t for t in source_tables if t not in REPLACED + DERIVED
            and target.execute(f"select 1 from {t} limit 1").fetchone()]
    if busy:
        raise TransferError(f"目标数据库已有数据（{'、'.join(busy)}），只能复制到新建的空数据库")
    generated = {(t, c) for t, c in target.execute(
        "select table_name, column_name from information_schema.columns "
        "where table_schema = current_schema() and is_generated = 'ALWAYS'").fetchall()}
    identities = dict(target.execute(
        "select table_name, column_name from information_schema.columns "
        "where table_schema = current_schema() and is_identity = 'YES'").fetchall())
    raw = target.conn.raw
    with immediate(target):
        for table in REPLACED + DERIVED:
            target.execute(f"delete from {table}")
        for table in _parents_first(target, [t for t in source_tables if t not in DERIVED]):
            columns = [c.name for c in source[table].columns if (table, c.name) not in generated]
            if table == "feedback":
                columns = ["rowid", *columns]  # the analytics read feedback in its rowid order
            select = f"select {', '.join(columns)} from {table}"
            copied = 0
            with raw.cursor().copy(f"copy {table} ({', '.join(columns)}) from stdin") as copy:
                for row in source.execute(select):
                    copy.write_row([pg.clean(v) for v in row])
                    copied += 1
            if table in identities:
                column = identities[table]
                raw.execute(f"select setval(pg_get_serial_sequence(%s, %s), "
                            f"coalesce((select max({column}) from {table}), 0) + 1, false)", [table, column])
            if progress:
                progress(table, copied)
    counts = {}
    for table in source_tables:
        counts[table] = (int(source.execute(f"select count(*) from {table}").fetchone()[0]),
                         int(target.execute(f"select count(*) from {table}").fetchone()[0]))
    wrong = {t: c for t, c in counts.items() if c[0] != c[1]}
    if wrong:
        raise TransferError("复制后行数不一致：" + "；".join(f"{t} 源 {a} 行，目标 {b} 行" for t, (a, b) in wrong.items()))
    return counts
