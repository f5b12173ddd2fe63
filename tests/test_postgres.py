"""PostgreSQL for several hosts: copying a SQLite database over, and two app servers on one
database (run with ``INQUIRY_TEST_DATABASE_URL``, as ``.ci/run`` does)."""
from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ON_POSTGRES, ROOT, make_app, new_pg_database
from service.accounts import create_user
from service.storage import connect

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="needs a PostgreSQL server: INQUIRY_TEST_DATABASE_URL")


def _open_ticket(client, question: str) -> str:  # type: ignore[no-untyped-def]
    body = client.post("/api/ask", json={"question": question, "escalate": True}).get_json()
    return body["ticket"]["code"]


def test_migrate_to_copies_every_table_and_checks_the_counts(tmp_path) -> None:
    source_app = make_app(tmp_path, DATABASE=str(tmp_path / "source.db"))
    client = source_app.test_client()
    codes = [_open_ticket(client, f"第{i}个需要人工答复的问题：档案馆的旧照片能否申请复制") for i in range(5)]
    reply = client.post("/api/ask", json={"question": "申请政府信息公开要收费吗"}).get_json()
    assert client.post("/api/feedback", json={"ask_id": reply["ask_id"], "helpful": True}).status_code == 200
    target = new_pg_database(seeded=False)

    result = source_app.test_cli_runner().invoke(args=["migrate-to", target, "--db", str(tmp_path / "source.db")])

    assert result.exit_code == 0, result.output
    assert "各表行数核对一致" in result.output
    source, copy = connect(tmp_path / "source.db"), connect(target)
    try:
        for table in ("entries", "alternates", "tickets", "asks", "feedback", "ticket_groups", "ticket_counts",
                      "facts", "passages", "entry_versions", "_migrations", "meta"):
            assert (copy.execute(f"select count(*) from {table}").fetchone()
                    == source.execute(f"select count(*) from {table}").fetchone()), table
        assert sorted(r[0] for r in copy.execute("select code from tickets")) == sorted(codes)
        # New rows get ids after the copied ones.
        copy.execute("insert into alternates (entry_id, text, created) values (1, '新问法', '2026-01-01')")
        assert copy.execute("select max(id) from alternates").fetchone()[0] == \
            source.execute("select max(id) from alternates").fetchone()[0] + 1
    finally:
        source.close()
        copy.close()
    # The copied database serves: the tickets are there, the answers are the same.
    served = make_app(tmp_path / "served", DATABASE=target).test_client()
    assert served.post("/api/ask", json={"question": "申请政府信息公开要收费吗"}).get_json()["answer"] == reply["answer"]

    again = source_app.test_cli_runner().invoke(args=["migrate-to", target, "--db", str(tmp_path / "source.db")])
    assert again.exit_code != 0 and "已有数据" in again.output


def test_backup_and_restore_refuse_postgres_and_name_its_tools(app) -> None:
    runner = app.test_cli_runner()
    backup = runner.invoke(args=["backup", "/tmp/never-written.db"])
    restore = runner.invoke(args=["restore", __file__, "--yes"])
    assert backup.exit_code != 0 and "pg_dump" in backup.output
    assert restore.exit_code != 0 and "pg_restore" in restore.output
    assert not Path("/tmp/never-written.db").exists()


def test_a_dropped_connection_is_replaced_without_failing_a_question(app) -> None:
    client = app.test_client()
    assert client.post("/api/ask", json={"question": "申请政府信息公开要收费吗"}).status_code == 200
    admin = connect(os.environ["INQUIRY_TEST_DATABASE_URL"])
    try:  # what a database restart or failover does to every kept connection
        admin.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                      "where datname = ? and pid != pg_backend_pid()", [app.config["DATABASE"].rsplit("/", 1)[1]])
    finally:
        admin.close()
    for _ in range(2):
        assert client.post("/api/ask", json={"question": "申请政府信息公开要收费吗"}).status_code == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(port: int, path: str, body: dict, headers: dict | None = None) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _wait_until_up(port: int, server: subprocess.Popen, log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"server on port {port} exited: {log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError(f"server on port {port} did not start")


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Two app servers (separate processes, ports and instance folders with the same secret
    key, 2 workers each) on one PostgreSQL database, and Redis for their rate limits and
    conversations when it is installed."""
    tmp_path = tmp_path_factory.mktemp("hosts")
    url = new_pg_database()
    redis = None
    env = {**os.environ, "INQUIRY_DATABASE_URL": url, "INQUIRY_RATE_LIMIT_TICKETS": "100000 per hour",
           "INQUIRY_ASK_LOG_BATCH": "16", "PYTHONUNBUFFERED": "1"}
    if shutil.which("redis-server"):
        redis_port = _free_port()
        redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no"], stdout=subprocess.DEVNULL)
        env["INQUIRY_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}"  # rate limits and conversations
    first = tmp_path / "host1"
    make_app(first, DATABASE=url)  # creates the instance folder and its secret key
    second = tmp_path / "host2"
    shutil.copytree(first / "instance", second / "instance")
    ports, servers, logs = [_free_port(), _free_port()], [], [first / "server.log", second / "server.log"]
    try:
        for port, folder, log in zip(ports, (first, second), logs):
            with log.open("w") as out:
                servers.append(subprocess.Popen(
                    [sys.executable, "run.py", "--port", str(port), "--workers", "2"], cwd=ROOT,
                    env={**env, "INQUIRY_INSTANCE": str(folder / "instance")}, stdout=out, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 120
        for port, server, log in zip(ports, servers, logs):
            _wait_until_up(port, server, log, deadline)
        yield url, ports
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)


ESCALATIONS = 2000


def test_two_hosts_on_one_database_lose_and_duplicate_no_ticket(two_hosts) -> None:
    url, ports = two_hosts
    questions = [f"请问第{i}号档案的复制件需要人工核对吗" for i in range(ESCALATIONS)]

    def escalate(i: int) -> tuple[int, str, str]:
        port = ports[i % 2]
        body = _post(port, "/api/ask", {"question": questions[i], "escalate": True, "session": f"s{i}"})
        return i, port, body["ticket"]["code"]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(escalate, range(ESCALATIONS)))
    elapsed = time.monotonic() - started
    print(f"{ESCALATIONS} escalations over two hosts in {elapsed:.1f} s ({ESCALATIONS / elapsed:.0f}/s)")

    codes = {code for _, _, code in results}
    assert len(codes) == ESCALATIONS  # every answer names its own ticket
    assert {port for _, port, _ in results} == set(ports)
    db = connect(url)
    try:
        stored = db.execute("select code, question from tickets").fetchall()
        assert len(stored) == ESCALATIONS  # nothing lost, nothing twice
        assert {code for code, _ in stored} == codes
        assert sorted(q for _, q in stored) == sorted(questions)
        counts = dict(db.execute("select status, n from ticket_counts").fetchall())
        assert counts.get("new") == ESCALATIONS  # the triggers' counts agree across hosts
    finally:
        db.close()


def test_a_follow_up_on_the_other_host_continues_the_conversation(two_hosts) -> None:
    _url, (first, second) = two_hosts
    assert "152" in _post(first, "/api/ask", {"question": "2021年收到多少申请", "session": "across"})["answer"]
    assert "103" in _post(second, "/api/ask", {"question": "那予以公开的呢", "session": "across"})["answer"]
    assert "103" not in _post(second, "/api/ask", {"question": "那予以公开的呢", "session": "another"})["answer"]


def test_a_save_on_one_host_is_answered_on_the_other(two_hosts) -> None:
    url, (first, second) = two_hosts
    question = "旧城改造的征收补偿方案在哪里可以查到"
    before = _post(second, "/api/ask", {"question": question})
    assert before["status"] != "answered" or "征收补偿方案公布在" not in before["answer"]
    # A curator saves a new entry through the first host's staff pages.
    db = connect(url)
    try:
        create_user(db, "curator1", "correct-horse-42", "curator")
    finally:
        db.close()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def submit(path: str, form: dict) -> int:
        page = browser.open(f"http://127.0.0.1:{first}{path}", timeout=30).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        data = urllib.parse.urlencode({**form, "csrf_token": token}).encode()
        with browser.open(f"http://127.0.0.1:{first}{path}", data=data, timeout=30) as response:
            return int(response.status)

    assert submit("/staff/login", {"username": "curator1", "password": "correct-horse-42"}) == 200
    assert submit("/staff/faq/new", {"question": question, "category": "其他", "source": "", "status": "published",
                                     "answer": "征收补偿方案公布在市住房和城乡建设局网站的“征收公告”栏目。"}) == 200
    saved = time.monotonic()

    deadline = time.monotonic() + 5
    while True:
        after = _post(second, "/api/ask", {"question": question})
        if "征收补偿方案公布在" in after.get("answer", "") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    print(f"a save on one host answered on the other after {time.monotonic() - saved:.2f} s")
    assert after["status"] == "answered"
    assert "征收补偿方案公布在" in after["answer"]
