"""Rate limits hold across the worker processes of one host (and across hosts with Redis):
counted per process, 10 a minute became 10 per worker."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, proc: subprocess.Popen, log: Path) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(log.read_text(errors="replace"))


def _pid_of_health(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.headers.get("X-Worker-Pid", "")
    except OSError:
        return ""


def _wait_for_workers(port: int, workers: int) -> None:
    """Wait until every worker has answered once: right after start the first worker up can
    take every request while the others are still starting, and the test would show nothing."""
    seen: set[str] = set()
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(max_workers=2 * workers) as pool:
        while len(seen) < workers and time.monotonic() < deadline:
            seen.update(pid for pid in pool.map(lambda _: _pid_of_health(port), range(4 * workers)) if pid)
            time.sleep(0.05)


def _ask(port: int, question: str) -> tuple[int, str]:
    body = json.dumps({"question": question}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/ask", body,
                                     {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.headers.get("X-Worker-Pid", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("X-Worker-Pid", "")


def _serve(tmp_path: Path, workers: int, storage: str | None):  # type: ignore[no-untyped-def]
    port = _free_port()
    env = dict(os.environ, INQUIRY_SHOW_WORKER_PID="1", INQUIRY_RATE_LIMIT_ASK=f"{LIMIT} per minute",
               INQUIRY_RATE_LIMIT_EXEMPT_LOOPBACK="0", INQUIRY_INSTANCE=str(tmp_path / "instance"))
    if storage:
        env["INQUIRY_RATELIMIT_STORAGE_URI"] = storage
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "run.py", "--port", str(port), "--db", str(tmp_path / "rl.db"),
                                 "--workers", str(workers)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    _wait_for(port, proc, log)
    _wait_for_workers(port, workers)
    return proc, port


@pytest.mark.parametrize("workers", [2, 4])
@pytest.mark.parametrize("storage", ["host", "redis"])
def test_the_limit_holds_across_workers(tmp_path, workers: int, storage: str, request) -> None:
    uri = request.getfixturevalue("redis_url") if storage == "redis" else None
    proc, port = _serve(tmp_path, workers, uri)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda i: _ask(port, f"你好{i % 3}"), range(8 * LIMIT)))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    statuses = Counter(status for status, _ in results)
    pids = {pid for status, pid in results if pid}
    assert len(pids) >= 2, "a single worker answered: the test would not show anything"
    assert statuses[200] == LIMIT and statuses[429] == 7 * LIMIT, statuses
