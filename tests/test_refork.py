"""Fresh workers brought in one at a time (service/refork.py)."""
from __future__ import annotations

import os
import threading
import time

from service.refork import ReadyPipe, rolling


class Arbiter:
    """What the roll reads of gunicorn's arbiter and does through its signals: SIGTTIN forks
    a worker of the next age, which says it is ready after ``boot`` seconds (never if None);
    SIGTTOU stops the oldest."""

    def __init__(self, ready: ReadyPipe, workers: int, boot: float | None = 0.2):
        self.ready, self.boot = ready, boot
        self.num_workers = workers
        self.worker_age = workers
        self.alive = list(range(1, workers + 1))
        self.events: list[str] = []

    def grow(self) -> None:
        self.num_workers += 1
        self.worker_age += 1
        age = self.worker_age
        self.alive.append(age)
        self.events.append(f"grow {age}")
        if self.boot is not None:
            def boot() -> None:
                time.sleep(self.boot)
                self.events.append(f"ready {age}")
                self.ready.tell(age)

            threading.Thread(target=boot).start()

    def shrink(self) -> None:
        self.num_workers -= 1
        self.events.append(f"stop {self.alive.pop(0)}")

    def roll(self, timeout: float = 10) -> tuple[int, int]:
        return rolling(self.grow, self.shrink, self.ready, count=lambda: self.num_workers,
                       age=lambda: self.worker_age, timeout=timeout)


def test_an_old_worker_goes_only_once_a_fresh_one_is_ready() -> None:
    ready = ReadyPipe()
    ready.tell(1)  # a worker that said so before the re-fork (the first ones, a replacement)
    arbiter = Arbiter(ready, workers=2)
    try:
        assert arbiter.roll() == (2, 2)
    finally:
        ready.close()
    assert arbiter.events == ["grow 3", "ready 3", "stop 1", "grow 4", "ready 4", "stop 2"]
    assert arbiter.num_workers == 2 and arbiter.alive == [3, 4]


def test_a_worker_forked_before_the_growth_is_not_taken_for_the_fresh_one() -> None:
    ready = ReadyPipe()
    arbiter = Arbiter(ready, workers=2, boot=0.3)
    grow = arbiter.grow

    def grow_while_an_older_one_reports() -> None:
        grow()
        ready.tell(2)  # an old worker replaced just before, or a fresh one that came too late

    arbiter.grow = grow_while_an_older_one_reports  # type: ignore[method-assign]
    try:
        arbiter.roll()
    finally:
        ready.close()
    assert arbiter.events == ["grow 3", "ready 3", "stop 1", "grow 4", "ready 4", "stop 2"]


def test_a_fresh_worker_that_never_says_so_costs_the_timeout_not_the_server() -> None:
    ready = ReadyPipe()
    arbiter = Arbiter(ready, workers=2, boot=None)
    began = time.monotonic()
    try:
        assert arbiter.roll(timeout=0.2) == (0, 2)
    finally:
        ready.close()
    assert arbiter.events == ["grow 3", "stop 1", "grow 4", "stop 2"]  # back to its size all the same
    assert arbiter.num_workers == 2 and time.monotonic() - began < 5


def test_a_reload_during_the_roll_never_leaves_the_server_smaller() -> None:
    ready = ReadyPipe()
    arbiter = Arbiter(ready, workers=2)
    grow = arbiter.grow

    def grow_then_reload() -> None:
        grow()
        arbiter.num_workers = 2  # SIGHUP: gunicorn sets the count back to the configured one

    arbiter.grow = grow_then_reload  # type: ignore[method-assign]
    try:
        arbiter.roll(timeout=0.3)
    finally:
        ready.close()
    assert not [e for e in arbiter.events if e.startswith("stop")] and arbiter.num_workers == 2


def test_workers_tell_through_a_pipe_that_never_blocks_them() -> None:
    ready = ReadyPipe()
    try:
        pid = os.fork()
        if pid == 0:  # a forked worker
            ready.in_worker()
            ready.tell(7)
            os._exit(0)
        os.waitpid(pid, 0)
        assert ready.wait(5) == pid
        assert ready.wait(0.05) is None

        def flood() -> None:  # no master reads: the pipe fills, and a worker goes on
            for _ in range(100_000):
                ready.tell(8)

        writer = threading.Thread(target=flood, daemon=True)
        writer.start()
        writer.join(30)
        assert not writer.is_alive()
        ready.drain()
        assert ready.wait(0.05) is None
    finally:
        ready.close()
