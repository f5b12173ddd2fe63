"""Security at the edge: headers on every page, rate limits with Chinese 429s, cookies."""
from __future__ import annotations

import pytest

from conftest import make_app


@pytest.mark.parametrize("path", ["/", "/reports", "/reports/1", "/staff/login", "/no-such-page"])
def test_security_headers_on_every_page(client, path: str) -> None:
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"]


def test_api_answers_carry_headers_and_no_store(client) -> None:
    response = client.post("/api/ask", json={"question": "你好"})
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.fixture
def limited(tmp_path):  # type: ignore[no-untyped-def]
    return make_app(tmp_path, RATELIMIT_ENABLED=True, RATE_LIMIT_EXEMPT_LOOPBACK=False, RATE_LIMIT_ASK="3 per minute",
                    RATE_LIMIT_LOGIN="2 per minute", RATE_LIMIT_LOOKUP="2 per minute")


def test_ask_is_rate_limited_with_a_chinese_429(limited) -> None:
    client = limited.test_client()
    codes = [client.post("/api/ask", json={"question": "你好"}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = client.post("/api/ask", json={"question": "你好"})
    assert "频繁" in response.get_json()["error"]
    # Another address has its own allowance.
    other = client.post("/api/ask", json={"question": "你好"}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200


def test_login_is_rate_limited(limited) -> None:
    client = limited.test_client()
    codes = [client.post("/staff/login", data={"username": "x", "password": "y"}).status_code for _ in range(3)]
    assert codes[-1] == 429
    assert "频繁" in client.post("/staff/login", data={}).get_data(as_text=True)


def test_session_cookie_is_httponly_samesite_and_secure_over_https(app, auth) -> None:
    client = app.test_client()
    auth.client = client
    auth.create("c1", "curator")
    from conftest import csrf_token

    token = csrf_token(client, "/staff/login")
    response = client.post("/staff/login", data={"username": "c1", "password": auth.PASSWORD, "csrf_token": token},
                           base_url="https://localhost", headers={"Referer": "https://localhost/staff/login"})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_ticket_lookup_is_rate_limited(limited) -> None:
    client = limited.test_client()
    codes = [client.post("/tickets", data={"code": "GK0000000000", "password": "123456"}).status_code
             for _ in range(3)]
    assert codes[-1] == 429


def test_loopback_is_not_throttled_by_default(tmp_path) -> None:
    app = make_app(tmp_path, RATELIMIT_ENABLED=True, RATE_LIMIT_ASK="2 per minute")
    client = app.test_client()
    assert all(client.post("/api/ask", json={"question": "你好"}).status_code == 200 for _ in range(5))
    remote = [client.post("/api/ask", json={"question": "你好"}, environ_base={"REMOTE_ADDR": "203.0.113.7"}).status_code
              for _ in range(3)]
    assert remote == [200, 200, 429]


def test_proxied_requests_are_not_exempt_even_from_loopback(tmp_path) -> None:
    app = make_app(tmp_path, RATELIMIT_ENABLED=True, RATE_LIMIT_ASK="2 per minute")
    client = app.test_client()
    codes = [client.post("/api/ask", json={"question": "你好"}, headers={"X-Forwarded-For": "198.51.100.4"}).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]


def test_review_findings_are_4xx_not_500(app, client, auth) -> None:
    """Inputs a code review found to cause 500s: huge ids, odd digits, CR/LF in next=."""
    assert client.get("/reports/99999999999999999999").status_code == 404
    auth.login("rev-x", "reviewer")
    assert client.get("/staff/applications/table?year=%C2%B2").status_code in (200, 400)
    assert client.get("/staff/tickets/99999999999999999999").status_code == 404
    auth.logout()
    auth.create("nx", "curator")
    from conftest import csrf_token

    token = csrf_token(client, "/staff/login")
    response = client.post("/staff/login?next=/staff%0d%0aX-Evil:%201",
                           data={"username": "nx", "password": auth.PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and "\n" not in response.headers["Location"]


def test_parallel_wrong_passwords_still_lock_the_account(app, auth) -> None:
    import threading

    from service.accounts import AccountError, authenticate
    from service.storage import connect

    auth.create("target", "reviewer")

    def guess() -> None:
        db = connect(app.config["DATABASE"])
        try:
            authenticate(db, "target", "wrong-password-9")
        except AccountError:
            pass
        db.close()

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    row = connect(app.config["DATABASE"]).execute("select locked_until from users where username = 'target'").fetchone()
    assert row[0] is not None
