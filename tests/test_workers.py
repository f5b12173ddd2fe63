"""Knowledge changes reach every worker process of the production server at once."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from service import faq
from service.storage import connect

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ask(port: int, question: str) -> tuple[dict, str]:
    body = json.dumps({"question": question}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/ask", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read()), response.headers["X-Worker-Pid"]


@pytest.fixture
def server(tmp_path):  # type: ignore[no-untyped-def]
    port = _free_port()
    db = tmp_path / "workers.db"
    env = dict(os.environ, INQUIRY_SHOW_WORKER_PID="1")
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "run.py", "--port", str(port), "--db", str(db), "--workers", "2"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(log.read_text(errors="replace"))
        yield port, db
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _from_every_worker(port: int, question: str) -> dict[str, dict]:
    """Ask concurrently until two worker processes have answered; every reply, by pid."""
    seen: dict[str, list[dict]] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(10):
            for reply, pid in pool.map(lambda _: _ask(port, question), range(40)):
                seen.setdefault(pid, []).append(reply)
            if len(seen) >= 2:
                return seen
    raise AssertionError("only one worker ever answered")


def test_a_saved_change_is_answered_by_every_worker(server) -> None:
    port, path = server
    question = "统计局的食堂对外开放吗"
    before = _from_every_worker(port, question)
    assert all(r["status"] == "escalated" for replies in before.values() for r in replies)
    # A curator's save through the workspace's own code, from another process.
    entry_id = faq.create_entry(connect(path), {"id": 1, "username": "curator"}, {
        "key": "canteen", "question": "统计局食堂对外开放吗？", "answer": "机关食堂不对外开放。",
        "category": "其他", "source": "工作实践", "status": "published"})
    faq.add_alternate(connect(path), {"id": 1, "username": "curator"}, entry_id, "食堂能进去吃饭吗")
    after = _from_every_worker(port, question)
    assert len(after) == 2
    assert all(r["status"] == "answered" and "不对外开放" in r["answer"]
               for replies in after.values() for r in replies), after


def test_the_server_does_not_name_itself_and_its_own_errors_are_chinese(server) -> None:
    port, _path = server
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        assert response.headers.get("Server") is None
    # A request line gunicorn refuses before the app sees it.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /\x00bad HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"Server:" not in head
    assert "请求格式不正确" in body.decode("utf-8")
