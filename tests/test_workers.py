"""Knowledge changes reach every worker process of the production server at once."""
from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port, from_every_worker, start_run_py
from service import faq
from service.storage import connect

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server(tmp_path):  # type: ignore[no-untyped-def]
    port = free_port()
    db = tmp_path / "workers.db"
    env = dict(os.environ, INQUIRY_SHOW_WORKER_PID="1")
    proc = start_run_py(port, db, env, tmp_path / "server.log")
    try:
        yield port, db
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_a_saved_change_is_answered_by_every_worker(server) -> None:
    port, path = server
    question = "统计局的食堂对外开放吗"
    before = from_every_worker(port, question)
    assert all(r["status"] == "escalated" for replies in before.values() for r in replies)
    # A curator's save through the workspace's own code, from another process.
    entry_id = faq.create_entry(connect(path), {"id": 1, "username": "curator"}, {
        "key": "canteen", "question": "统计局食堂对外开放吗？", "answer": "机关食堂不对外开放。",
        "category": "其他", "source": "工作实践", "status": "published"})
    faq.add_alternate(connect(path), {"id": 1, "username": "curator"}, entry_id, "食堂能进去吃饭吗")
    after = from_every_worker(port, question)
    assert len(after) == 2
    assert all(r["status"] == "answered" and "不对外开放" in r["answer"]
               for replies in after.values() for r in replies), after


def _post_json(port: int, body: dict) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/ask", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_a_suggestion_accepted_in_the_inbox_is_answered_by_every_worker(server) -> None:
    """A citizen picks a "did you mean" suggestion; a curator accepts the pairing in the
    inbox, over HTTP; from then on every worker answers those words with that entry."""
    import http.cookiejar
    import re
    import urllib.parse

    from service.accounts import create_user

    port, path = server
    question = "复议怎么申请"
    before = from_every_worker(port, question)
    assert all(r["status"] == "clarify" for replies in before.values() for r in replies)
    reply = _post_json(port, {"question": question, "session": "w1"})
    [chosen] = [s for s in reply["suggestions"] if "行政复议" in s["question"]]
    _post_json(port, {"question": chosen["question"], "session": "w1", "pick": chosen["pick"]})
    # The question log is written in batches (within a second): wait until the pick's question is in it.
    db = connect(path)
    for _ in range(100):
        if db.execute("select count(*) from suggestion_picks p join asks a on a.ask_token = p.ask_token").fetchone()[0]:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the pick's question was never logged")

    create_user(db, "curator1", "correct-horse-42", "curator")
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    base = f"http://127.0.0.1:{port}"

    def page(url: str, form: dict | None = None) -> str:
        data = urllib.parse.urlencode(form, doseq=True).encode() if form is not None else None
        with browser.open(base + url, data, timeout=10) as response:
            return response.read().decode()

    token = re.search(r'name="csrf_token" value="([^"]+)"', page("/staff/login")).group(1)
    page("/staff/login", {"username": "curator1", "password": "correct-horse-42", "csrf_token": token})
    inbox = page("/staff/inbox")
    section = inbox[inbox.index("群众选择的建议问法"):inbox.index("未能答好的问题")]
    key = re.search(r'name="key" value="([^"]+)"', section).group(1)
    token = re.search(r'name="csrf_token" value="([^"]+)"', section).group(1)
    done = page("/staff/inbox/suggestions", {"key": key, "entry_id": chosen["id"], "question": question,
                                             "decision": "accepted", "csrf_token": token})
    assert "已采纳" in done
    after = from_every_worker(port, question)
    assert len(after) == 2
    assert all(r["status"] == "answered" and r["entry_id"] == chosen["id"]
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
