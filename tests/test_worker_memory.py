"""Workers that have made too much of the shared index their own are replaced by fresh forks."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from service.worker_memory import MemoryGuard, private_mb

ROOT = Path(__file__).resolve().parent.parent


def test_private_memory_is_read_from_the_kernels_rollup(tmp_path) -> None:
    rollup = tmp_path / "smaps_rollup"
    rollup.write_text("Rss:  600000 kB\nPss:  300000 kB\nShared_Clean:  500000 kB\n"
                      "Private_Clean:  1024 kB\nPrivate_Dirty:  50176 kB\nSwap: 0 kB\n")
    assert private_mb(str(rollup)) == 50.0  # private clean and dirty, not what is shared
    assert private_mb(str(tmp_path / "missing")) is None  # not Linux: nothing to read
    (tmp_path / "odd").write_text("Rss: 10 kB\n")
    assert private_mb(str(tmp_path / "odd")) is None
    if sys.platform.startswith("linux") and os.path.exists("/proc/self/smaps_rollup"):
        mb = private_mb()
        assert mb is not None and mb > 1  # this interpreter's own heap at least


def test_the_guard_stops_a_worker_only_over_budget_and_once() -> None:
    readings = iter([30.0, 45.0, 60.0, 80.0])
    now = [100.0]
    stops = []
    guard = MemoryGuard(50, lambda: stops.append(1), interval=1, min_age=0, read=lambda: next(readings),
                        clock=lambda: now[0])
    assert not guard.check() and not guard.check() and stops == []  # 30, 45: within budget
    assert guard.check() and stops == [1] and guard.last_mb == 60.0
    assert guard.check() and stops == [1]  # asked once; the worker is on its way out


def test_the_guard_leaves_young_workers_and_unreadable_memory_alone() -> None:
    now = [0.0]
    stops = []
    readings = iter([20.0, 40.0, 40.0])
    young = MemoryGuard(10, lambda: stops.append(1), interval=1, read=lambda: next(readings), clock=lambda: now[0])
    assert young.min_age == 2  # two readings' worth by default
    assert not young.check() and young.first_mb == 20.0  # over budget from birth: a budget too low
    now[0] = 1.9
    assert not young.check() and stops == []  # grown, but too young
    now[0] = 2.1
    assert young.check() and stops == [1]
    idle = MemoryGuard(10, lambda: stops.append(3), interval=1, min_age=0, read=lambda: 18.5, clock=lambda: now[0])
    assert not idle.check() and not idle.check() and stops == [1]  # over budget but not growing: no churn
    blind = MemoryGuard(10, lambda: stops.append(2), interval=1, min_age=0, read=lambda: None, clock=lambda: now[0])
    assert not blind.check() and stops == [1]  # no reading, no stop


def test_the_guard_waits_while_the_worker_may_not_stop_and_refuses_a_bad_interval() -> None:
    stops = []
    allowed = [False]
    guard = MemoryGuard(50, lambda: stops.append(1), interval=1, min_age=0, read=iter([10.0, 90.0, 90.0]).__next__,
                        may_stop=lambda: allowed[0])
    assert not guard.check() and not guard.check() and stops == []  # over budget, but built its own index
    allowed[0] = True
    assert guard.check() and stops == [1]
    for bad in (0, -5, float("nan")):
        assert MemoryGuard(50, lambda: None, interval=bad).interval == 10.0  # neither a busy loop nor a dead thread


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps_rollup"), reason="needs Linux's /proc/self/smaps_rollup")
def test_a_worker_over_its_memory_budget_is_replaced_without_dropping_a_question(tmp_path) -> None:
    """Under gunicorn with the master following the knowledge, a worker over its budget
    finishes what it holds and a fresh one forked from the master takes over: every
    question is answered, and more worker processes answer than were started."""
    port = _free_port()
    env = dict(os.environ, INQUIRY_SHOW_WORKER_PID="1", INQUIRY_INDEX_REFORK="1",
               INQUIRY_INSTANCE=str(tmp_path / "instance"), INQUIRY_ASK_LOG_BATCH="50",
               INQUIRY_WORKER_MEMORY_MB="0.5", INQUIRY_WORKER_MEMORY_INTERVAL="0.2")  # any worker is over
    env.pop("INQUIRY_DATABASE_URL", None)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "run.py", "--port", str(port), "--db", str(tmp_path / "guard.db"),
                                 "--workers", "2"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def ask(question: str) -> tuple[dict, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/ask", json.dumps({"question": question}).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            return json.loads(response.read()), response.headers["X-Worker-Pid"]

    try:
        deadline = time.time() + 60
        while True:
            try:
                ask("申请政府信息公开收费吗")
                break
            except OSError:
                assert time.time() < deadline, log.read_text(errors="replace")
                time.sleep(0.1)
        pids = set()
        asked = 1
        deadline = time.time() + 40
        while len(pids) < 4 and time.time() < deadline:
            reply, pid = ask("申请政府信息公开收费吗")  # every one answered, whichever worker
            asked += 1
            assert reply["status"] == "answered"
            pids.add(pid)
            time.sleep(0.05)
        assert len(pids) >= 4, (pids, log.read_text(errors="replace"))
        assert "超过上限" in log.read_text(errors="replace")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert proc.returncode == 0
    # Each replaced worker left without the interpreter's teardown, but wrote the analytics
    # rows it held (up to 50 each) first: every question is in the log.
    from service.storage import connect

    db = connect(tmp_path / "guard.db")
    try:
        assert db.execute("select count(*) from asks").fetchone()[0] == asked
    finally:
        db.close()


def test_without_a_master_following_the_knowledge_workers_are_not_replaced(tmp_path) -> None:
    """A small knowledge base: the master does not hold the current index, so a fresh fork
    would start from an old one; the guard is off there."""
    port = _free_port()
    env = dict(os.environ, INQUIRY_SHOW_WORKER_PID="1", INQUIRY_INSTANCE=str(tmp_path / "instance"),
               INQUIRY_WORKER_MEMORY_MB="0.5", INQUIRY_WORKER_MEMORY_INTERVAL="0.2")
    env.pop("INQUIRY_INDEX_REFORK", None)
    env.pop("INQUIRY_DATABASE_URL", None)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "run.py", "--port", str(port), "--db", str(tmp_path / "small.db"),
                                 "--workers", "2"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        pids = set()
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/api/ask",
                                                 json.dumps({"question": "申请政府信息公开收费吗"}).encode(),
                                                 {"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=10) as response:
                    pids.add(response.headers["X-Worker-Pid"])
                break
            except OSError:
                assert time.time() < deadline, log.read_text(errors="replace")
                time.sleep(0.1)
        end = time.time() + 3  # fifteen of the guard's intervals
        while time.time() < end:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/ask",
                                             json.dumps({"question": "申请政府信息公开收费吗"}).encode(),
                                             {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as response:
                pids.add(response.headers["X-Worker-Pid"])
            time.sleep(0.05)
        assert len(pids) <= 2 and "超过上限" not in log.read_text(errors="replace")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
