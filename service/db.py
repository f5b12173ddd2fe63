"""The database's life in the app: a kept connection per worker thread, the CLI commands."""
from __future__ import annotations

import gc
import os
import threading
from pathlib import Path

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


def prepare(app: Flask) -> None:
    """Create or upgrade the schema and seed a new database from ``knowledge/``."""
    db = connect(app.config["DATABASE"])
    try:
        apply_migrations(db)
        seed(db, Path(app.config["KNOWLEDGE_DIR"]), app.config["HOME_AGENCY"])
        seed_paraphrases(db, Path(app.config["KNOWLEDGE_DIR"]))
    finally:
        db.close()


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
@with_appcontext
def init_db_command() -> None:
    """Create the database and seed it from knowledge/ (nothing changes if it exists).

    Example: flask --app service init-db
    """
    try:
        prepare(current_app)
    except KnowledgeError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"数据库已就绪：{current_app.config['DATABASE']}")


def init_app(app: Flask) -> None:
    """Prepare the database, close connections after each request, add CLI commands."""
    prepare(app)
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
