"""Fresh workers for a pre-forking server, brought in one at a time (no Flask).

A master that holds a newer index forks its workers again so that they share it
(:func:`service.db.follow_knowledge`). gunicorn's own way, SIGHUP, forks the new workers
and at once tells the old ones to stop: until a new worker has started and can accept,
no worker takes the connections that arrive: at 100,000 entries the questions of that
moment were the slowest of a round of saves (up to 92 ms, against some 50 ms for the
slowest question without saves).

:func:`rolling` brings them in one at a time instead: the master grows by one worker
(SIGTTIN), waits until a worker forked since says it can answer (:class:`ReadyPipe`),
then shrinks by one (SIGTTOU: gunicorn stops its oldest worker, which finishes the
request in hand). Until a fresh worker is ready, the old ones answer as before.
"""
from __future__ import annotations

import os
import select
import struct
import time
from typing import Callable

_RECORD = struct.Struct("<iq")  # a worker's pid and its age (gunicorn numbers workers as it forks them)
# How long the master waits for a fresh worker before it lets an old one go regardless
# (a worker that cannot start is replaced by gunicorn as any other).
READY_TIMEOUT = 30.0


class ReadyPipe:
    """A pipe made by the master before it forks: a worker writes its pid and age to it once
    it can answer; the master reads. Writes never block: a worker that finds the pipe full
    (no re-fork read it in a long time) goes on, and the master waits at most its timeout."""

    def __init__(self) -> None:
        self.read_end, self.write_end = os.pipe()
        os.set_blocking(self.write_end, False)
        os.set_blocking(self.read_end, False)
        self._partial = b""

    def tell(self, age: int) -> None:
        """In a worker of this ``age``: say that it can answer."""
        try:
            os.write(self.write_end, _RECORD.pack(os.getpid(), age))  # 12 bytes: one atomic write
        except OSError:
            pass

    def in_worker(self) -> None:
        """In a worker: it only writes."""
        try:
            os.close(self.read_end)
        except OSError:
            pass

    def _read(self) -> list[tuple[int, int]]:
        try:
            data = self._partial + os.read(self.read_end, 4096)
        except BlockingIOError:
            return []
        whole = len(data) - len(data) % _RECORD.size
        self._partial = data[whole:]
        return list(_RECORD.iter_unpack(data[:whole]))

    def drain(self) -> None:
        """Forget what workers said before now (the first workers, those replaced since)."""
        while self._read():
            pass

    def wait(self, timeout: float, newer_than: int = -1) -> int | None:
        """The pid of the next worker older than ``newer_than`` to say it can answer (others
        are passed over: workers forked before, late or replaced), or None after ``timeout``
        seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = [pid for pid, age in self._read() if age > newer_than]
            if found:
                return found[0]
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            select.select([self.read_end], [], [], left)

    def close(self) -> None:
        for fd in (self.read_end, self.write_end):
            try:
                os.close(fd)
            except OSError:
                pass


def rolling(grow: Callable[[], None], shrink: Callable[[], None], ready: ReadyPipe, count: Callable[[], int],
            age: Callable[[], int], timeout: float = READY_TIMEOUT) -> tuple[int, int]:
    """Replace the server's workers one at a time: ``grow`` by one, wait until a worker
    forked since is ready (its age above ``age()`` before the growth; at most ``timeout``
    seconds), ``shrink`` by one. ``count()`` is how many workers the server keeps now: the
    roll replaces as many as it kept at the start, and shrinks only while it keeps more
    than that (a SIGHUP meanwhile sets the count back to the configured one). Returns how
    many were ready in time, and how many were to be. Only system calls and reads of the
    arbiter's numbers: the master's main thread may fork meanwhile."""
    ready.drain()
    size = count()
    in_time = 0
    for _ in range(size):
        before = age()
        grow()
        deadline = time.monotonic() + timeout
        while count() <= size and time.monotonic() < deadline:
            time.sleep(0.01)  # the arbiter takes the signal in its own loop
        if count() <= size:
            continue  # the growth did not take (a reload set the count back): nothing to undo
        if ready.wait(max(0.0, deadline - time.monotonic()), newer_than=before) is not None:
            in_time += 1
        if count() > size:
            shrink()
    return in_time, size
