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


def test_ask_counts_show_in_headers_and_a_refusal_says_when_to_retry(limited) -> None:
    client = limited.test_client()
    first = client.post("/api/ask", json={"question": "你好"})
    second = client.post("/api/ask", json={"question": "你好"})
    assert first.headers["X-RateLimit-Limit"] == "3"
    assert [first.headers["X-RateLimit-Remaining"], second.headers["X-RateLimit-Remaining"]] == ["2", "1"]
    assert int(second.headers["X-RateLimit-Reset"]) >= int(first.headers["X-RateLimit-Reset"]) > 0
    client.post("/api/ask", json={"question": "你好"})
    refused = client.post("/api/ask", json={"question": "你好"})
    assert refused.status_code == 429 and refused.is_json
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Limit"] == "3" and refused.headers["X-RateLimit-Remaining"] == "0"
    # A malformed ask is counted too (a flood of them costs the same), and still told what is wrong.
    other = {"REMOTE_ADDR": "10.0.0.7"}
    bad = client.post("/api/ask", data="不是JSON", content_type="application/json", environ_base=other)
    assert bad.status_code == 400 and bad.headers["X-RateLimit-Remaining"] == "2"


@pytest.mark.parametrize("setting", ["", "120/minut"])
def test_a_limit_setting_that_cannot_be_read_does_not_turn_questions_away(tmp_path, setting: str) -> None:
    app = make_app(tmp_path, RATELIMIT_ENABLED=True, RATE_LIMIT_EXEMPT_LOOPBACK=False, RATE_LIMIT_ASK=setting)
    client = app.test_client()
    assert [client.post("/api/ask", json={"question": "你好"}).status_code for _ in range(3)] == [200, 200, 200]


@pytest.mark.parametrize("lane_on", [True, False])
def test_a_ticket_limit_that_cannot_be_read_still_opens_tickets(tmp_path, lane_on: bool, caplog) -> None:
    from service import security

    security._limits_of.cache_clear()  # the setting is read (and logged) once per process
    app = make_app(tmp_path, ASK_LANE=lane_on, RATELIMIT_ENABLED=True, RATE_LIMIT_EXEMPT_LOOPBACK=False,
                   RATE_LIMIT_TICKETS="3 per fortnight")
    client = app.test_client()
    for _ in range(2):
        reply = client.post("/api/ask", json={"question": "你们单位食堂几点开饭？"})
        assert reply.status_code == 200 and reply.get_json()["ticket"]["code"]
    assert any("3 per fortnight" in r.getMessage() for r in caplog.records)


def test_several_ticket_limits_each_count(tmp_path) -> None:
    app = make_app(tmp_path, RATELIMIT_ENABLED=True, RATE_LIMIT_EXEMPT_LOOPBACK=False,
                   RATE_LIMIT_TICKETS="5 per hour;2 per day")
    client = app.test_client()
    replies = [client.post("/api/ask", json={"question": q}).get_json()
               for q in ("你们单位食堂几点开饭？", "局长办公室在几楼", "统计局明年招聘计划是什么")]
    assert [bool(r["ticket"]) for r in replies] == [True, True, False] and replies[2]["ticket_refused"]


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


def test_parallel_wrong_passwords_lock_the_address_not_the_owner(app, auth) -> None:
    import threading

    from service.accounts import AccountError, authenticate, sign_in_refused
    from service.storage import connect

    auth.create("target", "reviewer")

    def guess() -> None:
        db = connect(app.config["DATABASE"])
        try:
            authenticate(db, "target", "wrong-password-9", "203.0.113.9")
        except AccountError:
            pass
        db.close()

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    db = connect(app.config["DATABASE"])
    assert db.execute("select failures from login_failures where key = 'pair:target|203.0.113.9'").fetchone()[0] == 12
    assert sign_in_refused(db, "target", "203.0.113.9")
    with pytest.raises(AccountError):  # the right password from the attacker's address: refused
        authenticate(db, "target", auth.PASSWORD, "203.0.113.9")
    # The owner, elsewhere, signs in as usual.
    assert authenticate(db, "target", auth.PASSWORD, "198.51.100.7")["username"] == "target"


def test_an_attack_from_many_addresses_leaves_the_owner_one_clean_try(app, auth) -> None:
    from service.accounts import ACCOUNT_ALERT, AccountError, authenticate
    from service.storage import connect

    auth.create("boss", "admin")
    db = connect(app.config["DATABASE"])
    for i in range(ACCOUNT_ALERT):
        with pytest.raises(AccountError):
            authenticate(db, "boss", f"guess-{i}-x", f"10.0.{i // 200}.{i % 200}")
    # Under attack: an address that already failed may not try again, even rightly...
    with pytest.raises(AccountError):
        authenticate(db, "boss", auth.PASSWORD, "10.0.0.3")
    # ...but an address that has not failed on this account (the owner's) still gets in.
    assert authenticate(db, "boss", auth.PASSWORD, "192.0.2.44")["role"] == "admin"


def test_every_failed_sign_in_costs_the_same(app, auth) -> None:
    """Unknown, disabled, locked and wrong-password accounts all pay one password check."""
    import time

    from service.accounts import AccountError, authenticate
    from service.storage import connect

    auth.create("known", "curator")
    auth.create("gone", "curator")
    db = connect(app.config["DATABASE"])
    db.execute("update users set active = 0 where username = 'gone'")
    for _ in range(6):  # lock the pair 'known' from this address
        with pytest.raises(AccountError):
            authenticate(db, "known", "wrong-password-1", "10.9.9.9")

    def cost(name: str, address: str) -> float:
        best = 1e9
        for _ in range(3):
            start = time.perf_counter()
            with pytest.raises(AccountError):
                authenticate(db, name, "wrong-password-2", address)
            best = min(best, time.perf_counter() - start)
        return best

    times = {"unknown": cost("nobody-here", "10.1.1.1"), "disabled": cost("gone", "10.1.1.2"),
             "locked": cost("known", "10.9.9.9"), "wrong": cost("known", "10.1.1.3")}
    # A password check takes tens of milliseconds; skipping it would take well under one.
    assert min(times.values()) > 0.2 * max(times.values()), times


def test_logout_ends_the_session_on_the_server(client, auth) -> None:
    auth.login("copier", "reviewer")
    stolen = client.get_cookie("session").value
    auth.logout()
    client.set_cookie("session", stolen)  # a copy of the cookie taken before logout
    assert client.get("/staff/").status_code == 302  # back to the login page


def _login_other(app, username: str, password: str):  # type: ignore[no-untyped-def]
    import re

    other = app.test_client()
    page = other.get("/staff/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert other.post("/staff/login", data={"username": username, "password": password,
                                            "csrf_token": token}).status_code == 302
    return other


def test_admin_sees_and_ends_sessions_and_changes_end_them(app, client, auth) -> None:
    from conftest import csrf_token as token_of
    from service.storage import connect

    auth.create("worker", "reviewer")
    other = _login_other(app, "worker", auth.PASSWORD)
    assert other.get("/staff/").status_code == 200

    auth.login("chief", "admin")
    db = connect(app.config["DATABASE"])
    worker_id = db.execute("select id from users where username = 'worker'").fetchone()[0]
    listing = client.get(f"/staff/admin/sessions?user={worker_id}").get_data(as_text=True)
    assert "worker" in listing and "结束" in listing
    sid = db.execute("select id from staff_sessions where user_id = ? and ended is null", [worker_id]).fetchone()[0]
    response = client.post("/staff/admin/sessions/end",
                           data={"session": sid, "csrf_token": token_of(client, "/staff/admin/sessions")})
    assert response.status_code == 302
    assert other.get("/staff/").status_code == 302  # ended at once

    # A role change ends the account's sessions too.
    other = _login_other(app, "worker", auth.PASSWORD)
    assert other.get("/staff/").status_code == 200
    client.post(f"/staff/admin/users/{worker_id}",
                data={"role": "curator", "active": "1", "csrf_token": token_of(client, "/staff/admin/users")})
    assert other.get("/staff/").status_code == 302
    assert "end_sessions" in [r[0] for r in db.execute("select action from audit_log")]


def test_unlock_user_command(app, auth) -> None:
    from service.accounts import AccountError, authenticate, sign_in_refused
    from service.storage import connect

    auth.create("locked1", "curator")
    db = connect(app.config["DATABASE"])
    for _ in range(5):
        with pytest.raises(AccountError):
            authenticate(db, "locked1", "wrong-password-3", "10.2.2.2")
    assert sign_in_refused(db, "locked1", "10.2.2.2")
    result = app.test_cli_runner().invoke(args=["unlock-user", "locked1"])
    assert result.exit_code == 0 and "已解除" in result.output
    assert not sign_in_refused(db, "locked1", "10.2.2.2")
    assert app.test_cli_runner().invoke(args=["unlock-user", "nobody9"]).exit_code != 0



def test_a_flood_of_escalations_from_one_address_stops_opening_tickets(tmp_path) -> None:
    from service.storage import connect

    app = make_app(tmp_path, RATELIMIT_ENABLED=True, RATE_LIMIT_EXEMPT_LOOPBACK=False, RATE_LIMIT_TICKETS="2 per hour")
    client = app.test_client()
    questions = ["请问贵单位食堂今年的菜谱能公开吗", "贵单位大楼的开放日是哪天", "第3号食堂的菜谱能公开吗"]
    replies = [client.post("/api/ask", json={"question": q}).get_json() for q in questions]
    assert [r["status"] for r in replies] == ["escalated"] * 3
    assert replies[0]["ticket"] and replies[1]["ticket"]
    assert replies[2]["ticket"] is None and replies[2]["ticket_refused"] and "较多" in replies[2]["answer"]
    assert connect(app.config["DATABASE"]).execute("select count(*) from tickets").fetchone()[0] == 2
    # Another address still gets its ticket.
    other = client.post("/api/ask", json={"question": questions[2]}, environ_base={"REMOTE_ADDR": "10.8.8.8"})
    assert other.get_json()["ticket"]


def test_an_ipv6_network_counts_as_one_client(app, auth) -> None:
    from service.accounts import AccountError, authenticate, sign_in_refused
    from service.storage import connect

    auth.create("v6owner", "curator")
    db = connect(app.config["DATABASE"])
    for i in range(5):  # five addresses of one /64 are one client
        with pytest.raises(AccountError):
            authenticate(db, "v6owner", "wrong-password-6", f"2001:db8:1:2::{i + 1:x}")
    assert sign_in_refused(db, "v6owner", "2001:db8:1:2::ffff")
    assert authenticate(db, "v6owner", auth.PASSWORD, "2001:db8:1:3::1")["username"] == "v6owner"


def test_spraying_from_the_owners_address_does_not_lock_the_owner(app, auth) -> None:
    from service.accounts import AccountError, authenticate, sign_in_refused, start_session, unlock
    from service.storage import connect

    auth.create("office1", "curator")
    auth.create("newcomer", "curator")
    db = connect(app.config["DATABASE"])
    owner = authenticate(db, "office1", auth.PASSWORD, "198.51.100.20")
    start_session(db, owner["id"], "198.51.100.20", "test")  # signed in from the office before
    for i in range(25):  # someone behind the same NAT sprays names
        with pytest.raises(AccountError):
            authenticate(db, f"nobody{i}", "spray-pass-1", "198.51.100.20")
    assert not sign_in_refused(db, "office1", "198.51.100.20")  # a known address still may try
    assert sign_in_refused(db, "newcomer", "198.51.100.20")  # an account never seen there may not
    unlock(db, "newcomer", "198.51.100.20")
    assert not sign_in_refused(db, "newcomer", "198.51.100.20")


def test_rotating_the_key_ends_every_staff_session(app, client, auth) -> None:
    auth.login("rot1", "reviewer")
    assert client.get("/staff/").status_code == 200
    result = app.test_cli_runner().invoke(args=["rotate-secret"])
    assert result.exit_code == 0 and "已结束 1 个" in result.output, result.output
    assert client.get("/staff/").status_code == 302
