"""Feedback: 有用 / 没用 on every answer (POST /api/feedback), the way from 没用 to a ticket
(POST /api/ask with escalate), and the citizen's rating of a ticket's reply."""
from __future__ import annotations

import re

import pytest

from conftest import csrf_token, make_app
from service import feedback, tickets
from service.storage import connect

ANSWERED = "申请政府信息公开多久答复？"
UNANSWERABLE = "贵单位食堂今年的菜谱能公开吗？"


def db_of(app):  # type: ignore[no-untyped-def]
    return connect(app.config["DATABASE"])


def ask(client, question: str = ANSWERED, session: str = "fb-1", **extra) -> dict:  # type: ignore[no-untyped-def]
    response = client.post("/api/ask", json={"question": question, "session": session, **extra})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def give(client, ask_id, helpful=True, ip: str = "10.0.0.1", **extra):  # type: ignore[no-untyped-def]
    return client.post("/api/feedback", json={"ask_id": ask_id, "helpful": helpful, **extra},
                       environ_base={"REMOTE_ADDR": ip})


# -- the ask_id -------------------------------------------------------------------------

@pytest.mark.parametrize(("question", "status"), [(ANSWERED, "answered"), ("申请", "clarify"),
                                                  (UNANSWERABLE, "escalated")])
def test_every_reply_carries_its_own_ask_id_kept_with_the_question(app, client, question: str, status: str) -> None:
    first, second = ask(client, question), ask(client, question, session="fb-2")
    assert first["status"] == status
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{16}", first["ask_id"])
    assert first["ask_id"] != second["ask_id"]
    token = first["ask_id"].split(".")[0]
    row = db_of(app).execute("select question, status from asks where ask_token = ?", [token]).fetchone()
    assert tuple(row) == (question, status)


# -- one feedback per answer ----------------------------------------------------------------

def test_an_answer_takes_one_feedback_and_refuses_a_second(app, client) -> None:
    ask_id = ask(client)["ask_id"]
    response = give(client, ask_id, False, reason_code="outdated", reason="我的电话是13812345678，条例已经修订了")
    assert response.status_code == 200
    assert response.get_json() == {"ok": True, "message": "感谢您的反馈，我们会据此改进答复。"}
    for helpful in (False, True):  # the same answer again, either way
        again = give(client, ask_id, helpful)
        assert again.status_code == 409 and again.get_json()["error"] == "您已经评价过这条回答，谢谢。"
    rows = list(db_of(app).query("select a.question, f.helpful, f.reason_code, f.reason, f.created "
                                 "from feedback f join asks a using (ask_token)"))
    assert len(rows) == 1 and rows[0]["created"]
    assert (rows[0]["question"], rows[0]["helpful"], rows[0]["reason_code"]) == (ANSWERED, 0, "outdated")
    assert rows[0]["reason"] == "我的电话是138****5678，条例已经修订了"  # personal numbers masked


def test_helpful_feedback_needs_no_reason(app, client) -> None:
    response = give(client, ask(client)["ask_id"], True)
    assert response.status_code == 200 and response.get_json()["message"] == "感谢您的反馈！"
    assert tuple(db_of(app).execute("select helpful, reason_code, reason from feedback").fetchone()) == (1, None, None)


def test_each_answer_of_a_conversation_takes_its_own_feedback(client) -> None:
    ids = [ask(client, q)["ask_id"] for q in (ANSWERED, ANSWERED, "申请要收费吗")]
    assert [give(client, i).status_code for i in ids] == [200, 200, 200]


def _resigned(ask_id: str, key: str) -> str:
    token = ask_id.split(".")[0]
    return f"{token}.{feedback._signature(token, key)}"


@pytest.mark.parametrize("forge", ["other key", "flipped signature", "no signature", "made up", "token of another"])
def test_an_id_this_service_did_not_issue_is_404(app, client, forge: str) -> None:
    real = ask(client)["ask_id"]
    token, signature = real.split(".")
    other = ask(client, session="fb-3")["ask_id"]
    forged = {
        "other key": _resigned(real, "not-the-service-key"),
        "flipped signature": f"{token}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
        "no signature": token,
        "made up": "x" * 39,
        "token of another": f"{other.split('.')[0]}.{signature}",
    }[forge]
    response = give(client, forged)
    assert response.status_code == 404 and response.get_json()["error"] == "找不到这条回答，无法评价。"
    assert db_of(app).execute("select count(*) from feedback").fetchone()[0] == 0
    assert give(client, real).status_code == 200  # the real one is still open


def test_an_id_issued_before_the_key_was_rotated_still_counts(tmp_path) -> None:
    old = make_app(tmp_path, SECRET_KEY="old-key")
    ask_id = ask(old.test_client())["ask_id"]
    rotated = make_app(tmp_path, SECRET_KEY="new-key", SECRET_KEY_FALLBACKS=["old-key"])
    assert give(rotated.test_client(), ask_id).status_code == 200
    forgotten = make_app(tmp_path, SECRET_KEY="new-key")
    assert give(forgotten.test_client(), ask_id).status_code == 404


@pytest.mark.parametrize(("payload", "message"), [
    ({"helpful": "yes"}, "是否有用"),
    ({"helpful": 1}, "是否有用"),
    ({"helpful": None}, "是否有用"),
    ({"helpful": "DROP"}, "是否有用"),
    ({"helpful": False, "reason": "太" * 201}, "200字以内"),
    ({"helpful": False, "reason": ["答非所问"]}, "文字"),
    ({"helpful": False, "reason_code": "boring"}, "答非所问、内容过时、看不懂、其他"),
    ({"helpful": False, "reason_code": {"code": "other"}}, "答非所问、内容过时、看不懂、其他"),
    ({"helpful": True, "reason_code": "off_topic"}, "无需选择原因"),
    ({"ask_id": None, "helpful": True}, "ask_id"),
    ({"ask_id": 42, "helpful": True}, "ask_id"),
    ({"ask_id": "", "helpful": True}, "ask_id"),
    ({"ask_id": "a" * 101, "helpful": True}, "ask_id"),
])
def test_bad_feedback_is_a_400_in_chinese(app, client, payload: dict, message: str) -> None:
    body = {"ask_id": ask(client)["ask_id"], **payload}
    if body["helpful"] == "DROP":
        del body["helpful"]
    response = client.post("/api/feedback", json=body)
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert db_of(app).execute("select count(*) from feedback").fetchone()[0] == 0


@pytest.mark.parametrize(("data", "content_type"), [
    ("{not json", "application/json"),
    ('["helpful", true]', "application/json"),
    ('"有用"', "application/json"),
    ("ask_id=x&helpful=true", "application/x-www-form-urlencoded"),
])
def test_feedback_that_is_not_a_json_object_is_a_400(client, data: str, content_type: str) -> None:
    response = client.post("/api/feedback", data=data, content_type=content_type)
    assert response.status_code == 400 and "JSON" in response.get_json()["error"]


def test_a_reason_exactly_200_characters_long_is_kept(app, client) -> None:
    assert give(client, ask(client)["ask_id"], False, reason="慢" * 200, reason_code=None).status_code == 200
    assert db_of(app).execute("select reason from feedback").fetchone()[0] == "慢" * 200


def test_feedback_is_rate_limited_with_a_chinese_429(tmp_path) -> None:
    app = make_app(tmp_path, RATELIMIT_ENABLED=True, RATE_LIMIT_EXEMPT_LOOPBACK=False, RATE_LIMIT_FEEDBACK="2 per minute")
    client = app.test_client()
    ids = [ask(client, session=f"rl-{i}")["ask_id"] for i in range(4)]
    codes = [give(client, i, ip="10.9.0.1").status_code for i in ids[:3]]
    assert codes == [200, 200, 429]
    refused = give(client, ids[2], ip="10.9.0.1")
    assert refused.status_code == 429 and "频繁" in refused.get_json()["error"]
    assert give(client, ids[3], ip="10.9.0.2").status_code == 200  # another address has its own allowance


def test_feedback_counts_before_the_question_log_is_written(tmp_path) -> None:
    """The log is buffered per worker: the answer's row is not in the database yet (and with
    several workers it may sit in another one's memory), yet its feedback is taken, once."""
    from service.tickets import ASK_LOG

    app = make_app(tmp_path, ASK_LOG_BATCH=50, ASK_LOG_MAX_DELAY=3600)
    client = app.test_client()
    db = db_of(app)
    try:
        ask_id = ask(client, session="batched")["ask_id"]
        token = ask_id.split(".")[0]
        assert db.execute("select count(*) from asks where session = 'batched'").fetchone()[0] == 0
        assert ASK_LOG.pending >= 1
        assert give(client, ask_id, False, reason_code="unclear").status_code == 200
        assert give(client, ask_id, True).status_code == 409
        assert ASK_LOG.pending >= 1  # feedback needed no write of the log
        ASK_LOG.flush(db)
        row = db.execute("select a.question, f.reason_code from asks a join feedback f using (ask_token) "
                         "where a.ask_token = ?", [token]).fetchone()
        assert tuple(row) == (ANSWERED, "unclear")
    finally:
        ASK_LOG.flush(db)


# -- from 没用 to a ticket --------------------------------------------------------------------

def test_asking_for_a_person_opens_a_ticket_for_an_answered_question(app, client) -> None:
    assert ask(client, session="hand")["status"] == "answered"
    body = ask(client, session="hand", escalate=True)
    assert body["status"] == "escalated" and tickets.display_code(body["ticket"]["code"]) in body["answer"]
    assert "已按您的要求转交工作人员" in body["answer"]
    assert re.fullmatch(r"\d{6}", body["ticket"]["password"])
    assert body["entry_id"] is None and body["source"] is None and body["ask_id"]
    row = db_of(app).execute("select question, session, status, candidates from tickets where code = ?",
                             [body["ticket"]["code"]]).fetchone()
    assert tuple(row[:3]) == (ANSWERED, "hand", "new")
    assert "faq:" in row[3]  # the reviewer sees what the desk would have answered
    logged = db_of(app).execute("select status, entry_id, ticket_id from asks where session = 'hand' order by id").fetchall()
    assert [r[0] for r in logged] == ["answered", "escalated"] and logged[1][1] is None and logged[1][2]
    # Asking again in the same conversation gets the same ticket, not a second one.
    again = ask(client, session="hand", escalate=True)
    assert again["ticket"]["code"] == body["ticket"]["code"] and again["ticket"]["reused"] is True
    # The citizen looks the ticket up with what they were given.
    token = csrf_token(client, "/tickets")
    page = client.post("/tickets", data={"code": body["ticket"]["code"], "password": body["ticket"]["password"],
                                         "csrf_token": token}).get_data(as_text=True)
    assert "已登记，等待工作人员处理" in page and ANSWERED in page


@pytest.mark.parametrize("question", ["谢谢", "转人工"])
def test_small_talk_is_never_made_a_ticket(app, client, question: str) -> None:
    body = ask(client, question, escalate=True)
    assert body["status"] == "answered" and body["ticket"] is None
    assert db_of(app).execute("select count(*) from tickets").fetchone()[0] == 0


@pytest.mark.parametrize("flag", ["true", 1, ["x"]])
def test_the_escalate_flag_must_be_a_boolean(client, flag) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/api/ask", json={"question": ANSWERED, "escalate": flag})
    assert response.status_code == 400 and "escalate" in response.get_json()["error"]


def test_asking_for_a_person_respects_the_ticket_limit(tmp_path) -> None:
    app = make_app(tmp_path, RATELIMIT_ENABLED=True, RATE_LIMIT_EXEMPT_LOOPBACK=False, RATE_LIMIT_TICKETS="1 per hour")
    client = app.test_client()
    first = ask(client, session="limit-1", escalate=True)
    assert first["status"] == "escalated" and first["ticket"]["code"]
    refused = ask(client, "申请要收费吗", session="limit-2", escalate=True)
    assert refused["status"] == "escalated" and refused["ticket"] is None and refused["ticket_refused"] is True
    assert db_of(app).execute("select count(*) from tickets").fetchone()[0] == 1


# -- rating a ticket's reply ------------------------------------------------------------------

def _escalated_ticket(app, client) -> tuple[dict, int]:  # type: ignore[no-untyped-def]
    ticket = ask(client, UNANSWERABLE)["ticket"]
    ticket_id = db_of(app).execute("select id from tickets where code = ?", [ticket["code"]]).fetchone()[0]
    return ticket, ticket_id


def _reply(app, ticket_id: int) -> None:  # type: ignore[no-untyped-def]
    db = db_of(app)
    user_id = db["users"].insert({"username": "rev", "password_hash": "x", "role": "reviewer"}).last_pk
    tickets.reply(db, ticket_id, {"id": user_id, "username": "rev"}, "请向当地住房保障部门咨询。")


def _rate(client, ticket: dict, rating: str | None, password: str | None = None, with_token: bool = True):  # type: ignore[no-untyped-def]
    data = {"code": ticket["code"], "password": password or ticket["password"]}
    if rating is not None:
        data["rating"] = rating
    if with_token:
        data["csrf_token"] = csrf_token(client, "/tickets")
    return client.post("/tickets/rate", data=data)


def _lookup(client, ticket: dict) -> str:  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/tickets")
    return client.post("/tickets", data={"code": ticket["code"], "password": ticket["password"],
                                         "csrf_token": token}).get_data(as_text=True)


def _stored(app, ticket_id: int) -> tuple:  # type: ignore[no-untyped-def]
    return tuple(db_of(app).execute("select satisfaction, satisfaction_at from tickets where id = ?",
                                    [ticket_id]).fetchone())


def test_a_reply_is_rated_once_from_the_lookup_page(app, client) -> None:
    ticket, ticket_id = _escalated_ticket(app, client)
    _reply(app, ticket_id)
    page = _lookup(client, ticket)
    assert "您对这次答复满意吗？" in page
    assert re.findall(r'name="rating" value="(\w+)"', page) == ["satisfied", "mostly", "unsatisfied"]
    assert f'name="password" value="{ticket["password"]}"' in page  # sent back with the rating

    response = _rate(client, ticket, "mostly")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert "感谢您的评价！" in page and "您的评价：<strong>基本满意</strong>" in page
    assert 'name="rating"' not in page
    rating, at = _stored(app, ticket_id)
    assert rating == "mostly" and at

    later = _rate(client, ticket, "unsatisfied")
    assert later.status_code == 409 and "您已评价过这次答复（基本满意），谢谢。" in later.get_data(as_text=True)
    assert _stored(app, ticket_id) == ("mostly", at)
    # The lookup page shows the rating from now on, without the form.
    page = _lookup(client, ticket)
    assert "您的评价：<strong>基本满意</strong>" in page and 'name="rating"' not in page


def test_a_ticket_without_a_reply_cannot_be_rated(app, client) -> None:
    ticket, ticket_id = _escalated_ticket(app, client)
    assert 'name="rating"' not in _lookup(client, ticket)
    response = _rate(client, ticket, "satisfied")
    assert response.status_code == 409 and "工作人员答复后才能评价。" in response.get_data(as_text=True)
    assert _stored(app, ticket_id) == (None, None)


@pytest.mark.parametrize(("case", "status", "message"), [
    ("wrong password", 403, "编号或查询密码不正确"),
    ("no rating", 400, "请选择“满意”、“基本满意”、“不满意”中的一项。"),
    ("bad rating", 400, "请选择“满意”、“基本满意”、“不满意”中的一项。"),
    ("no csrf token", 400, "刷新页面"),
])
def test_a_bad_rating_is_refused_and_nothing_stored(app, client, case: str, status: int, message: str) -> None:
    ticket, ticket_id = _escalated_ticket(app, client)
    _reply(app, ticket_id)
    wrong = "000000" if ticket["password"] != "000000" else "111111"
    response = {
        "wrong password": lambda: _rate(client, ticket, "satisfied", password=wrong),
        "no rating": lambda: _rate(client, ticket, None),
        "bad rating": lambda: _rate(client, ticket, "<b>great</b>"),
        "no csrf token": lambda: _rate(client, ticket, "satisfied", with_token=False),
    }[case]()
    page = response.get_data(as_text=True)
    assert response.status_code == status and message in page
    assert "<b>great" not in page
    assert _stored(app, ticket_id) == (None, None)


def test_rating_counts_wrong_passwords_like_the_lookup(app, client) -> None:
    ticket, ticket_id = _escalated_ticket(app, client)
    _reply(app, ticket_id)
    wrong = "000000" if ticket["password"] != "000000" else "111111"
    for _ in range(tickets.LOOKUP_MAX_FAILURES):
        assert _rate(client, ticket, "satisfied", password=wrong).status_code == 403
    assert _rate(client, ticket, "satisfied").status_code == 429
    assert _stored(app, ticket_id) == (None, None)


# -- the pure core ----------------------------------------------------------------------------

def test_the_core_signs_checks_and_stores_without_flask() -> None:
    import sqlite_utils

    from service.migrations import apply_migrations

    db = sqlite_utils.Database(memory=True)
    apply_migrations(db)
    token, ask_id = feedback.issue(["k1", "k0"])
    assert feedback.token_of(ask_id, ["k2", "k1"]) == token
    with pytest.raises(feedback.UnknownAnswer):
        feedback.token_of(ask_id, ["k0"])
    given = feedback.clean({"ask_id": ask_id, "helpful": False, "reason_code": "other",
                            "reason": "  写信到 zhang.san@example.com\x00 \u2028 "})
    assert given.reason == "写信到 z***@example.com"
    feedback.record(db, token, given)
    with pytest.raises(feedback.AlreadyGiven):
        feedback.record(db, token, given)
    assert feedback.clean({"ask_id": ask_id, "helpful": True, "reason": " \n "}).reason is None


def test_the_migration_keeps_the_questions_already_logged(tmp_path) -> None:
    from service.migrations import MIGRATIONS, apply_migrations

    db = connect(tmp_path / "old.db")
    db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    for name, fn in sorted(MIGRATIONS):
        if name < "0011":
            fn(db)
            db["_migrations"].insert({"name": name, "applied_at": "2026-01-01T00:00:00+00:00"})
    db.execute("insert into asks (created, question, status) values ('2026-01-01', '旧问题', 'answered')")
    assert apply_migrations(db)[0] == "0011_feedback"
    assert db.execute("select question, ask_token from asks").fetchall() == [("旧问题", None)]
    assert db.execute("select satisfaction from tickets").fetchall() == []
    assert "feedback" in db.table_names()


def test_reviewers_see_the_citizens_rating_on_the_ticket_page(app, client, auth) -> None:
    from service.feedback import rate_reply

    body = client.post("/api/ask", json={"question": UNANSWERABLE}).get_json()
    db = connect(app.config["DATABASE"])
    ticket_id = db.execute("select id from tickets where code = ?", [body["ticket"]["code"]]).fetchone()[0]
    db.execute("update tickets set status = 'answered', reply = '菜谱不属于政府信息。', "
               "replied_at = '2026-11-01T08:00:00+00:00' where id = ?", [ticket_id])
    auth.login("rater-rev", "reviewer")
    assert "群众评价：尚未评价" in client.get(f"/staff/tickets/{ticket_id}").get_data(as_text=True)
    rate_reply(db, ticket_id, "mostly")
    assert "群众评价：基本满意" in client.get(f"/staff/tickets/{ticket_id}").get_data(as_text=True)
