"""A pre-forked worker's own memory, and a guard that has it replaced when it grows (no Flask).

Workers forked from a master that holds the index share its pages. Answering questions
makes some of them the worker's own: CPython writes a reference count into every object it
reads (a document's phrasings and words, a word's weight), so each page holding one is
copied on write, and the worker's caches fill. Left alone, a worker answering many
different questions ends up with much of the index as its own copy.

The guard reads the worker's private memory (``/proc/self/smaps_rollup``: the pages no other
process shares) every ten seconds, from a thread of its own. The reading walks the
process's page tables, about 10 ms for one holding a 100,000-entry index, and meanwhile
the worker's own memory map cannot change (an allocation that maps memory waits for it):
read every second, it added 15–30 ms to the p99 of questions asked while curators saved. When it
passes the budget the guard asks the worker to stop after the request in hand (SIGTERM,
a gunicorn worker's graceful stop); the master forks a fresh one from its current index,
which shares everything again.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)

SMAPS_ROLLUP = "/proc/self/smaps_rollup"


def rollup_kb(path: str = SMAPS_ROLLUP) -> dict[str, int]:
    """The kB figures of a process's ``smaps_rollup`` (``Pss``, ``Private_Dirty``, …);
    OSError where there is none."""
    with open(path, "rb") as f:
        text = f.read().decode("ascii", "replace")
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            values[name] = int(parts[0])
    return values


def private_mb(path: str = SMAPS_ROLLUP) -> float | None:
    """This process's private memory (clean and dirty pages no other process maps), in MB;
    None where the system does not say (not Linux, or a kernel older than 4.14)."""
    try:
        values = rollup_kb(path)
    except OSError:
        return None
    if "Private_Clean" not in values and "Private_Dirty" not in values:
        return None
    return (values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)) / 1024


class MemoryGuard:
    """Asks a worker to stop (``stop()``) once its private memory passes ``budget_mb``.

    A worker is left alone while it is younger than ``min_age`` seconds, while it has not
    grown by a tenth of the budget since the guard's first reading (a budget below what a
    fresh worker already holds would otherwise replace workers as fast as they are forked,
    busy or idle), and while ``may_stop()`` says no (the master is building in full, and the
    worker waits for it or built an index of its own: the master forks fresh workers when
    it is done, and until then a fork waits for its build). Readings are a little apart in
    time (``interval`` ± 20%), so that workers forked together are not replaced together.
    """

    def __init__(self, budget_mb: float, stop: Callable[[], None], *, interval: float = 10.0,
                 min_age: float | None = None, read: Callable[[], float | None] = private_mb,
                 clock: Callable[[], float] = time.monotonic, logger: logging.Logger = log,
                 may_stop: Callable[[], bool] = lambda: True) -> None:
        self.budget_mb = budget_mb
        if not interval > 0:  # 0 would read without pause, a negative one would kill the thread
            logger.warning("内存检查间隔 %r 无效，改为 10 秒", interval)
            interval = 10.0
        self.interval = interval
        self.min_age = 2 * interval if min_age is None else min_age
        self._stop = stop
        self._read = read
        self._clock = clock
        self._log = logger
        self._may_stop = may_stop
        self._born = clock()
        self.stopped = False
        self.first_mb: float | None = None
        self.last_mb: float | None = None

    def check(self) -> bool:
        """Read the memory once; ask the worker to stop if it is over budget. Whether it did."""
        if self.stopped:
            return True
        mb = self.last_mb = self._read()
        if mb is None:
            return False
        if self.first_mb is None:
            self.first_mb = mb
        if (mb <= self.budget_mb or mb < self.first_mb + self.budget_mb / 10
                or self._clock() - self._born < self.min_age or not self._may_stop()):
            return False
        self.stopped = True
        self._log.warning("工作进程私有内存 %.0f MB，超过上限 %.0f MB：处理完手头的请求后退出，"
                          "由主进程以当前索引另起一个", mb, self.budget_mb)
        self._stop()
        return True

    def start(self) -> threading.Thread:
        """Check every ``interval`` seconds in a daemon thread, until the worker is asked to stop."""
        def run() -> None:
            while not self.stopped:
                time.sleep(self.interval * random.uniform(0.8, 1.2))
                try:
                    self.check()
                except Exception:  # a guard that fails must not take the worker with it
                    self._log.exception("读取工作进程内存失败")
                    return

        thread = threading.Thread(target=run, name="memory-guard", daemon=True)
        thread.start()
        return thread
