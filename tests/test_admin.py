"""Administrators manage accounts and read the audit log."""
from __future__ import annotations

from conftest import csrf_token
from service.storage import connect


def test_admin_manages_accounts_and_sees_the_audit_log(app, client, auth) -> None:
    auth.login("boss", "admin")
    token = csrf_token(client, "/staff/admin/users")
    response = client.post("/staff/admin/users", data={"username": "zhou", "role": "reviewer",
                                                       "password": "first-pass-1", "csrf_token": token})
    assert response.status_code == 302
    db = connect(app.config["DATABASE"])
    user_id = db.execute("select id from users where username = 'zhou'").fetchone()[0]
    client.post(f"/staff/admin/users/{user_id}", data={"role": "curator", "active": "0", "csrf_token": token})
    assert db.execute("select role, active from users where id = ?", [user_id]).fetchone() == ("curator", 0)
    client.post(f"/staff/admin/users/{user_id}", data={"password": "second-pass-2", "csrf_token": token})
    page = client.get("/staff/admin/audit").get_data(as_text=True)
    assert "创建账号" in page and "修改账号" in page and "boss" in page
    assert f"账号 {user_id}「zhou」" in page and "答复审核员" in page and "知识维护员" in page
    assert "second-pass-2" not in page  # passwords never reach the log
    filtered = client.get("/staff/admin/audit?action=create_user").get_data(as_text=True)
    assert "修改账号" not in filtered.split("<tbody>")[1]


def test_deactivated_account_cannot_sign_in(app, client, auth) -> None:
    auth.create("gone", "curator")
    db = connect(app.config["DATABASE"])
    db.execute("update users set active = 0 where username = 'gone'")
    assert auth.login("gone").status_code == 401


def test_admin_cannot_demote_self(app, client, auth) -> None:
    auth.login("boss", "admin")
    db = connect(app.config["DATABASE"])
    me = db.execute("select id from users where username = 'boss'").fetchone()[0]
    token = csrf_token(client, "/staff/admin/users")
    client.post(f"/staff/admin/users/{me}", data={"role": "curator", "active": "1", "csrf_token": token})
    assert db.execute("select role from users where id = ?", [me]).fetchone()[0] == "admin"


def test_bad_new_account_is_refused_with_a_message(client, auth) -> None:
    auth.login("boss", "admin")
    token = csrf_token(client, "/staff/admin/users")
    response = client.post("/staff/admin/users", data={"username": "x", "role": "reviewer",
                                                       "password": "short", "csrf_token": token})
    assert response.status_code == 400 and "用户名" in response.get_data(as_text=True)


def test_password_reset_ends_the_old_sessions(app, client, auth) -> None:
    auth.login("victim", "reviewer")
    assert client.get("/staff/tickets").status_code == 200
    db = connect(app.config["DATABASE"])
    user_id = db.execute("select id from users where username = 'victim'").fetchone()[0]
    from service.accounts import reset_password

    reset_password(db, user_id, "brand-new-pass-7")
    assert client.get("/staff/tickets").status_code == 302  # back to the login page


def test_own_password_change_keeps_this_session_and_is_audited(app, client, auth) -> None:
    auth.login("self", "curator")
    token = csrf_token(client, "/staff/password")
    client.post("/staff/password", data={"old": auth.PASSWORD, "new": "another-pass-8",
                                         "confirm": "another-pass-8", "csrf_token": token})
    assert client.get("/staff/").status_code == 200
    db = connect(app.config["DATABASE"])
    assert db.execute("select count(*) from audit_log where action = 'change_own_password'").fetchone()[0] == 1
