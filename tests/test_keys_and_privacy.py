"""Secret keys that can be rotated and backed up, CLI commands that name their database,
personal numbers masked before storage, purges that leave no copy behind."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, make_app, sqlite_only
from service.privacy import mask_personal
from service.storage import connect


def escalate(client, question: str = "请问贵单位食堂今年的菜谱能公开吗"):  # type: ignore[no-untyped-def]
    body = client.post("/api/ask", json={"question": question}).get_json()
    assert body["status"] == "escalated", body
    return body["ticket"]


def check(app, ticket) -> bool:  # type: ignore[no-untyped-def]
    from service.views.citizen_chat import ticket_keys
    from service.tickets import TicketError, citizen_ticket

    with app.app_context():
        db = connect(app.config["DATABASE"])
        try:
            citizen_ticket(db, ticket["code"], ticket["password"], "10.0.0.8", secret=ticket_keys())
        except TicketError:
            return False
        finally:
            db.close()
    return True


def test_query_passwords_survive_a_key_rotation_and_move_to_the_new_key(tmp_path) -> None:
    from service import keys

    app = make_app(tmp_path)
    ticket = escalate(app.test_client())
    old_id, new_id = keys.rotate(tmp_path / "instance")
    assert old_id != new_id
    app2 = make_app(tmp_path)  # a restart: the new key signs, the old one only verifies
    assert app2.config["SECRET_KEY"] != app.config["SECRET_KEY"]
    assert app2.config["SECRET_KEY_FALLBACKS"] == [app.config["SECRET_KEY"]]
    assert check(app2, ticket)
    stored = connect(app2.config["DATABASE"]).execute("select password_hash from tickets").fetchone()[0]
    assert stored.startswith(f"hmac-sha256${new_id}$")  # re-hashed under the new key when used
    assert check(app2, ticket)
    assert not check(app2, {**ticket, "password": "999999" if ticket["password"] != "999999" else "888888"})


@sqlite_only  # backup and restore of the SQLite file (PostgreSQL: pg_dump)
def test_backup_carries_the_keys_and_restore_keeps_them(tmp_path) -> None:
    app = make_app(tmp_path / "a")
    ticket = escalate(app.test_client())
    result = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "bak" / "copy.db")])
    assert result.exit_code == 0, result.output
    keys_file = tmp_path / "bak" / "copy.db.keys"
    assert keys_file.read_text().split()[0] == app.config["SECRET_KEY"]
    assert keys_file.stat().st_mode & 0o077 == 0 and (tmp_path / "bak" / "copy.db").stat().st_mode & 0o077 == 0

    other = make_app(tmp_path / "b")  # another server, with its own key
    assert other.config["SECRET_KEY"] != app.config["SECRET_KEY"]
    result = other.test_cli_runner().invoke(args=["restore", str(tmp_path / "bak" / "copy.db"), "--yes"])
    assert result.exit_code == 0 and "旧密钥" in result.output, result.output
    restarted = make_app(tmp_path / "b")
    assert check(restarted, ticket)


@sqlite_only  # backup and restore of the SQLite file (PostgreSQL: pg_dump)
def test_restore_without_keys_warns(tmp_path) -> None:
    app = make_app(tmp_path / "a")
    app.test_cli_runner().invoke(args=["backup", str(tmp_path / "copy.db")])
    (tmp_path / "copy.db.keys").unlink()
    result = make_app(tmp_path / "b").test_cli_runner().invoke(args=["restore", str(tmp_path / "copy.db"), "--yes"])
    assert result.exit_code == 0 and "未找到密钥文件" in result.output


def test_the_cli_uses_the_database_it_is_given_and_says_so(tmp_path) -> None:
    env = {**os.environ, "INQUIRY_INSTANCE": str(tmp_path / "inst"), "PYTHONPATH": str(ROOT)}
    env.pop("INQUIRY_DB", None)
    target = tmp_path / "server.db"

    def flask(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "flask", "--app", "service", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    # A database that does not exist is never made on the side: the command refuses.
    done = flask("create-user", "ops1", "--role", "admin", "--password", "long-pass-123", "--db", str(target))
    assert done.returncode != 0 and "数据库不存在" in done.stderr and not target.exists()
    assert flask("backup", str(tmp_path / "b.db")).returncode != 0  # nor the default one
    assert not (tmp_path / "inst" / "inquiry.db").exists() and not (tmp_path / "b.db").exists()
    done = flask("init-db", "--db", str(target))
    assert done.returncode == 0 and f"数据库：{target}" in done.stderr
    done = flask("create-user", "ops1", "--role", "admin", "--password", "long-pass-123", "--db", str(target))
    assert done.returncode == 0, done.stderr
    assert f"数据库：{target}" in done.stderr
    assert connect(target).execute("select username from users").fetchall() == [("ops1",)]
    assert not (tmp_path / "inst" / "inquiry.db").exists()  # no second database made on the side
    assert target.stat().st_mode & 0o077 == 0 and (tmp_path / "inst").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(("text", "masked"), [
    ("我的手机13812345678请回电", "我的手机138****5678请回电"),
    ("电话 138-1234-5678", "电话 138****5678"),
    ("电话138.1234.5678", "电话138****5678"),
    ("手机１３８１２３４５６７８", "手机138****5678"),  # full-width digits from an input method
    ("+86 13812345678", "138****5678"),
    ("身份证11010119900307123X", "身份证110101********123X"),
    ("身份证 110101 19900307 1234", "身份证 110101********1234"),
    ("卡号6222 0212 3456 7890 128", "卡号6222***********0128"),  # passes the Luhn check
    ("邮箱 zhang.san@example.cn", "邮箱 z***@example.cn"),
    ("座机010-68783311", "座机010****3311"),
    ("电话 138 1234 5678 2021年的报告", "电话 138****5678 2021年的报告"),
])
def test_personal_numbers_are_masked(text: str, masked: str) -> None:
    assert mask_personal(text) == masked


@pytest.mark.parametrize("text", [
    "2021年收到申请1234件", "收费251000元", "工单GKB3XK9QH2T7", "第12345678号", "申请编号2023010112345",
    "快递单号 SF1234567890123", "订单号 202301011234567890", "国统字〔2021〕12号", "2019年至2021年",
    "卡号6222 0212 3456 7890 123",  # fails the Luhn check: not a card number
])
def test_figures_years_and_other_numbers_are_not_masked(text: str) -> None:
    assert mask_personal(text) == text


def test_questions_are_stored_masked(app, client) -> None:
    question = "我叫张三，手机13812345678，身份证110101199003071234，贵单位食堂今年的菜谱能公开吗"
    client.post("/api/ask", json={"question": question})
    db = connect(app.config["DATABASE"])
    stored = [r[0] for r in db.execute("select question from asks union all select question from tickets")]
    assert stored and all("13812345678" not in q and "199003071234" not in q for q in stored)
    assert all("138****5678" in q for q in stored)


def test_purge_erases_contacts_whatever_the_status_and_leaves_no_copy(app, client) -> None:
    ticket = escalate(client)
    response = client.post(f"/api/tickets/{ticket['code']}/contact",
                           json={"password": ticket["password"], "phone": "13987654321"})
    assert response.status_code == 200
    db = connect(app.config["DATABASE"])
    db.execute("update tickets set status = 'answered', updated = '2020-01-01T00:00:00+00:00'")
    result = app.test_cli_runner().invoke(args=["purge-contacts", "--older-than", "30"])
    assert result.exit_code == 0 and "已清除 1 张" in result.output, result.output
    assert db.execute("select contact_phone from tickets").fetchone()[0] is None
    db.close()
    from service.db import forget_connections

    forget_connections()
    path = Path(app.config["DATABASE"])
    for file in (path, Path(f"{path}-wal")):
        if file.exists():
            assert b"13987654321" not in file.read_bytes(), file


def test_deeply_nested_json_is_a_400_without_a_traceback(client, caplog) -> None:
    body = "[" * 1000 + "]" * 1000
    response = client.post("/api/ask", data=body, content_type="application/json")
    assert response.status_code == 400 and "嵌套" in response.get_json()["error"]
    response = client.post("/api/ask", data='{"question": ' + "[" * 3000 + "]" * 3000 + "}",
                           content_type="application/json")
    assert response.status_code == 400
    assert "Traceback" not in caplog.text


@sqlite_only  # backup and restore of the SQLite file (PostgreSQL: pg_dump)
def test_a_restore_ends_the_sessions_of_the_backup(tmp_path) -> None:
    from service.accounts import create_user, start_session

    app = make_app(tmp_path / "a")
    db = connect(app.config["DATABASE"])
    user_id = create_user(db, "restorer", "long-pass-123", "admin")
    start_session(db, user_id, "10.0.0.1", "test")  # live when the backup is taken
    app.test_cli_runner().invoke(args=["backup", str(tmp_path / "copy.db")])
    result = app.test_cli_runner().invoke(args=["restore", str(tmp_path / "copy.db"), "--yes"])
    assert result.exit_code == 0, result.output
    assert connect(app.config["DATABASE"]).execute(
        "select count(*) from staff_sessions where ended is null").fetchone()[0] == 0
