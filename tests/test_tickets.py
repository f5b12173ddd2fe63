"""The citizens' side of tickets: code and query password, lookup, throttling, contact details."""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone

import pytest
from service.tickets import password_matches

from conftest import csrf_token
from service import tickets
from service.storage import connect

UNANSWERABLE = "贵单位食堂今年的菜谱能公开吗？"


def escalate(client, question: str = UNANSWERABLE, session: str = "citizen-1") -> dict:  # type: ignore[no-untyped-def]
    """Ask a question the desk cannot answer; return the ticket object of the reply."""
    body = client.post("/api/ask", json={"question": question, "session": session}).get_json()
    assert body["status"] == "escalated", body
    return body["ticket"]


def lookup(client, code: str, password: str, ip: str = "10.0.0.1"):  # type: ignore[no-untyped-def]
    """Submit the lookup form as a browser would, from address ``ip``."""
    token = csrf_token(client, "/tickets")
    return client.post("/tickets", data={"code": code, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": ip})


def db_of(app):  # type: ignore[no-untyped-def]
    return connect(app.config["DATABASE"])


def test_escalation_returns_code_and_password_stored_only_as_hash(app, client) -> None:
    ticket = escalate(client)
    assert re.fullmatch(r"GK[0-9A-Z]{10}", ticket["code"])
    assert re.fullmatch(r"\d{6}", ticket["password"])
    row = next(db_of(app).query("select * from tickets where code = ?", [ticket["code"]]))
    # A keyed hash: it matches with the service's secret key, and not without it.
    assert password_matches(row["password_hash"], ticket["code"], ticket["password"], app.config["SECRET_KEY"])
    assert not password_matches(row["password_hash"], ticket["code"], ticket["password"], "another-key")
    assert not password_matches(row["password_hash"], ticket["code"], "000000" if ticket["password"] != "000000"
                                else "111111", app.config["SECRET_KEY"])
    assert ticket["password"] not in [str(v) for v in row.values()]
    assert next(db_of(app).query("select action from ticket_events where ticket_id = ?", [row["id"]]))["action"] == "open"


def test_same_question_in_same_session_reuses_ticket_and_keeps_the_first_password(app, client) -> None:
    first = escalate(client)
    again = client.post("/api/ask", json={"question": UNANSWERABLE, "session": "citizen-1"}).get_json()
    assert again["ticket"]["code"] == first["code"]
    assert again["ticket"]["reused"] is True and "password" not in again["ticket"]
    assert "此前获得的查询密码" in again["ticket"]["note"]
    assert db_of(app).execute("select asked_count from tickets where code = ?", [first["code"]]).fetchone()[0] == 2
    assert lookup(client, first["code"], first["password"]).status_code == 200
    # Another session asking the same question gets its own ticket and password.
    other = escalate(client, session="citizen-2")
    assert other["code"] != first["code"] and other["password"]


def test_lookup_shows_status_question_and_escaped_reply(app, client) -> None:
    ticket = escalate(client)
    page = lookup(client, ticket["code"].lower(), ticket["password"]).get_data(as_text=True)
    assert "已登记，等待工作人员处理" in page and UNANSWERABLE in page
    assert "工作人员答复后" in page
    db = db_of(app)
    user_id = db["users"].insert({"username": "rev", "password_hash": "x", "role": "reviewer"}).last_pk
    ticket_id = db.execute("select id from tickets where code = ?", [ticket["code"]]).fetchone()[0]
    tickets.reply(db, ticket_id, {"id": user_id, "username": "rev"}, "请向当地住房保障部门咨询。<script>x</script>")
    response = lookup(client, ticket["code"], ticket["password"])
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert "已答复" in page and "请向当地住房保障部门咨询。&lt;script&gt;x&lt;/script&gt;" in page
    assert "<script>x" not in page and "rev" not in page


@pytest.mark.parametrize("wrong", ["password", "code", "malformed", "empty"])
def test_wrong_code_or_password_reveals_nothing(client, wrong: str) -> None:
    ticket = escalate(client)
    code, password = {
        "password": (ticket["code"], str((int(ticket["password"]) + 1) % 1_000_000).zfill(6)),
        "code": ("GK0000000000", ticket["password"]),
        "malformed": ("<b>not a code</b>", ticket["password"]),
        "empty": (ticket["code"], ""),
    }[wrong]
    response = lookup(client, code, password)
    page = response.get_data(as_text=True)
    assert response.status_code == 403
    assert "编号或查询密码不正确" in page
    assert UNANSWERABLE not in page and "办理状态" not in page and "<b>not" not in page


def test_lookup_form_needs_its_csrf_token(client) -> None:
    ticket = escalate(client)
    response = client.post("/tickets", data={"code": ticket["code"], "password": ticket["password"]})
    assert response.status_code == 400 and "刷新页面" in response.get_data(as_text=True)


def test_lookup_under_attack_stops_the_guessers_not_the_owner(client) -> None:
    ticket = escalate(client)
    wrong = "000000" if ticket["password"] != "000000" else "111111"
    for i in range(tickets.LOOKUP_MAX_FAILURES):
        assert lookup(client, ticket["code"], wrong, ip=f"10.1.0.{i}").status_code == 403
    # The code is under attack: an address that failed on it waits, even with the right password...
    response = lookup(client, ticket["code"], ticket["password"], ip="10.1.0.0")
    page = response.get_data(as_text=True)
    assert response.status_code == 429 and "查询失败次数过多" in page and "分钟后再试" in page
    assert int(response.headers["Retry-After"]) > 0
    assert UNANSWERABLE not in page
    # ...and a new address gets one guess, then waits too.
    assert lookup(client, ticket["code"], wrong, ip="10.1.9.9").status_code == 403
    assert lookup(client, ticket["code"], wrong, ip="10.1.9.9").status_code == 429
    # The owner, from an address that never failed, is let in.
    assert lookup(client, ticket["code"], ticket["password"], ip="10.2.0.1").status_code == 200


def test_lookup_is_throttled_per_client_address(client) -> None:
    ticket = escalate(client)
    for i in range(tickets.LOOKUP_MAX_FAILURES):
        assert lookup(client, f"GK00000000{i:02d}", "123456", ip="10.3.0.1").status_code == 403
    assert lookup(client, ticket["code"], ticket["password"], ip="10.3.0.1").status_code == 429
    assert lookup(client, ticket["code"], ticket["password"], ip="10.3.0.2").status_code == 200


def test_a_successful_lookup_clears_the_tickets_count(client) -> None:
    ticket = escalate(client)
    wrong = "000000" if ticket["password"] != "000000" else "111111"
    for round_ in range(2):
        for i in range(tickets.LOOKUP_MAX_FAILURES - 1):
            assert lookup(client, ticket["code"], wrong, ip=f"10.4.{round_}.{i}").status_code == 403
        assert lookup(client, ticket["code"], ticket["password"], ip=f"10.5.{round_}.1").status_code == 200


T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("failures", "expected_wait"), [
    # (minutes after T0 of each failure, minutes to wait after the last one)
    ([0, 1, 2, 3], 0),  # four failures: not yet
    ([0, 1, 2, 3, 4], 15),  # the fifth within 15 minutes locks for 15 minutes
    ([0, 1, 2, 3, 20], 0),  # the window ran out before the fifth: counting starts again
    ([0, 1, 2, 3, 4, 20], 30),  # a failure after the lock ran out locks twice as long
    ([0, 1, 2, 3, 4, 20, 51], 60),  # and again
])
def test_lookup_lock_grows_with_each_failure_after_a_lock(failures: list[int], expected_wait: int) -> None:
    import sqlite_utils

    from service.migrations import apply_migrations

    db = sqlite_utils.Database(memory=True)
    apply_migrations(db)
    keys = ["code:GK0000000000"]
    for minute in failures:
        at = T0 + timedelta(minutes=minute)
        assert tickets.lookup_wait(db, keys, at) == 0, minute  # each of these tries was allowed
        tickets.record_lookup_failure(db, keys, at)
    assert tickets.lookup_wait(db, keys, at) == expected_wait * 60


def contact(client, code: str, password: str, ip: str = "10.0.0.1", **fields):  # type: ignore[no-untyped-def]
    return client.post(f"/api/tickets/{code}/contact", json={"password": password, **fields},
                       environ_base={"REMOTE_ADDR": ip})


@pytest.mark.parametrize(("fields", "stored"), [
    ({"name": "张三", "phone": "13800001234"}, ("张三", "13800001234", None)),
    ({"phone": "+86 138 0000 1234"}, (None, "13800001234", None)),
    ({"phone": "010-12345678"}, (None, "010-12345678", None)),
    ({"phone": "(0755)1234567-123"}, (None, "0755-1234567-123", None)),
    ({"name": "  李四 ", "email": "li.si@example.cn"}, ("李四", None, "li.si@example.cn")),
    ({"phone": "１３９１２３４５６７８", "email": "a+b@mail.example.com"}, (None, "13912345678", "a+b@mail.example.com")),
])
def test_contact_details_are_validated_and_stored(app, client, fields: dict, stored: tuple) -> None:
    ticket = escalate(client)
    response = contact(client, ticket["code"], ticket["password"], **fields)
    assert response.status_code == 200 and "已收到" in response.get_json()["message"]
    row = db_of(app).execute("select contact_name, contact_phone, contact_email from tickets where code = ?",
                             [ticket["code"]]).fetchone()
    assert tuple(row) == stored


@pytest.mark.parametrize(("fields", "message"), [
    ({"phone": "12345"}, "电话号码格式不正确"),
    ({"phone": "23800001234"}, "电话号码格式不正确"),
    ({"phone": "138000012345"}, "电话号码格式不正确"),
    ({"phone": "12800001234"}, "电话号码格式不正确"),
    ({"phone": "12345678"}, "电话号码格式不正确"),  # a landline needs its area code
    ({"email": "zhang@"}, "电子邮箱格式不正确"),
    ({"email": "zhang.example.cn"}, "电子邮箱格式不正确"),
    ({"email": "zhang@example"}, "电子邮箱格式不正确"),
    ({"name": "张" * 41, "phone": "13800001234"}, "姓名不能超过40个字"),
    ({"name": "张三"}, "请至少填写"),
    ({"phone": 13800001234}, "联系方式格式不正确"),
])
def test_bad_contact_details_get_a_400_in_chinese(app, client, fields: dict, message: str) -> None:
    ticket = escalate(client)
    response = contact(client, ticket["code"], ticket["password"], **fields)
    assert response.status_code == 400 and message in response.get_json()["error"]
    row = db_of(app).execute("select contact_name, contact_phone, contact_email from tickets where code = ?",
                             [ticket["code"]]).fetchone()
    assert tuple(row) == (None, None, None)


def test_contact_needs_the_query_password(app, client) -> None:
    ticket = escalate(client)
    wrong = "000000" if ticket["password"] != "000000" else "111111"
    response = contact(client, ticket["code"], wrong, phone="13800001234")
    assert response.status_code == 403 and response.get_json()["error"] == "工单编号或查询密码不正确。"
    assert contact(client, "GK0000000000", ticket["password"], phone="13800001234").status_code == 403
    assert client.post(f"/api/tickets/{ticket['code']}/contact", data="nonsense").status_code == 400
    assert db_of(app).execute("select contact_phone from tickets").fetchone()[0] is None


def test_contact_is_throttled_like_the_lookup(client) -> None:
    ticket = escalate(client)
    wrong = "000000" if ticket["password"] != "000000" else "111111"
    for i in range(tickets.LOOKUP_MAX_FAILURES):
        assert contact(client, ticket["code"], wrong, ip=f"10.6.0.{i}", phone="13800001234").status_code == 403
    response = contact(client, ticket["code"], ticket["password"], ip="10.6.0.1", phone="13800001234")
    assert response.status_code == 429 and "查询失败次数过多" in response.get_json()["error"]
    assert contact(client, ticket["code"], ticket["password"], ip="10.7.0.1", phone="13800001234").status_code == 200


def test_contact_on_a_waiting_ticket_sends_it_back_to_the_reviewers(app, client) -> None:
    ticket = escalate(client)
    db = db_of(app)
    db.execute("update tickets set status = 'waiting' where code = ?", [ticket["code"]])
    assert contact(client, ticket["code"], ticket["password"], phone="13800001234").status_code == 200
    assert db.execute("select status from tickets where code = ?", [ticket["code"]]).fetchone()[0] == "in_progress"


def test_contact_details_never_reach_public_pages_history_audit_or_logs(app, client, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    ticket = escalate(client)
    secret = {"name": "欧阳秘密", "phone": "13912345678", "email": "private.person@example.cn"}
    assert contact(client, ticket["code"], ticket["password"], **secret).status_code == 200
    # A rejected submission is not logged either.
    assert contact(client, ticket["code"], ticket["password"], name=secret["name"], phone="139123").status_code == 400
    page = lookup(client, ticket["code"], ticket["password"]).get_data(as_text=True)
    escalate(client, session="citizen-3")
    db = db_of(app)
    stored = " ".join(str(v) for r in db.query("select * from ticket_events") for v in r.values())
    stored += " ".join(str(v) for r in db.query("select * from audit_log") for v in r.values())
    stored += " ".join(str(v) for r in db.query("select * from asks") for v in r.values())
    for value in secret.values():
        assert value not in page
        assert value not in caplog.text
        assert value not in stored
    assert db.execute("select contact_phone from tickets where code = ?", [ticket["code"]]).fetchone()[0] == secret["phone"]


@pytest.mark.parametrize(("phone", "masked"), [
    ("13800000000", "138****0000"), ("010-12345678", "010-****5678"), ("", ""), (None, ""),
])
def test_phone_masking(phone, masked: str) -> None:  # type: ignore[no-untyped-def]
    assert tickets.mask_phone(phone) == masked


def test_lookup_page_has_no_inline_script_or_style(client) -> None:
    ticket = escalate(client)
    for page in (client.get("/tickets?code=" + ticket["code"]).get_data(as_text=True),
                 lookup(client, ticket["code"], ticket["password"]).get_data(as_text=True)):
        assert "style=" not in page and "<style" not in page
        assert not re.search(r"<script(?![^>]*\bsrc=)", page) and " on" + "click=" not in page
    # A code typed in lower case comes back in the form in the grouped form people read out.
    grouped = tickets.display_code(ticket["code"])
    assert f'value="{grouped}"' in client.get("/tickets?code=" + ticket["code"].lower()).get_data(as_text=True)


def test_a_closed_ticket_is_not_reused(app, client) -> None:
    first = escalate(client)
    db_of(app).execute("update tickets set status = 'closed' where code = ?", [first["code"]])
    second = escalate(client)
    assert second["code"] != first["code"] and re.fullmatch(r"\d{6}", second["password"])


def test_the_lookup_throttle_holds_however_many_addresses_fail(client) -> None:
    """Each new address adds one failure to the code; the lock's growth is capped, so the
    count never overflows and stops being kept (it once turned into a 404 after 42)."""
    ticket = escalate(client)
    wrong = "000000" if ticket["password"] != "000000" else "111111"
    for i in range(60):
        status = lookup(client, ticket["code"], wrong, ip=f"10.20.{i // 200}.{i % 200}").status_code
        assert status == 403, (i, status)
    assert lookup(client, ticket["code"], wrong, ip="10.20.0.3").status_code == 429
    assert lookup(client, ticket["code"], ticket["password"], ip="10.30.0.1").status_code == 200


def _open(db, question: str, session: str) -> int:  # type: ignore[no-untyped-def]
    return tickets.open_ticket(db, question=question, normalised=question, session=session, candidates=[])["id"]


def test_the_queue_merges_open_questions_and_lists_one_reviewers_tickets(app) -> None:
    db = db_of(app)
    same = [_open(db, "廉租房轮候多久", f"s{i}") for i in range(3)]
    other = _open(db, "居住证怎么办", "s9")
    application = _open(db, "廉租房轮候多久", "s10")
    db.execute("update tickets set kind = 'application' where id = ?", [application])
    rows, total = tickets.queue(db, merged=True)
    assert total == 3 and sorted(r["id"] for r in rows) == sorted([same[0], other, application])
    assert next(r for r in rows if r["id"] == same[0])["open_count"] == 4
    assert tickets.queue(db)[1] == 5  # unmerged: every ticket
    tickets.reply(db, same[0], {"id": 1, "username": "r1"}, "答复", whole_group=True)
    # The whole group is answered, the application (its own clock) is not.
    assert {r[0] for r in db.execute("select status from tickets where id in (?, ?, ?)", same)} == {"answered"}
    assert db.execute("select status from tickets where id = ?", [application]).fetchone()[0] == "new"
    rows, total = tickets.queue(db, merged=True)
    assert total == 2 and {r["id"] for r in rows} == {other, application}
    db.execute("update tickets set assigned_to = 7 where id = ?", [other])
    rows, total = tickets.queue(db, assignee=7)
    assert total == 1 and [r["id"] for r in rows] == [other]
    assert tickets.queue(db, assignee=8) == ([], 0)
    assert tickets.queue(db, status="all", assignee=7, merged=True)[1] == 1


@pytest.mark.parametrize(("zone", "shown"), [
    (None, "2024-05-01 16:03"), ("Asia/Shanghai", "2024-05-01 16:03"), ("UTC", "2024-05-01 08:03"),
    ("America/New_York", "2024-05-01 04:03"), ("not a zone", "2024-05-01 16:03"), ("", "2024-05-01 16:03"),
])
def test_display_time_in_a_zone(zone, shown: str) -> None:
    assert tickets.display_time("2024-05-01T08:03:00+00:00", zone) == shown
    assert tickets.display_time("2024-05-01T08:03:00", zone) == shown  # naive: stored UTC


def test_the_configured_zone_is_the_default_of_every_list(tmp_path, monkeypatch) -> None:
    from service import create_app

    monkeypatch.setattr(tickets, "_default_zone", [tickets.BEIJING])
    create_app({"TESTING": True, "DATABASE": str(tmp_path / "utc.db"), "TIME_ZONE": "UTC"})
    assert tickets.display_time("2024-05-01T08:03:00+00:00") == "2024-05-01 08:03"  # e.g. the analytics export
    create_app({"TESTING": True, "DATABASE": str(tmp_path / "default.db")})
    assert tickets.display_time("2024-05-01T08:03:00+00:00") == "2024-05-01 16:03"


def test_the_merged_count_agrees_with_the_rows(app) -> None:
    import random

    db = db_of(app)
    rng = random.Random(12)
    for i in range(120):
        tid = _open(db, f"问题{rng.randrange(15)}", f"r{i}")
        kind = rng.choice([None, None, None, "inquiry", "application"])
        status = rng.choice(["new", "in_progress", "waiting", "answered", "closed"])
        db.execute("update tickets set kind = ?, status = ? where id = ?", [kind, status, tid])
    q = tickets._Queue(db, "open", "all", 1, None, True)
    assert q.count() == q._count(q.source, "all")
    rows, total = tickets.queue(db, merged=True, per_page=1000)
    assert total == len(rows) == q.count()
