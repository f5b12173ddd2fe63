"""The host's rate-limit counters (service/ratelimit_store.py): a table in a memory-mapped
file that every worker process counts in, under a lock the kernel frees if a worker dies."""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest

from service import ratelimit_store
from service.ratelimit_store import PROBES, SharedTableStorage

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork and fcntl locks are POSIX")


def _store(tmp_path, name: str = "rl.table", **options) -> SharedTableStorage:  # type: ignore[no-untyped-def]
    return SharedTableStorage(f"counters://{tmp_path / name}", **options)


def test_counts_within_a_window_and_starts_again_after_it(tmp_path, monkeypatch) -> None:
    clock = [1_000_000.0]
    monkeypatch.setattr(ratelimit_store.time, "time", lambda: clock[0])
    store = _store(tmp_path)
    assert [store.incr("ask/1.2.3.4", 60) for _ in range(3)] == [1, 2, 3]
    assert store.incr("ask/5.6.7.8", 60) == 1  # another key, its own count
    assert store.get("ask/1.2.3.4") == 3
    assert store.get_expiry("ask/1.2.3.4") == 1_000_060.0
    clock[0] += 59.9
    assert store.incr("ask/1.2.3.4", 60) == 4
    clock[0] += 0.2  # the window has ended
    assert store.get("ask/1.2.3.4") == 0
    assert store.incr("ask/1.2.3.4", 60) == 1
    assert store.get_expiry("ask/1.2.3.4") == pytest.approx(clock[0] + 60)


def test_reading_back_clearing_and_resetting(tmp_path) -> None:
    store = _store(tmp_path)
    assert store.get("never") == 0 and store.get_expiry("never") <= time.time() + 1
    for key in ("a", "b", "c"):
        store.incr(key, 60, amount=2)
    other = _store(tmp_path)  # another reader of the same file (no counts of its own kept)
    assert other.get("b") == 2
    other.clear("b")
    assert store.get("a") == 2 and other.get("b") == 0 and store.incr("b", 60) == 1
    assert other.reset() == 3
    assert store.get("a") == 0 and store.get("c") == 0


def test_counts_survive_reopening_and_a_file_of_another_kind_is_made_anew(tmp_path) -> None:
    store = _store(tmp_path)
    store.incr("a", 600)
    store.incr("a", 600)
    assert _store(tmp_path).incr("a", 600) == 3  # a restarted server keeps its counts
    garbage = tmp_path / "garbage.table"
    garbage.write_bytes(b"not a table" * 100)
    made = _store(tmp_path, "garbage.table")
    assert made.incr("a", 600) == 1
    assert garbage.stat().st_size == made._size
    # A table of another size (another layout) is made anew too, not misread; and never
    # cut in place under a process that maps the old one, which would die at its next count.
    assert _store(tmp_path, slots=64).incr("a", 600) == 1
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os._exit(0 if store.incr("a", 600) == 4 else 1)
    assert os.waitpid(pid, 0)[1] == 0
    assert _store(tmp_path, slots=64).incr("a", 600) == 2  # the new table is the file's now
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.table", "rl.table"]


def test_every_process_counts_in_the_same_table(tmp_path) -> None:
    """Four forked processes count one key at once: no count is lost (a read and write
    of the slot outside the lock would lose some)."""
    store = _store(tmp_path)
    store.check()  # mapped before the fork, as the server does
    children = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                for _ in range(3000):
                    store.incr("ask/10.0.0.1", 600)
            finally:
                os._exit(0)
        children.append(pid)
    for pid in children:
        assert os.waitpid(pid, 0)[1] == 0
    assert store.get("ask/10.0.0.1") == 12_000


def test_a_count_waits_for_another_process_and_not_for_one_killed_while_counting(tmp_path) -> None:
    store = _store(tmp_path)
    store.check()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child holds the lock until it is killed
        with store._locked():
            os.write(ready_w, b"x")
            time.sleep(60)
        os._exit(0)
    os.read(ready_r, 1)
    counted: list[int] = []
    counter = threading.Thread(target=lambda: counted.append(store.incr("after", 60)))
    counter.start()
    counter.join(0.5)
    assert counted == []  # the other process holds the table
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    counter.join(5)
    assert counted == [1]  # its lock went with it


def test_threads_of_one_process_count_one_at_a_time(tmp_path) -> None:
    """Record locks do not exclude the threads of one process: a thread lock does. The
    threads start before the table is mapped, so they also open it at once."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        store = _store(tmp_path)
        start = threading.Barrier(8)

        def count() -> None:
            start.wait()
            for _ in range(2000):
                store.incr("ask/10.0.0.2", 600)

        threads = [threading.Thread(target=count) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)
    assert store.get("ask/10.0.0.2") == 16_000


def test_a_full_row_gives_way_to_the_window_that_ends_first(tmp_path, monkeypatch) -> None:
    """With one slot (every key in the same row of PROBES slots), the row fills; a new key
    then takes the slot of the window that ends first, and every other count is kept."""
    clock = [1_000_000.0]
    monkeypatch.setattr(ratelimit_store.time, "time", lambda: clock[0])
    store = _store(tmp_path, slots=1)
    for k in range(PROBES):
        store.incr(f"key{k}", 60 + k, amount=k + 1)
    store.incr("newcomer", 600)
    assert store.get("key0") == 0  # its window ended first: it gave way
    assert [store.get(f"key{k}") for k in range(1, PROBES)] == list(range(2, PROBES + 1))
    assert store.get("newcomer") == 1
    clock[0] += 61.5  # key1's window has ended: its slot is free, nobody else is evicted
    store.incr("late", 60)
    assert store.get("newcomer") == 1 and store.get("key2") == 3 and store.get("late") == 1
