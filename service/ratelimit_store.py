"""Rate-limit counters shared by every worker process on a host, without a server (no Flask).

Flask-Limiter's in-memory storage counts per process: 120 questions a minute became 240 on
two workers and about 1,900 on sixteen. This storage keeps the counters in a table of
fixed-size slots in a small file of their own (``counters:///path/ratelimits.table``), that
every process maps into memory: counting a request reads and writes some bytes of shared
memory under a lock, no database and no system call beyond the lock. (It was a SQLite file
before: one write per counted request, and the two workers' writes waited for each other;
on the repeat mix of ``bench/load_http.py`` a sixth of the throughput went to it.) With
Redis configured (``redis://…``) Flask-Limiter's own Redis storage is used instead, for
several hosts.

The table. Each slot is 32 bytes: a 16-byte keyed digest of the limit's key, the end of its
window (seconds since the epoch) and its count. A key's slot is one of ``PROBES`` slots in a
row that start where its digest points; a slot whose window has ended is free. When all
of them hold live windows (a flood from very many addresses), the window that ends first
gives way: that address's count starts again, the only thing a full table can lose. The
digest key is random, made with the file, so no one can choose addresses that crowd one
row. A file that is not such a table (another program's, an older layout) is replaced by a new
one, written beside it and renamed over it, never cut in place under processes that map it:
counters, not records.

The lock. A POSIX record lock on the file (``fcntl.lockf``), which the kernel releases when
a process dies, so a worker killed while counting never stops the others; plus a thread
lock, since record locks do not exclude threads of one process. Where ``fcntl`` is missing
(Windows, where ``run.py`` serves from one process with threads) the thread lock alone.

A counted request reads its count back for the rate-limit headers of the same response
(``X-RateLimit-Remaining``, ``-Reset``); the count and window end that counting returned
are kept for them rather than looked up twice more.
"""
from __future__ import annotations

import hashlib
import mmap
import os
import re
import secrets
import struct
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from limits.storage import Storage

try:
    import fcntl
except ImportError:  # Windows: one process (waitress), threads only
    fcntl = None  # type: ignore[assignment]

_BINARY = getattr(os, "O_BINARY", 0)  # Windows opens files as text unless told

# How long after counting a request its count stands for the stored one (the headers of
# its response are read within milliseconds; another worker may count meanwhile).
JUST_COUNTED_SECONDS = 1.0

MAGIC = b"INQRLT01"
# magic, slot count, probes, digest key: the rest of the first 64 bytes is zeros.
HEADER = struct.Struct("<8sII32s")
HEADER_SIZE = 64
SLOT = struct.Struct("<16sdq")  # key digest, window end (epoch seconds), count
# 262,144 slots of 32 bytes, 8 MB (a sparse file: pages are only made as they are used),
# enough for every address of a large flood to keep its own window.
SLOTS = 1 << 18
# Slots one key may sit in: a row this long, read at once; the table has this many slots
# beyond SLOTS so that no row wraps around.
PROBES = 32


class SharedTableStorage(Storage):
    """Fixed-window counters in a shared memory-mapped table: ``counters:///absolute/path``."""

    STORAGE_SCHEME = ["counters"]

    def __init__(self, uri: str, wrap_exceptions: bool = False, slots: int = SLOTS,
                 **options: float | str | bool) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        path = uri[len("counters://"):]
        if re.match(r"^/[A-Za-z]:[\\/]", path):  # counters:///C:/... on Windows
            path = path[1:]
        if not path:
            raise ValueError("counters:// needs the path of a file")
        self.path = path
        self.slots = int(slots)
        # Per process: a lock some thread held when the process forked is never released
        # in the child (setdefault on a dict is atomic, so threads agree on one).
        self._thread_locks: dict[int, threading.Lock] = {}
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._digest_key = b""
        self._local = threading.local()

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (OSError, ValueError, struct.error)

    # -- the file -------------------------------------------------------------------------

    @property
    def _size(self) -> int:
        return HEADER_SIZE + (self.slots + PROBES) * SLOT.size

    def _thread_lock(self) -> threading.Lock:
        lock = self._thread_locks.get(os.getpid())
        return lock if lock is not None else self._thread_locks.setdefault(os.getpid(), threading.Lock())

    def _open(self) -> None:
        """Map the table, once per storage. A forked worker keeps the mapping and the
        descriptor it inherits: the record locks it takes on them are its own."""
        if self._map is not None:
            return
        with self._thread_lock():
            if self._map is not None:
                return
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            for _ in range(100):
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _BINARY, 0o600)
                try:
                    if fcntl is not None:
                        fcntl.lockf(fd, fcntl.LOCK_EX)
                    try:
                        # Another process may have put a new table in the file's place
                        # between the open and the lock: then that one is opened.
                        same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                        key = self._prepare(fd) if same else None
                    finally:
                        if fcntl is not None:
                            fcntl.lockf(fd, fcntl.LOCK_UN)
                    table = mmap.mmap(fd, self._size) if key is not None else None
                except BaseException:
                    os.close(fd)
                    raise
                if table is None:
                    os.close(fd)  # the table in the file's place now is opened instead
                    continue
                self._fd, self._digest_key, self._map = fd, key, table
                return
            raise OSError(f"无法打开频率限制计数文件：{self.path}")

    def _prepare(self, fd: int) -> bytes | None:
        """The table's digest key, or None after putting a new table in the file's place.

        A file that is not a table of this layout (another program's, an older layout, one
        cut short) is never truncated or grown in place: processes that map it would die
        (SIGBUS) at their next count past its new end. A new table is written beside it and
        renamed over it; the processes that mapped the old one count there until they
        restart."""
        size = os.fstat(fd).st_size
        os.lseek(fd, 0, os.SEEK_SET)  # (os.pread and os.pwrite are not on Windows)
        head = os.read(fd, HEADER.size)
        if len(head) == HEADER.size:
            magic, slots, probes, key = HEADER.unpack(head)
            if magic == MAGIC and slots == self.slots and probes == PROBES and size == self._size:
                return key
        if size == 0:  # made just now by this open: nobody maps it yet
            os.ftruncate(fd, self._size)
            key = secrets.token_bytes(32)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, HEADER.pack(MAGIC, self.slots, PROBES, key))
            return key
        fresh = f"{self.path}.{os.getpid()}.{secrets.token_hex(4)}.new"
        new_fd = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_EXCL | _BINARY, 0o600)
        try:
            os.ftruncate(new_fd, self._size)
            os.write(new_fd, HEADER.pack(MAGIC, self.slots, PROBES, secrets.token_bytes(32)))
        finally:
            os.close(new_fd)
        os.replace(fresh, self.path)
        return None

    @contextmanager
    def _locked(self) -> Iterator[mmap.mmap]:
        self._open()
        assert self._map is not None
        with self._thread_lock():
            if fcntl is not None:
                fcntl.lockf(self._fd, fcntl.LOCK_EX)
            try:
                yield self._map
            finally:
                if fcntl is not None:
                    fcntl.lockf(self._fd, fcntl.LOCK_UN)

    # -- the slots ------------------------------------------------------------------------

    def _row(self, key: str) -> tuple[bytes, int]:
        """The key's digest and the offset of the first slot of its row."""
        digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16,
                                 key=self._digest_key).digest()
        return digest, HEADER_SIZE + (int.from_bytes(digest[:8], "little") % self.slots) * SLOT.size

    @staticmethod
    def _find(row: bytes, digest: bytes) -> int:
        """The offset in ``row`` of the slot holding ``digest``, or -1."""
        at = row.find(digest)
        while at != -1 and at % SLOT.size:
            at = row.find(digest, at + 1)
        return at

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        self._open()
        digest, start = self._row(key)
        with self._locked() as table:
            row = table[start:start + PROBES * SLOT.size]
            at = self._find(row, digest)
            if at != -1:
                _, ends, count = SLOT.unpack_from(row, at)
                if ends <= now:
                    count, ends = amount, now + expiry
                else:
                    count += amount
            else:
                # A free slot (a window that ended), else the window that ends first.
                at = min(range(0, len(row), SLOT.size), key=lambda o: SLOT.unpack_from(row, o)[1])
                count, ends = amount, now + expiry
            SLOT.pack_into(table, start + at, digest, ends, count)
        self._local.counted = (key, count, ends, now)
        return count

    def _read(self, key: str) -> tuple[int, float]:
        """The key's live count and window end, or (0, 0.0)."""
        self._open()
        digest, start = self._row(key)
        with self._locked() as table:
            row = table[start:start + PROBES * SLOT.size]
        at = self._find(row, digest)
        if at == -1:
            return 0, 0.0
        _, ends, count = SLOT.unpack_from(row, at)
        return (count, ends) if ends > time.time() else (0, 0.0)

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
        return known[0] if known is not None else self._read(key)[0]

    def get_expiry(self, key: str) -> float:
        known = self._just_counted(key)
        if known is not None:
            # The headers read the count, then the window's end: both are now given.
            self._local.counted = None
            return known[1]
        ends = self._read(key)[1]
        return ends if ends else time.time()

    def check(self) -> bool:
        try:
            self._open()
            return True
        except (OSError, ValueError):
            return False

    def reset(self) -> int | None:
        self._local.counted = None
        now = time.time()
        with self._locked() as table:
            live = sum(1 for _, ends, _ in SLOT.iter_unpack(table[HEADER_SIZE:]) if ends > now)
            table[HEADER_SIZE:] = bytes(len(table) - HEADER_SIZE)
        return live

    def clear(self, key: str) -> None:
        self._local.counted = None
        self._open()
        digest, start = self._row(key)
        with self._locked() as table:
            at = self._find(table[start:start + PROBES * SLOT.size], digest)
            if at != -1:
                SLOT.pack_into(table, start + at, bytes(16), 0.0, 0)
