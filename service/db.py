"""The database's life in the app: a kept connection per worker thread, the CLI commands."""
from __future__ import annotations

import functools
import gc
import os
import threading
from pathlib import Path
from typing import Any, Callable

import click
import sqlite_utils
from flask import Flask, current_app, g
from flask.cli import with_appcontext

from .desk import Desk, Settings
from .knowledge import KnowledgeError, knowledge_version, seed, seed_paraphrases
from .migrations import apply_migrations
from .storage import connect


_LOCAL = threading.local()


def get_db() -> sqlite_utils.Database:
    """This thread's connection to the app's database, opened once and kept.

    Opening and closing a SQLite connection per request costs more than answering the
    question: the last connection to close checkpoints and removes the WAL file. Each
    worker thread (and each process after a fork) keeps one connection per database.
    """
    path = current_app.config["DATABASE"]
    key = (os.getpid(), path)
    pool: dict[tuple[int, str], sqlite_utils.Database] = getattr(_LOCAL, "pool", None) or {}
    _LOCAL.pool = pool
    db = pool.get(key)
    if db is None:
        if path not in _PREPARED:  # created by the Flask CLI, which prepares the chosen database
            prepare(current_app._get_current_object())  # type: ignore[attr-defined]
        db = pool[key] = connect(path)
    g.db = db
    return db


def close_db(_exc: BaseException | None = None) -> None:
    """End the request: never leave a transaction open on the kept connection."""
    db = g.pop("db", None)
    if db is not None and db.conn.in_transaction:
        db.conn.rollback()


def forget_connections() -> None:
    """Close this thread's kept connections (tests, and before a database is replaced)."""
    for db in (getattr(_LOCAL, "pool", None) or {}).values():
        db.close()
    _LOCAL.pool = {}


_PREPARED: set[str] = set()


def prepare(app: Flask) -> None:
    """Create or upgrade the schema and seed a new database from ``knowledge/``."""
    path = app.config["DATABASE"]
    db = connect(path)
    try:
        apply_migrations(db)
        seed(db, Path(app.config["KNOWLEDGE_DIR"]), app.config["HOME_AGENCY"])
        seed_paraphrases(db, Path(app.config["KNOWLEDGE_DIR"]))
    finally:
        db.close()
    private(path)
    _PREPARED.add(path)


def private(path: str | Path) -> None:
    """The database and its WAL files are readable by the service's user only."""
    for suffix in ("", "-wal", "-shm"):
        try:
            os.chmod(f"{path}{suffix}", 0o600)
        except FileNotFoundError:
            pass


def with_database(command: Callable[..., Any] | None = None, *, create: bool = False) -> Any:
    """A CLI command that works on the database ``--db`` names (default: ``$INQUIRY_DB`` or
    the instance folder's ``inquiry.db``), migrates it, and says which one it used.

    Without ``--db`` an operator could act on another database than the server's; and a
    command given a path that does not exist refuses (only ``init-db`` and ``restore``
    create one), so a typo never yields an empty database, a backup of nothing, or an
    account the server never sees.
    """
    if command is None:
        return functools.partial(with_database, create=create)

    @click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="数据库文件（默认：环境变量 INQUIRY_DB，或实例目录下的 inquiry.db）")
    @functools.wraps(command)
    @with_appcontext
    def run(db_path: Path | None, **kwargs: Any) -> Any:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if db_path is not None:
            forget_connections()
            app.config["DATABASE"] = str(db_path.resolve())
        path = app.config["DATABASE"]
        if not create and not Path(path).exists():
            raise click.ClickException(f"数据库不存在：{path}。请用 --db 指定服务使用的数据库，"
                                       "或先运行 flask --app service init-db --db 路径 创建。")
        if path not in _PREPARED:
            try:
                prepare(app)
            except KnowledgeError as exc:
                raise click.ClickException(str(exc)) from exc
        click.echo(f"数据库：{path}", err=True)
        return command(**kwargs)

    return run


_DESK_LOCK = threading.Lock()


def desk_settings(app: Flask) -> Settings:
    """The desk's settings from the app config (the decision thresholds are fitted data in
    ``knowledge/decision.toml``, not config)."""
    return Settings(home_agency=app.config["HOME_AGENCY"], today=app.config.get("TODAY"))


def get_desk() -> Desk:
    """The desk for the current knowledge version, rebuilt when staff changed the knowledge.

    Each worker process checks the version (one indexed read) on every question, so a
    change saved through any worker is seen by all of them at their next question.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    version = knowledge_version(get_db())
    cached: Desk | None = app.extensions.get("desk")
    if cached is not None and cached.version == version:
        return cached
    with _DESK_LOCK:
        cached = app.extensions.get("desk")
        if cached is None or cached.version != version:
            settings = desk_settings(app)
            app.extensions.pop("desk", None)  # let the old index go before the new one is built
            cached = Desk.build(get_db(), Path(app.config["KNOWLEDGE_DIR"]), settings, version)
            app.extensions["desk"] = cached
            # The index is long-lived: keep the garbage collector from rescanning its
            # millions of objects on every full collection (pauses of 100 ms and more).
            gc.collect()
            gc.freeze()
    return cached


@click.command("init-db")
@with_database(create=True)
def init_db_command() -> None:
    """Create the database and seed it from knowledge/ (nothing changes if it exists).

    Example: flask --app service init-db --db /srv/inquiry/inquiry.db
    """
    click.echo(f"数据库已就绪：{current_app.config['DATABASE']}")


def init_app(app: Flask, *, lazily: bool = False) -> None:
    """Prepare the database (at once, or for the Flask CLI when a command names it), close
    connections after each request, add CLI commands."""
    if not lazily:
        prepare(app)
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
