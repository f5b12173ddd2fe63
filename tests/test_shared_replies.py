"""The replies one server's workers share (service/shared_replies.py)."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import free_port, from_every_worker, start_run_py
from service import shared_replies
from service.db import get_db, get_desk
from service.shared_replies import SharedReplies

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [json.loads(line)["q"] for line in
             (ROOT / "tests" / "data" / "heldout_questions.jsonl").read_text(encoding="utf-8").splitlines()[:120]]


def test_every_kind_of_reply_reads_back_as_it_was_stored(module_app, tmp_path) -> None:
    shared = SharedReplies(tmp_path / "replies.db")
    with module_app.app_context():
        desk = get_desk()
        replies = [desk.ask(q) for q in QUESTIONS]
    assert {r.status for r in replies} >= {"answered", "clarify", "escalated"}
    for question, reply in zip(QUESTIONS, replies):
        shared.put("7:db", 2026, question, reply)
    for question, reply in zip(QUESTIONS, replies):
        assert shared.get("7:db", 2026, question) == reply
    assert shared.stats["errors"] == 0


def test_a_desk_answers_from_the_shared_replies_of_its_own_knowledge_only(module_app, tmp_path) -> None:
    from service.index_keeper import database_id, version_stamp

    shared = SharedReplies(tmp_path / "replies.db")
    with module_app.app_context():
        desk = get_desk()
        db = get_db()
        # The keeper names the knowledge: its version, the database's id, when it was logged.
        knowledge = f"{desk.version}:{database_id(db)}:{version_stamp(db, desk.version)}"
        assert desk.knowledge_key == (desk.version, knowledge.split(":", 1)[1])
        question = "这个问题没有哪个工作进程答过"
        year = (desk.settings.today or __import__("datetime").date.today()).year
        computed = desk.ask(question)
        marked = dataclasses.replace(computed, answer="另一个工作进程的答复")
        shared.put(knowledge, year, question, marked)
        shared.put(f"{desk.version - 1}:{knowledge.split(':', 1)[1]}", year, "旧版本的问题", marked)
        # The same version number of other knowledge (a database put back, or another one).
        shared.put(f"{desk.version}:another-database:{version_stamp(db, desk.version)}", year, "别的库的问题", marked)
        desk.clear_cache()
        assert desk.ask(question, shared=shared).answer == "另一个工作进程的答复"
        assert desk.ask("旧版本的问题", shared=shared).answer != "另一个工作进程的答复"
        assert desk.ask("别的库的问题", shared=shared).answer != "另一个工作进程的答复"
        # Worked out here, it is stored for the others.
        assert shared.get(knowledge, year, "旧版本的问题") is not None
        desk.clear_cache()
        # A desk whose knowledge is not named (not from the keeper) shares nothing.
        key, desk.knowledge_key = desk.knowledge_key, (-1, "")
        try:
            assert desk.ask(question, shared=shared).answer != "另一个工作进程的答复"
        finally:
            desk.knowledge_key = key
            desk.clear_cache()


def test_knowledge_whose_version_was_not_logged_shares_nothing(app, tmp_path) -> None:
    """A restored backup moves the version past every earlier one without logging it: no
    reply is shared under it (two copies of one database would name it alike)."""
    shared = SharedReplies(tmp_path / "replies.db")
    with app.app_context():
        db = get_db()
        db.execute("update meta set value = cast(cast(value as integer) + 1 as text) where key = 'kb_version'")
        desk = get_desk()
        assert desk.knowledge_key == (desk.version, "")
        desk.ask("政府信息公开申请要收费吗", shared=shared)
    assert shared.stats == {"hits": 0, "misses": 0, "writes": 0, "errors": 0}


def test_a_search_of_the_knowledge_base_shares_no_personal_number(app, tmp_path) -> None:
    shared = app.extensions["shared_replies"] = SharedReplies(tmp_path / "replies.db")
    client = app.test_client()
    with app.app_context():
        get_desk()  # named by the keeper
    assert client.get("/faq", query_string={"q": "申请信息公开要交钱吗"}).status_code == 200
    number = "11010519491231002X"
    assert client.get("/faq", query_string={"q": f"我的身份证{number}怎么申请公开"}).status_code == 200
    with sqlite3.connect(shared.path) as conn:
        questions = [row[0] for row in conn.execute("select question from replies")]
    assert questions == ["申请信息公开要交钱吗"]


def test_an_unusable_cache_costs_nothing_but_time(module_app, tmp_path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("x")
    shared = SharedReplies(blocked / "replies.db")  # cannot be opened
    with module_app.app_context():
        desk = get_desk()
        desk.clear_cache()
        reply = desk.ask("政府信息公开申请要收费吗", shared=shared)
        desk.clear_cache()
    assert reply.status == "answered"
    assert shared.stats["errors"] == 2  # the read and the write, each given up


def test_the_file_keeps_the_newest_replies(tmp_path, monkeypatch) -> None:
    from service.replies import Reply

    monkeypatch.setattr(shared_replies, "MAX_ROWS", 30)
    monkeypatch.setattr(shared_replies, "PRUNE_EVERY", 10)
    shared = SharedReplies(tmp_path / "replies.db")
    for n in range(25):
        shared.put("1:db", 2026, f"问题{n}", Reply("escalated", None, ""))
    for n in range(45):
        shared.put("2:db", 2026, f"问题{n}", Reply("escalated", None, ""))
        assert shared.count() <= 30 + 10
    assert shared.get("1:db", 2026, "问题24") is None  # an older version's replies age out first
    assert shared.get("2:db", 2026, "问题44") is not None


def test_a_file_of_another_shape_is_not_trusted(tmp_path) -> None:
    shared = SharedReplies(tmp_path / "replies.db")
    shared.count()  # creates the table
    with sqlite3.connect(tmp_path / "replies.db") as conn:
        conn.execute("insert into replies (knowledge, year, question, body) values ('1', 2026, '问', '[1, 2]')")
        conn.execute("insert into replies (knowledge, year, question, body) values ('1', 2026, '坏', '{not json')")
    assert shared.get("1", 2026, "问") is None
    assert shared.get("1", 2026, "坏") is None


def test_a_new_server_removes_the_folders_of_servers_killed_outright(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(shared_replies.tempfile, "tempdir", str(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead = tmp_path / f"inquiry-replies-{gone.stdout.strip()}-abc"
    living = tmp_path / f"inquiry-replies-{os.getppid()}-def"
    other = tmp_path / "inquiry-replies-notapid"
    for folder in (dead, living, other):
        folder.mkdir()
        (folder / "replies.db").write_text("")
    shared = SharedReplies.create()
    try:
        assert not dead.exists()
        assert living.exists() and other.exists()
        assert Path(shared.path).parent.name.startswith(f"inquiry-replies-{os.getpid()}-")
    finally:
        shared.remove()
    assert not Path(shared.path).parent.exists()


def test_a_servers_workers_share_one_file_that_goes_with_the_server(tmp_path) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    port = free_port()
    env = dict(os.environ, INQUIRY_SHOW_WORKER_PID="1", TMPDIR=str(temp), INQUIRY_INSTANCE=str(tmp_path / "inst"))
    proc = start_run_py(port, tmp_path / "s.db", env, tmp_path / "server.log")
    try:
        [folder] = temp.glob(f"inquiry-replies-{proc.pid}-*")
        assert folder.stat().st_mode & 0o777 == 0o700
        question = "政府信息公开申请要收费吗"
        seen = from_every_worker(port, question)
        answers = {r["answer"] for replies in seen.values() for r in replies}
        assert len(answers) == 1 and "收" in answers.pop()
        with sqlite3.connect(folder / "replies.db") as conn:
            [(knowledge, year)] = conn.execute("select knowledge, year from replies where question = ?",
                                               [question]).fetchall()
        # Every worker reads what another stored: a reply put in the file under the live
        # knowledge is what both answer.
        file = SharedReplies(folder / "replies.db")
        stored = file.get(knowledge, year, question)
        file.put(knowledge, year, "没有哪个工作进程答过的问题", dataclasses.replace(stored, answer="来自共享文件的答复"))
        marked = from_every_worker(port, "没有哪个工作进程答过的问题")
        assert {r["answer"] for replies in marked.values() for r in replies} == {"来自共享文件的答复"}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert not list(temp.glob("inquiry-replies-*")), "the server left its replies behind"
