"""Fresh workers brought in one at a time (service/refork.py)."""
from __future__ import annotations

import os
import threading
import time

from service.refork import ReadyPipe, rolling


def test_an_old_worker_goes_only_once_a_fresh_one_is_ready() -> None:
    ready = ReadyPipe()
    events: list[str] = []
    ready.tell()  # a worker that said so before the re-fork (the first ones, a replacement)

    def grow() -> None:
        events.append("grow")

        def fresh_worker() -> None:
            time.sleep(0.2)  # starting, warming up
            events.append("ready")
            ready.tell()

        threading.Thread(target=fresh_worker).start()

    try:
        assert rolling(grow, lambda: events.append("shrink"), ready, workers=2, timeout=10) == 2
    finally:
        ready.close()
    assert events == ["grow", "ready", "shrink", "grow", "ready", "shrink"]


def test_a_fresh_worker_that_never_says_so_costs_the_timeout_not_the_server() -> None:
    ready = ReadyPipe()
    events: list[str] = []
    began = time.monotonic()
    try:
        assert rolling(lambda: events.append("grow"), lambda: events.append("shrink"), ready, workers=2,
                       timeout=0.2) == 0
    finally:
        ready.close()
    assert events == ["grow", "shrink", "grow", "shrink"]  # back to its size all the same
    assert time.monotonic() - began < 5


def test_workers_tell_through_a_pipe_that_never_blocks_them() -> None:
    ready = ReadyPipe()
    try:
        pid = os.fork()
        if pid == 0:  # a forked worker
            ready.tell()
            os._exit(0)
        os.waitpid(pid, 0)
        assert ready.wait(5) == pid
        assert ready.wait(0.05) is None
        for _ in range(100_000):  # no master reads: the pipe fills, and a worker goes on
            ready.tell()
        ready.drain()
        assert ready.wait(0.05) is None
    finally:
        ready.close()
