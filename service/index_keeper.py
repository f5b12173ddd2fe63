"""The desk a worker answers with, kept current as the knowledge changes (no Flask).

Every question reads the knowledge version (one indexed read, so a save on any worker or
host is seen at the next question). When it moved on, the change log says what changed:
entries, lexicon words and reports are updated in place in milliseconds
(:meth:`service.desk.Desk.updated`); anything else (the files of ``knowledge/``, a restored
backup, a log that does not reach back far enough) needs a full build, which runs in a
background thread while the old desk keeps answering, and is swapped in when done. A large
worker of a pre-forking master that follows the knowledge leaves that build to the master,
which forks fresh workers with it (:attr:`IndexKeeper.master_builds`).

A full build is also written to a snapshot file, validated against the database, the
knowledge version, the files of ``knowledge/`` and the code, so that a new process
starts from it instead of building (with the changes since applied in place).
"""
from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import pickle
import secrets
import tempfile
import threading
import time
import weakref
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from . import related
from .desk import Desk
from .knowledge import changes_since, knowledge_version

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 6
# Updates in place between two snapshots written in the background.
SNAPSHOT_EVERY = 50
# How long a worker whose master builds in full (``IndexKeeper.master_builds``) leaves a full
# build to it, at least, and in builds' time: past that, the master is taken to have failed
# and the worker builds its own.
MASTER_BUILD_GRACE = 300.0
MASTER_BUILD_GRACE_BUILDS = 10
# A snapshot's temporary file this long untouched was left by a process stopped while it
# wrote (a server stopped during a save): removed at the next start or save.
STALE_SNAPSHOT_SECONDS = 600
_CODE = Path(__file__).resolve().parent


def database_id(db: Any) -> str:
    """A random name the database keeps for life, so a snapshot is never taken for another
    database's (copies made by backup keep it, which is right: same knowledge)."""
    row = db.execute("select value from meta where key = 'db_id'").fetchone()
    if row:
        return str(row[0])
    db.execute("insert into meta (key, value) values ('db_id', ?) on conflict (key) do nothing",
               [secrets.token_hex(8)])
    return str(db.execute("select value from meta where key = 'db_id'").fetchone()[0])


def version_stamp(db: Any, version: int) -> str | None:
    """When the change of that knowledge version was logged (None if it was not)."""
    row = db.execute("select created from knowledge_changes where version = ?", [version]).fetchone()
    return str(row[0]) if row else None


def fingerprint(folder: Path, settings: Any) -> str:
    """What a snapshot was built from besides the database: the knowledge files, the code
    that builds and reads the index, the libraries that cut and read words, and the desk's
    settings."""
    h = hashlib.sha256(f"{SNAPSHOT_FORMAT}\n{settings!r}\n".encode())
    for package in ("jieba", "synonyms", "pypinyin", "opencc", "numpy", "rapidfuzz"):
        try:
            h.update(f"{package}={metadata.version(package)}\n".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{package}=-\n".encode())
    for path in sorted([*folder.rglob("*"), *_CODE.glob("*.py")]):
        if path.is_file():
            h.update(str(path.relative_to(path.parents[1])).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _tidy(folder: Path) -> None:
    """Remove the temporary files of snapshots whose writer was stopped part-way (some
    100 MB each at 100,000 entries); one still being written is touched all the time."""
    try:
        leftovers = list(folder.glob(".index-*"))
    except OSError:
        return
    for leftover in leftovers:
        try:
            if time.time() - leftover.stat().st_mtime > STALE_SNAPSHOT_SECONDS:
                leftover.unlink()
        except OSError:
            pass  # gone meanwhile, or not ours to remove


def _forked() -> None:
    """A worker forked while a thread of the master held a lock or was building would wait
    for it forever: the child's keepers start with fresh locks and no build under way."""
    for keeper in list(_KEEPERS):
        keeper._forked()


class IndexKeeper:
    """One process's desk, with its updates, background builds and snapshots."""

    def __init__(self, build: Callable[[Any, int], Desk], connect: Callable[[], Any], folder: Path,
                 settings: Any, snapshot_dir: Path | None, *, background_after: float = 5.0,
                 snapshot_after: float = 5.0, min_documents: int = 20_000):
        """``build(db, version)`` makes a full desk; ``connect()`` opens a connection for a
        background thread. A knowledge base of at least ``min_documents`` documents whose
        builds took ``background_after`` seconds or more is updated and rebuilt in the
        background; one whose builds took ``snapshot_after`` seconds or more is saved. (Both
        conditions: a loaded machine building a small knowledge base slowly must not turn a
        curator's save into an answer that comes a moment later.)"""
        self._build_desk = build
        self._connect = connect
        self.folder = folder
        self.settings = settings
        self.snapshot_dir = snapshot_dir
        self.background_after = background_after
        self.snapshot_after = snapshot_after
        self.min_documents = min_documents
        self.documents = 0  # in the last full build
        self.desk: Desk | None = None
        self._lock = threading.Lock()
        self._starting = threading.Lock()
        self.building: int | None = None  # the version a background build is making
        self.build_seconds = 0.0
        self.updates = 0  # updates in place since the last snapshot
        self.stats = {"full": 0, "background": 0, "updates": 0, "snapshot_loads": 0}
        self._fingerprint: str | None = None
        self._pid = os.getpid()
        _KEEPERS.add(self)
        self.target: Any = None  # the database it keeps the desk of (set by its owner)
        # A worker of a pre-forking master that follows the knowledge (db.follow_knowledge):
        # the master builds in full, once for the host, and forks fresh workers with it. A
        # full build in every worker as well would take the cores the workers answer on (at
        # 100,000 entries: three builds on two cores, questions waiting 0.4 s) and make a
        # whole index each worker's own, to be thrown away at the re-fork.
        self.master_builds = False
        # (version, since when) a full build was left to the master.
        self._left_to_master: tuple[int, float] | None = None
        self._unsaved: Any = None  # a master's build in full whose snapshot is still to write
        self.on_drop: Callable[[], None] | None = None  # forget other references to the old desk

    def _forked(self) -> None:
        self._lock = threading.Lock()
        self._starting = threading.Lock()
        self.building = None
        self._left_to_master = None

    # -- the desk for a question ------------------------------------------------------
    def current(self, db: Any, version: int | None = None) -> Desk:
        """The desk for the database's knowledge version, or the previous one while a
        background build makes the new one. Every desk it gives is named
        (:attr:`Desk.knowledge_key`, see :meth:`_name`) where it is made."""
        if version is None:
            version = knowledge_version(db)
        desk = self.desk
        if desk is not None and (desk.version == version or self.building is not None):
            return desk
        if desk is not None and self.large():
            # A large knowledge base: even an update in place (0.1-0.3 s at 100,000 entries)
            # is made in the background, and no question waits for it.
            left = self._left_to_master
            if left is not None and left[0] == version and not self._master_overdue():
                return desk  # the master builds it (and nothing changed since it was seen)
            self._start_background()
            return desk
        with self._lock:
            desk = self.desk
            if desk is not None and (desk.version == version or self.building is not None):
                return desk
            if desk is None:
                desk = self._load_snapshot(db) or self._build(db, version)
                self.desk = desk
            if desk.version != version:
                updated = self._catch_up(db, desk, version)
                if updated is None:
                    if not self.large():
                        desk = None  # let the old index go before the new one is built
                        updated = self._build(db, version)
                    else:
                        self._start_background()
                        return desk
                self.desk = desk = updated
            return desk

    @staticmethod
    def _name(desk: Desk, db: Any) -> Desk:
        """Set :attr:`Desk.knowledge_key` from the database the desk was made from: its id and
        when the desk's version was logged (a version not logged, after a restore say, is
        named by nothing, and its replies are not shared)."""
        stamp = version_stamp(db, desk.version)
        desk.knowledge_key = (desk.version, f"{database_id(db)}:{stamp}" if stamp else "")
        return desk

    def _catch_up(self, db: Any, desk: Desk, version: int) -> Desk | None:
        """``desk`` updated in place to ``version`` by the change log, or None if the changes
        need a full build."""
        changes = changes_since(db, desk.version)
        if changes is None or any(kind not in ("entries", "lexicon", "reports") for _, kind, _ in changes):
            return None
        ids: set[int] = set()
        words: set[str] = set()
        reports: set[int] = set()
        for _, kind, ref in changes:
            if kind == "entries":
                ids.update(int(i) for i in ref or [])
            elif kind == "reports":
                reports.update(int(i) for i in ref or [])
            else:
                words.update(str(w) for w in ref or [] if isinstance(w, str))
        updated = desk.updated(db, ids, version, words or None, reports or None)
        if updated is None:
            return None
        if self._crowded(updated) and self.in_this_thread():
            return None  # the caller builds in full, in its own thread (see in_this_thread)
        self._name(updated, db)
        self.stats["updates"] += 1
        self.updates += 1
        # What the update made lives as long as the desk: out of the collector's scans, which
        # would otherwise walk it (and, in a forked worker, make its pages private) each time.
        gc.freeze()
        if self._crowded(updated) and self.building is None:
            self._start_background()
        elif self.updates >= SNAPSHOT_EVERY and self.worth_saving() \
                and os.getpid() == self._pid:
            # Only the process that made the keeper (the master, under gunicorn): pickling
            # touches every object, which would make a forked worker's shared pages its own.
            self.updates = 0
            if self.in_this_thread():
                self._save_quietly(updated)
            else:
                threading.Thread(target=self._save_quietly, args=(updated,), daemon=True).start()
        return updated

    def in_this_thread(self) -> bool:
        """Whether this keeper does all its work in the thread that asks for a desk: a
        pre-forking master's (``background_after`` infinite, see ``db.follow_knowledge``),
        where a thread of its own still running at a fork would leave the child a lock no
        one releases. Its snapshot saves and rebuilds then run in that thread, which forks
        wait for, rather than in threads of their own."""
        return self.background_after == float("inf")

    # -- full builds --------------------------------------------------------------------
    def _build(self, db: Any, version: int) -> Desk:
        started = time.perf_counter()
        # Let the old index go before the new one is built (the peak memory of a build).
        self.desk = None
        if self.on_drop is not None:
            self.on_drop()
        desk = self._name(self._build_desk(db, version), db)
        self.build_seconds = time.perf_counter() - started
        self.documents = len(desk.index.docs)
        self.stats["full"] += 1
        self.updates = 0  # updates in place since this build (and its snapshot)
        saving = self.worth_saving() and self.snapshot_dir is not None
        if saving:
            # Found now, the related entries are saved with the index, and the next start
            # reads them rather than finding them again (a pre-forking master finds them
            # before its first fork anyway). In this thread: no thread outlives a build.
            related.for_desk(desk, wait=True)
        self._settle()
        if saving and self.in_this_thread():
            # A following master's: the workers wait for this build, so the fresh ones are
            # forked first, and the snapshot is written at its next round (save_pending).
            self._unsaved = weakref.ref(desk)
        elif saving:
            self._save_quietly(desk)
        return desk

    def save_pending(self) -> None:
        """Write the snapshot of a build in full that :meth:`_build` left for later, if its
        desk still answers (a newer one has had its own)."""
        unsaved, self._unsaved = self._unsaved, None
        desk = unsaved() if unsaved is not None else None
        if desk is not None and desk is self.desk:
            self._save_quietly(desk)

    def replaceable(self) -> Callable[[], bool]:
        """In a freshly forked worker: whether, from now on, it may be stopped and replaced
        by a fresh fork (run.py's memory guard). Not while it waits for the master's build in
        full, nor once it built an index of its own: the master is building, a fork waits
        until it is done, and the master forks fresh workers after it."""
        builds = (self.stats["full"], self.stats["background"])
        return lambda: (self.building is None and not self.waits_for_master
                        and (self.stats["full"], self.stats["background"]) == builds)

    @property
    def waits_for_master(self) -> bool:
        """Whether this worker left a build in full to its master and still waits for it."""
        return self._left_to_master is not None and not self._master_overdue()

    def _master_overdue(self) -> bool:
        """Whether a full build left to the master has waited past its grace (the master is
        taken to have failed: the worker builds its own, as without a master)."""
        left = self._left_to_master
        grace = max(MASTER_BUILD_GRACE, MASTER_BUILD_GRACE_BUILDS * self.build_seconds)
        return left is not None and time.monotonic() - left[1] > grace

    def large(self) -> bool:
        """Whether updates and builds run in the background (see ``__init__``)."""
        return self.build_seconds >= self.background_after and self.documents >= self.min_documents

    def worth_saving(self) -> bool:
        """Whether a build is worth a snapshot."""
        return self.build_seconds >= self.snapshot_after and self.documents >= self.min_documents

    @staticmethod
    def _crowded(desk: Desk) -> bool:
        """Whether replaced documents pile up in the postings: compacted by a full build."""
        return desk.index.dead > max(1_000, len(desk.index.docs) // 5)

    @staticmethod
    def _settle() -> None:
        # The index is long-lived: keep the garbage collector from rescanning its millions
        # of objects on every full collection (pauses of 100 ms and more).
        gc.collect()
        gc.freeze()

    def _start_background(self) -> None:
        with self._starting:
            if self.building is not None:
                return
            self.building = -1
        threading.Thread(target=self._background, name="index-build", daemon=True).start()

    def _background(self) -> None:
        db = None
        try:
            db = self._connect()
            version = knowledge_version(db)
            self.building = version
            current = self.desk
            if current is not None and current.version == version:
                return
            updated = self._catch_up(db, current, version) if current is not None else None
            if updated is not None:
                with self._lock:
                    self.desk = updated
                if not self._crowded(updated):
                    return
            if current is not None and self.master_builds and not self._master_overdue():
                # The master builds in full too (or, where its own updates kept it from
                # needing to, forks fresh workers at its next re-fork): this worker keeps
                # answering with what it has until it is replaced.
                since = self._left_to_master[1] if self._left_to_master is not None else time.monotonic()
                self._left_to_master = (version, since)
                return
            started = time.perf_counter()
            desk = self._name(self._build_desk(db, version), db)
            self.build_seconds = time.perf_counter() - started
            self.documents = len(desk.index.docs)
            with self._lock:
                self.desk = desk
                self.stats["background"] += 1
                self.updates = 0
                self._left_to_master = None
            self._settle()
            if self.worth_saving():
                self._save_quietly(desk)
        except Exception:  # the old desk keeps answering; the next question tries again
            log.exception("后台重建索引失败")
        finally:
            self.building = None
            if db is not None:
                db.close()

    # -- snapshots -------------------------------------------------------------------------
    def _snapshot_path(self, db: Any) -> Path | None:
        if self.snapshot_dir is None:
            return None
        return self.snapshot_dir / f"index-{database_id(db)}.pickle"

    def _header(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.folder, self.settings)
        return self._fingerprint

    def _save_quietly(self, desk: Desk) -> None:
        try:
            db = self._connect()
            try:
                path = self._snapshot_path(db)
                stamp = version_stamp(db, desk.version)
            finally:
                db.close()
            if path is not None:
                self.save(desk, path, stamp)
        except Exception:
            log.exception("保存索引快照失败")

    def save(self, desk: Desk, path: Path, stamp: str | None) -> None:
        """Write the desk's snapshot atomically (readable by the service's user only).
        ``stamp``: when its version was logged (None if it was not), which a database put
        back from an older backup does not have for that version."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _tidy(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=".index-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                # A plain header, checked before anything is unpickled.
                f.write(json.dumps({"fingerprint": self._header(), "version": desk.version, "stamp": stamp,
                                    "build_seconds": self.build_seconds}).encode() + b"\n")
                # The related entries too, when they are found (those the master finds before
                # every fork): one pickle, so their words are the index's own strings.
                pickle.dump({"desk": desk.snapshot(), "related": related.state_of(desk)}, f,
                            protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _load_snapshot(self, db: Any) -> Desk | None:
        """The saved desk if it was built from this database, files and code, and the change
        log reaches from its version to now (the changes are then applied in place)."""
        path = self._snapshot_path(db)
        if path is not None:
            _tidy(path.parent)
        if path is None or not path.exists():
            return None
        collecting = gc.isenabled()
        gc.disable()  # millions of objects are made here: collections would rescan them
        try:
            with path.open("rb") as f:
                header = json.loads(f.readline())
                current = knowledge_version(db)
                if header.get("fingerprint") != self._header() or header.get("version", -1) > current \
                        or header.get("stamp") != version_stamp(db, header["version"]):
                    return None  # other code or files, or not this database's history
                if header["version"] != current and changes_since(db, header["version"]) is None:
                    return None
                state = pickle.load(f)
            desk = self._name(Desk.restore(state["desk"], db), db)
            if state.get("related") is not None:
                related.adopt(desk, state["related"])
        except Exception:
            log.exception("索引快照无法读取，重新构建")
            return None
        finally:
            if collecting:
                gc.enable()
        self.stats["snapshot_loads"] += 1
        self.build_seconds = float(header.get("build_seconds") or 0.0)
        self.documents = len(desk.index.docs)
        self._settle()
        return desk


# Every keeper of the process, weakly (one handler for all: a handler per keeper would keep
# each alive, with its desk, for the life of the process).
_KEEPERS: "weakref.WeakSet[IndexKeeper]" = weakref.WeakSet()
os.register_at_fork(after_in_child=_forked)
