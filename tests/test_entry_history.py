"""Each FAQ entry keeps its history: every save is a version, listed on the entry's page
with who, when and what changed, and an earlier version can be restored (alternates too),
answering in the chat at once."""
from __future__ import annotations

import json

import pytest
import sqlite_utils

from conftest import csrf_token
from service import entry_versions, faq
from service.knowledge import knowledge_version
from service.migrations import MIGRATIONS
from service.storage import connect

QUESTION = "申请政府信息公开多久答复？"


@pytest.fixture
def db(app):  # type: ignore[no-untyped-def]
    return connect(app.config["DATABASE"])


@pytest.fixture
def staff(client, auth):  # type: ignore[no-untyped-def]
    auth.login("curator1", "curator")
    return client


def post(client, url: str, **data):  # type: ignore[no-untyped-def]
    return client.post(url, data={"csrf_token": csrf_token(client, "/staff/faq"), **data})


def entry_id(db, key: str) -> int:  # type: ignore[no-untyped-def]
    return db.execute("select id from entries where key = ?", [key]).fetchone()[0]


def form(db, entry: int, **changes: str) -> dict:  # type: ignore[no-untyped-def]
    row = next(db.query("select * from entries where id = ?", [entry]))
    return {**{k: row[k] or "" for k in ("question", "answer", "category", "source", "status", "version")},
            **changes}


def ask(client, question: str) -> dict:  # type: ignore[no-untyped-def]
    response = client.post("/api/ask", json={"question": question})
    assert response.status_code == 200
    return response.get_json()


def test_every_save_keeps_a_version(staff, db) -> None:
    target = entry_id(db, "reply-deadline")
    post(staff, f"/staff/faq/{target}", **form(db, target, answer="第一次修改的答案。"))
    post(staff, f"/staff/faq/{target}/alternates", text="多少天能拿到答复呀")
    alt = db.execute("select id from alternates where entry_id = ? and text = '多少天能拿到答复呀'", [target]).fetchone()[0]
    post(staff, f"/staff/faq/{target}/alternates/{alt}/delete")
    post(staff, f"/staff/faq/{target}/archive")
    post(staff, f"/staff/faq/{target}/restore")
    history = faq.entry_history(db, target)
    assert [v["version"] for v in history] == [6, 5, 4, 3, 2, 1]
    assert [v["action"] for v in history] == ["restore_entry", "archive_entry", "remove_alternate",
                                              "add_alternate", "update_entry", "baseline"]
    assert [c.label for c in history[4]["changes"]] == ["答案"]
    assert [c.label for c in history[3]["changes"]] == ["相似问法"]
    assert {v["username"] for v in history[:5]} == {"curator1"}
    page = staff.get(f"/staff/faq/{target}").get_data(as_text=True)
    assert "历史版本（6）" in page and "第 2 版" in page and "修改条目" in page and "添加相似问法" in page
    assert "修改内容：答案" in page and "恢复此版本" in page
    assert "第一次修改的答案。" in page  # the change itself, as before/after text


def test_a_new_entry_starts_its_history(staff, db) -> None:
    response = post(staff, "/staff/faq/new", question="统计局食堂对外开放吗？", answer="不对外开放。", status="draft")
    new_id = int(response.headers["Location"].rsplit("/", 1)[1])
    [version] = faq.entry_history(db, new_id)
    assert version["action"] == "create_entry" and version["first"]
    assert "新建条目" in staff.get(f"/staff/faq/{new_id}").get_data(as_text=True)


def test_restoring_an_earlier_version_answers_in_the_chat_at_once(staff, db, client) -> None:
    target = entry_id(db, "reply-deadline")
    original = db.execute("select answer from entries where id = ?", [target]).fetchone()[0]
    post(staff, f"/staff/faq/{target}", **form(db, target, answer="临时改错的答案。"))
    post(staff, f"/staff/faq/{target}/alternates", text="多少天能拿到答复呀")
    assert ask(client, QUESTION)["answer"] == "临时改错的答案。"
    kb = knowledge_version(db)

    response = post(staff, f"/staff/faq/{target}/versions/1/restore", version="3")
    assert response.status_code == 302
    row = next(db.query("select * from entries where id = ?", [target]))
    assert row["answer"] == original and row["version"] == 4
    texts = [r[0] for r in db.execute("select text from alternates where entry_id = ?", [target])]
    assert "多少天能拿到答复呀" not in texts  # the alternates come back as they were
    assert knowledge_version(db) > kb
    reply = ask(client, QUESTION)
    assert reply["entry_id"] == target and reply["answer"] == original
    [log] = list(db.query("select * from audit_log where action = 'restore_version'"))
    assert json.loads(log["after"])["restored_from"] == 1 and json.loads(log["before"])["answer"] == "临时改错的答案。"
    history = faq.entry_history(db, target)
    assert history[0]["action"] == "restore_version" and history[0]["note"] == "恢复为第 1 版的内容"
    assert entry_versions.content(faq._snapshot(db, target)) == history[-1]["content"]
    assert "已恢复为第 1 版的内容" in staff.get(f"/staff/faq/{target}").get_data(as_text=True)
    # And the wording it replaced can be brought back in turn.
    assert post(staff, f"/staff/faq/{target}/versions/2/restore", version="4").status_code == 302
    assert ask(client, QUESTION)["answer"] == "临时改错的答案。"


@pytest.mark.parametrize(("version", "current", "status", "message"), [
    (99, "2", 400, "没有第 99 版"),
    (2, "2", 400, "与当前内容相同"),
    (1, "1", 409, "已被他人修改"),
    (1, "", 409, "已被他人修改"),
])
def test_bad_restores_are_refused_with_a_message(staff, db, version: int, current: str, status: int,
                                                 message: str) -> None:
    target = entry_id(db, "reply-deadline")
    post(staff, f"/staff/faq/{target}", **form(db, target, answer="改过的答案。"))
    before = list(db.query("select * from entries where id = ?", [target]))
    response = post(staff, f"/staff/faq/{target}/versions/{version}/restore", version=current)
    assert response.status_code == status and message in response.get_data(as_text=True)
    assert list(db.query("select * from entries where id = ?", [target])) == before


def test_restoring_on_an_unknown_entry_is_404(staff) -> None:
    assert post(staff, "/staff/faq/9999/versions/1/restore", version="1").status_code == 404


def test_reviewers_cannot_restore(client, auth, db) -> None:
    auth.login("rev", "reviewer")
    target = entry_id(db, "reply-deadline")
    response = client.post(f"/staff/faq/{target}/versions/1/restore", data={"version": "1"})
    assert response.status_code in (400, 403)
    assert db.execute("select version from entries where id = ?", [target]).fetchone()[0] == 1


def test_migration_backfills_a_version_for_existing_entries() -> None:
    db = sqlite_utils.Database(memory=True)
    for name, fn in sorted(MIGRATIONS):
        if name == "0015_entry_versions":
            db["entries"].insert({"id": 7, "key": "k", "question": "问？", "answer": "答。", "category": "",
                                  "source": "", "status": "published", "version": 3, "updated": "2024-01-01T00:00:00"})
            db["alternates"].insert({"entry_id": 7, "text": "另一种问法", "created": "2024-01-01"})
        fn(db)
    [row] = list(db.query("select * from entry_versions"))
    assert (row["entry_id"], row["version"], row["action"]) == (7, 3, "backfill")
    assert json.loads(row["snapshot"])["alternates"] == ["另一种问法"]


def test_a_restored_wording_is_answered_at_once(staff, db, client) -> None:
    target = entry_id(db, "reply-deadline")
    wording = "蓝色大象哪天会飞上天"
    assert ask(client, wording).get("entry_id") != target
    post(staff, f"/staff/faq/{target}/alternates", text=wording)  # version 2
    assert ask(client, wording)["entry_id"] == target
    alt = db.execute("select id from alternates where entry_id = ? and text = ?", [target, wording]).fetchone()[0]
    post(staff, f"/staff/faq/{target}/alternates/{alt}/delete")  # version 3
    assert ask(client, wording).get("entry_id") != target
    assert post(staff, f"/staff/faq/{target}/versions/2/restore", version="3").status_code == 302
    reply = ask(client, wording)
    assert reply["entry_id"] == target and "工作日" in reply["answer"]
