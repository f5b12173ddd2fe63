"""The database's life in the app: a kept connection per worker thread, the CLI commands."""
from __future__ import annotations

import functools
import gc
import math
import os
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable

import click
import sqlite_utils
from flask import Flask, current_app, g
from flask.cli import with_appcontext

from . import related
from .desk import Desk, Settings
from .index_keeper import IndexKeeper
from .knowledge import KnowledgeError, knowledge_version, seed, seed_paraphrases
from .migrations import apply_migrations
from .storage import connect, is_url


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
    if db is not None and getattr(db, "broken", False):
        db = None  # a PostgreSQL connection the server dropped (a restart, a failover): open another
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
    if is_url(path):
        return  # a PostgreSQL server keeps its own files
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

    @click.option("--db", "db_path", type=str, default=None,
                  help="数据库文件或 postgresql:// 地址（默认：环境变量 INQUIRY_DATABASE_URL 或 "
                       "INQUIRY_DB，或实例目录下的 inquiry.db）")
    @functools.wraps(command)
    @with_appcontext
    def run(db_path: str | None, **kwargs: Any) -> Any:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if db_path is not None:
            forget_connections()
            app.config["DATABASE"] = db_path if is_url(db_path) else str(Path(db_path).resolve())
        path = app.config["DATABASE"]
        if not create and not is_url(path) and not Path(path).exists():
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


def keeper(app: Flask) -> IndexKeeper:
    """The app's :class:`IndexKeeper` (one per process: a forked worker inherits the
    master's desk and keeps its own from then on)."""
    target = app.config["DATABASE"]
    found: IndexKeeper | None = app.extensions.get("index_keeper")
    if found is None or found.target != target:
        with _DESK_LOCK:
            found = app.extensions.get("index_keeper")
            if found is None or found.target != target:
                folder = Path(app.config["KNOWLEDGE_DIR"])
                settings = desk_settings(app)
                snapshots = app.config.get("INDEX_SNAPSHOT_DIR") or os.path.join(app.instance_path, "index")
                found = IndexKeeper(
                    lambda db, version: Desk.build(db, folder, settings, version),
                    lambda: connect(target), folder, settings, Path(snapshots) if snapshots != "off" else None,
                    background_after=float(app.config.get("INDEX_BACKGROUND_AFTER", 5.0)),
                    snapshot_after=float(app.config.get("INDEX_SNAPSHOT_AFTER", 5.0)),
                    min_documents=int(app.config.get("INDEX_MIN_DOCUMENTS", 20_000)))
                found.target = target
                found.on_drop = lambda: app.extensions.pop("desk", None)
                app.extensions["index_keeper"] = found
    return found


def get_desk() -> Desk:
    """The desk for the current knowledge version.

    Each worker process checks the version (one indexed read) on every question, so a
    change saved through any worker, or on another host, is seen by all of them at their
    next question: entries and synonyms are updated in place, and anything else is rebuilt
    in the background while the previous desk answers (see service/index_keeper.py).
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    desk = keeper(app).current(get_db())
    app.extensions["desk"] = desk
    return desk


def current_desk(timeout: float = 10.0) -> Desk:
    """The desk of the knowledge version now, waiting (up to ``timeout`` seconds) while a
    large knowledge base is updated in the background: for staff who just changed it and
    want to see what the change does (the test pane, the inbox's before/after)."""
    deadline = time.monotonic() + timeout
    desk = get_desk()
    while desk.version != knowledge_version(get_db()) and time.monotonic() < deadline:
        time.sleep(0.02)
        desk = get_desk()
    return desk


def master_round(app: Flask, db: Any) -> tuple[Desk, bool]:
    """One round of the master's follower: the current desk, with what fresh workers should
    inherit built in it; and whether its related entries are found."""
    desk = keeper(app).current(db)
    app.extensions["desk"] = desk
    # What a worker would otherwise build at its first question in pinyin (0.4 s or more,
    # in every fresh worker at once, under load): built here, and shared.
    desk.pipeline.pinyin.warm()
    desk.ready_for_updates()  # and what the first update in place would work out (20 ms)
    return desk, related.for_desk(desk, wait=True) is not related.NONE


# What a fresh worker asks itself before it accepts (:func:`warm_worker`): any question does.
WARM_QUESTION = "如何申请政府信息公开"


def warm_worker(app: Flask) -> None:
    """In a freshly forked worker, before it accepts: one question to the desk (opening the
    database, reading the knowledge version, the matcher's first run), recorded nowhere, so
    that the first citizen it serves does not wait for what is done once (15-25 ms at
    100,000 entries). Not a request through Flask's test client: importing it would make
    some 2 MB of modules each worker's own."""
    with app.app_context():
        get_desk().ask(WARM_QUESTION)


def follows_knowledge(app: Flask) -> bool:
    """Whether a pre-forking server's master keeps the index current (:func:`follow_knowledge`):
    a large knowledge base, or ``INDEX_REFORK`` set."""
    return keeper(app).large() or bool(app.config.get("INDEX_REFORK"))


def warm_before_fork(app: Flask) -> bool:
    """In a pre-forking server's master that follows the knowledge, before the first fork:
    one round of what it does before every re-fork (the related entries found, the pinyin
    tables built: 0.5 s and 0.3 s at 100,000 entries), so that the first workers share them
    rather than each building its own (some 250 MB of a worker's own for a few seconds),
    and the master need not fork them again once it has them. Whether it did."""
    if not follows_knowledge(app):
        return False
    state = keeper(app)
    # No thread may be working at a fork (see follow_knowledge): this round builds in this
    # thread, and a background build already under way (a snapshot the change log could not
    # bring up to date) is waited for.
    background_after, state.background_after = state.background_after, float("inf")
    try:
        while state.building is not None:
            time.sleep(0.05)
        master_round(app, get_db())
    finally:
        state.background_after = background_after
    gc.collect()
    gc.freeze()  # long-lived: kept out of the workers' collections, as before every re-fork
    return True


# The master's follower runs below the workers (as the upload parser's child does): what it
# builds is for workers it forks later, and must not take the cores from the questions the
# workers answer now (a build in full at 100,000 entries is some 20 s of a core).
FOLLOWER_NICENESS = 10


def lower_priority(niceness: int) -> bool:
    """Run the calling thread, and only it (Linux schedules each thread on its own), at
    ``niceness`` or below; whether it could."""
    if not sys.platform.startswith("linux"):
        return False  # elsewhere a thread's id names no schedulable task (or another process)
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(niceness, os.getpriority(os.PRIO_PROCESS, tid)))
    except (OSError, OverflowError, ValueError):  # not allowed: the thread runs as it is
        return False
    return True


def follow_knowledge(app: Flask, refork: Callable[[], str | None], *, interval: float = 1.0,
                     settle: float = 60.0) -> threading.Thread:
    """In a pre-forking server's master (which answers nothing): keep the preloaded desk
    and its related entries current, and call ``refork`` (run.py: fresh workers forked from
    the master one at a time, service/refork.py) when the master holds a newer desk than the
    workers were forked with, at most every ``settle`` seconds. ``refork`` runs outside the
    fork guard, so that the master can fork while it waits; it must take no lock, and
    returns what went wrong, if anything, for the log.

    Workers update their own desks in place at once; what they change is private to each (a
    few MB per save), while what they were forked with is shared. Forking them again from a
    current master makes the whole index shared again. A change that needs a build in full (the
    files of ``knowledge/``, an index crowded with replaced documents) is built here, in this thread
    at a lower priority than the workers, and the fresh workers are forked as soon as it is
    done. Workers of a large knowledge base leave that build to this master and answer with
    what they have meanwhile (``IndexKeeper.master_builds``; past a grace, they build their
    own); those of a small one build it too, in a moment, as without a master.
    """
    state = keeper(app)
    # Forking while another thread holds a lock (the tokenizer's, a cache's) leaves the
    # child a lock no one will release: a worker that hangs at its first question. So the
    # master does all of this work in this one thread, synchronously (no background
    # builds), and a fork waits until the thread is between two rounds.
    guard = threading.Lock()
    background_after = state.background_after
    state.background_after = float("inf")  # the master builds in this thread

    def in_child() -> None:
        state.background_after = background_after  # the workers build in the background
        state.master_builds = True  # but leave full builds to this master

    os.register_at_fork(before=guard.acquire, after_in_parent=guard.release, after_in_child=in_child)

    def follow() -> None:
        lower_priority(FOLLOWER_NICENESS)
        # Also under the guard: the first workers are forked while this thread starts, and
        # opening the database imports and locks (a worker forked meanwhile waited forever
        # on a lock no thread of its own held, and never answered or stopped).
        with guard:
            db = connect(app.config["DATABASE"])
            desk = state.desk
            # What the workers were forked with, weakly (the master would keep an old desk alive).
            forked_with = (weakref.ref(desk) if desk is not None else None,
                           desk is not None and related.found(desk))
            del desk
            builds = state.stats["full"]  # the master's builds in full, all in this thread
        last = -math.inf  # the first re-fork waits for no settle time (the clock may start at boot)
        while True:
            time.sleep(interval)
            fork_now = False
            with guard:
                try:
                    state.save_pending()  # after the re-fork that a build in full asked for
                    desk, ready = master_round(app, db)
                    same = forked_with[0] is not None and forked_with[0]() is desk and forked_with[1] == ready
                    # After a build in full, at once: the workers left it to this master.
                    rebuilt = state.stats["full"] != builds
                    if not same and ready and (rebuilt or time.monotonic() - last >= settle):
                        forked_with, last = (weakref.ref(desk), ready), time.monotonic()
                        builds = state.stats["full"]
                        # Fresh workers share what the master holds now; frozen, their
                        # collector leaves it alone (scanning it would make pages their own).
                        gc.collect()
                        gc.freeze()
                        fork_now = True
                    del desk
                except Exception:  # the workers answer regardless; try again next time
                    app.logger.exception("主进程更新索引失败")
            if fork_now:
                # Outside the guard: the master's main thread forks while ``refork`` waits
                # for the fresh workers (service/refork.py; only system calls there).
                try:
                    problem = refork()
                except Exception:
                    with guard:
                        app.logger.exception("主进程重新派生工作进程失败")
                else:
                    if problem:
                        with guard:
                            app.logger.warning(problem)

    thread = threading.Thread(target=follow, name="follow-knowledge", daemon=True)
    thread.start()
    return thread


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
