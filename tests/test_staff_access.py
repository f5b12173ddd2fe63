"""Staff accounts, login, CSRF, and the access check on every staff route."""
from __future__ import annotations

import io
import re
from pathlib import Path


from conftest import csrf_token
from service.storage import connect

DATA = Path(__file__).resolve().parent / "data" / "reports"


def staff_routes(app) -> list[tuple[str, str, tuple[str, ...]]]:  # type: ignore[no-untyped-def]
    """Every staff route from the URL map, with the roles it requires (empty: any staff)."""
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/staff") or rule.endpoint in ("auth.login",):
            continue
        view = app.view_functions[rule.endpoint]
        roles = getattr(view, "required_roles", ())
        path = re.sub(r"<(?:int:)?[^>]+>", "1", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((method, path, roles))
    return out


def test_every_staff_route_refuses_anonymous_users(app, client) -> None:
    routes = staff_routes(app)
    assert len(routes) >= 5
    for method, path, _ in routes:
        if path == "/staff/logout":
            continue
        response = client.open(path, method=method)
        if path.startswith("/staff/api/"):
            assert response.status_code == 401 and "error" in response.get_json(), path
        elif method == "GET":
            assert response.status_code == 302 and "/staff/login" in response.headers["Location"], path
        else:  # a POST without a session: refused before anything happens (CSRF or login)
            assert response.status_code in (302, 400, 401), (method, path, response.status_code)


def test_every_role_restricted_route_refuses_other_roles(app, client, auth) -> None:
    auth.login("someone", "reviewer")
    for method, path, roles in staff_routes(app):
        if roles and "reviewer" not in roles and method == "GET":
            assert client.get(path).status_code == 403, path


def test_login_logout_and_wrong_password(client, auth) -> None:
    auth.create("li", "curator")
    response = auth.login("li", password="wrong-password-1")
    assert response.status_code == 401 and "不正确" in response.get_data(as_text=True)
    response = auth.login("li")
    assert response.status_code == 302
    assert "工作台" in client.get("/staff/").get_data(as_text=True)
    auth.logout()
    assert client.get("/staff/").status_code == 302


def test_lockout_after_repeated_failures(client, auth) -> None:
    auth.create("zhao", "reviewer")
    for _ in range(5):
        auth.login("zhao", password="wrong-password-1")
    response = auth.login("zhao")  # even the right password is refused while locked
    assert response.status_code == 401 and "锁定" in response.get_data(as_text=True)


def test_forms_without_csrf_token_are_refused(client, auth) -> None:
    auth.create("wu", "curator")
    response = client.post("/staff/login", data={"username": "wu", "password": auth.PASSWORD})
    assert response.status_code == 400 and "刷新页面" in response.get_data(as_text=True)


def test_change_own_password(client, auth) -> None:
    auth.login("sun", "curator")
    token = csrf_token(client, "/staff/password")
    response = client.post("/staff/password", data={"old": auth.PASSWORD, "new": "new-secret-99",
                                                     "confirm": "new-secret-99", "csrf_token": token})
    assert response.status_code == 302
    auth.logout()
    assert auth.login("sun", password="new-secret-99").status_code == 302


def test_passwords_are_salted_slow_hashes(app, auth) -> None:
    auth.create("a1", "curator")
    auth.create("a2", "curator")
    hashes = [r[0] for r in connect(app.config["DATABASE"]).execute("select password_hash from users")]
    assert all(h.startswith(("scrypt:", "pbkdf2:")) for h in hashes)
    assert hashes[0] != hashes[1] and auth.PASSWORD not in hashes[0]


def test_create_user_command(app, runner) -> None:
    result = runner.invoke(args=["create-user", "admin1", "--role", "admin", "--password", "a-long-pass-1"])
    assert result.exit_code == 0 and "已创建" in result.output
    result = runner.invoke(args=["create-user", "admin1", "--role", "admin", "--password", "a-long-pass-1"])
    assert result.exit_code != 0 and "已存在" in result.output
    result = runner.invoke(args=["create-user", "x2", "--role", "admin", "--password", "short"])
    assert result.exit_code != 0 and "至少" in result.output
    result = runner.invoke(args=["create-user", "x3", "--role", "admin"], input="pass-word-123\npass-word-123\n")
    assert result.exit_code == 0


def test_secret_key_is_generated_and_kept_in_instance_folder(tmp_path) -> None:
    from service.keys import load

    first, old = load(tmp_path / "inst")
    assert len(first) == 64 and load(tmp_path / "inst") == (first, []) and old == []
    assert (tmp_path / "inst" / "secret_key").stat().st_mode & 0o077 == 0
    assert (tmp_path / "inst").stat().st_mode & 0o077 == 0


def test_report_upload_preview_then_confirm(app, client, auth) -> None:
    auth.login("curator1", "curator")
    token = csrf_token(client, "/staff/reports/import")
    data = {"csrf_token": token, "file": (io.BytesIO((DATA / "mof-2022.docx").read_bytes()), "mof-2022.docx")}
    page = client.post("/staff/reports/import", data=data, content_type="multipart/form-data").get_data(as_text=True)
    assert "2022年财政部" in page and "数据校验通过" in page and "确认导入" in page
    db = connect(app.config["DATABASE"])
    assert db.execute("select count(*) from reports").fetchone()[0] == 1  # nothing written by the preview
    fields = dict(re.findall(r'name="(token|suffix|filename|agency|year|csrf_token)" value="([^"]*)"', page))
    response = client.post("/staff/reports/import/confirm", data=fields)
    assert response.status_code == 302 and response.headers["Location"].startswith("/reports/")
    assert db.execute("select count(*) from reports").fetchone()[0] == 2
    assert db.execute("select action, username from audit_log").fetchall() == [("import_report", "curator1")]
    reply = client.post("/api/ask", json={"question": "财政部2022年收到多少申请"}).get_json()
    assert "1181" in reply["answer"]
    # The same preview cannot be confirmed twice.
    assert client.post("/staff/reports/import/confirm", data=fields).status_code == 400


def test_report_upload_refuses_non_reports(app, client, auth) -> None:
    auth.login("curator1", "curator")
    token = csrf_token(client, "/staff/reports/import")
    data = {"csrf_token": token, "file": (io.BytesIO("随便写的文字".encode()), "notes.txt")}
    response = client.post("/staff/reports/import", data=data, content_type="multipart/form-data")
    assert response.status_code == 400 and "无法导入" in response.get_data(as_text=True)
    data = {"csrf_token": token, "file": (io.BytesIO(b"MZ\x90"), "virus.exe")}
    response = client.post("/staff/reports/import", data=data, content_type="multipart/form-data")
    assert response.status_code == 400 and ".docx" in response.get_data(as_text=True)


def test_reviewer_cannot_import_reports(client, auth) -> None:
    auth.login("rev", "reviewer")
    assert client.get("/staff/reports/import").status_code == 403
