"""POST /api/ask: the contract, bad input, tickets and the question log."""
from __future__ import annotations

import json

import pytest

from service.tickets import display_code


def test_answer_has_the_contract_fields(client) -> None:
    body = client.post("/api/ask", json={"question": "申请政府信息公开多久答复？", "session": "s1"}).get_json()
    assert set(body) >= {"status", "kind", "answer", "source", "confidence", "entry_id", "suggestions", "ticket"}
    assert body["status"] == "answered" and body["kind"] == "faq"
    assert "20个工作日" in body["answer"]
    assert "第三十三条" in body["source"]
    assert 0 <= body["confidence"] <= 1
    assert isinstance(body["entry_id"], int)
    assert body["ticket"] is None


@pytest.mark.parametrize(("payload", "message"), [
    ({"question": ""}, "请输入"),
    ({"question": "   \n\t "}, "请输入"),
    ({"question": None}, "请输入"),
    ({}, "请输入"),
    ({"question": 42}, "文字"),
    ({"question": ["怎么申请"]}, "文字"),
    ({"question": {"q": "x"}}, "文字"),
    ({"question": "问" * 501}, "500"),
    ({"question": "怎么申请", "session": ["x"]}, "会话"),
    (["怎么申请"], "JSON"),
    ("怎么申请", "JSON"),
])
def test_bad_input_gets_a_plain_chinese_4xx(client, payload, message: str) -> None:
    response = client.post("/api/ask", json=payload)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_invalid_json_and_wrong_content_type(client) -> None:
    response = client.post("/api/ask", data="{not json", content_type="application/json")
    assert response.status_code == 400 and "JSON" in response.get_json()["error"]
    response = client.post("/api/ask", data="question=怎么申请", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and "JSON" in response.get_json()["error"]


def test_body_over_16_kb_is_refused(client) -> None:
    payload = json.dumps({"question": "怎么申请", "pad": "x" * 17_000})
    response = client.post("/api/ask", data=payload, content_type="application/json")
    assert response.status_code == 413
    assert "过大" in response.get_json()["error"]


def test_question_of_exactly_500_characters_is_accepted(client) -> None:
    response = client.post("/api/ask", json={"question": "申" * 500})
    assert response.status_code == 200


def test_wrong_method_and_unknown_api_route_answer_json(client) -> None:
    response = client.get("/api/ask")
    assert response.status_code == 405 and "error" in response.get_json()
    response = client.post("/api/nothing", json={})
    assert response.status_code == 404 and "error" in response.get_json()


def test_strange_unicode_is_no_500(client) -> None:
    for question in ["\ud800怎么申请", "😀😀😀", "\x00\x01\x02", "<script>alert(1)</script>",
                     "'; drop table entries; --", "\u202e申请\u202c"]:
        # json.dumps escapes lone surrogates as \\udXXX, as a browser's JSON would.
        payload = json.dumps({"question": question, "session": "\udfff"})
        response = client.post("/api/ask", data=payload, content_type="application/json")
        assert response.status_code in (200, 400), question


def test_escalation_creates_a_ticket_row(app, client) -> None:
    body = client.post("/api/ask", json={"question": "请问贵单位食堂今年的菜谱能公开吗？", "session": "abc"}).get_json()
    assert body["status"] == "escalated" and body["kind"] is None
    code = body["ticket"]["code"]
    assert display_code(code) in body["answer"]  # grouped, as the citizen reads it out
    assert len(code) >= 12 and code.isalnum()
    from service.storage import connect
    db = connect(app.config["DATABASE"])
    row = db.execute("select question, normalised, session, candidates, status, created from tickets where code = ?",
                     [code]).fetchone()
    assert row[0] == "请问贵单位食堂今年的菜谱能公开吗？" and row[1] and row[2] == "abc" and row[4] == "new" and row[5]
    assert isinstance(json.loads(row[3]), list)


def test_ticket_is_reused_for_same_session_and_question(client) -> None:
    first = client.post("/api/ask", json={"question": "贵单位食堂的菜谱能公开吗", "session": "s-1"}).get_json()
    again = client.post("/api/ask", json={"question": "贵单位食堂的菜谱能公开吗？", "session": "s-1"}).get_json()
    other = client.post("/api/ask", json={"question": "贵单位食堂的菜谱能公开吗", "session": "s-2"}).get_json()
    nosession = client.post("/api/ask", json={"question": "贵单位食堂的菜谱能公开吗"}).get_json()
    assert first["ticket"]["code"] == again["ticket"]["code"]
    assert other["ticket"]["code"] != first["ticket"]["code"]
    assert nosession["ticket"]["code"] not in (first["ticket"]["code"], other["ticket"]["code"])


def test_ticket_reuse_ends_after_a_day(app, client) -> None:
    first = client.post("/api/ask", json={"question": "贵单位大楼的开放日是哪天", "session": "s-9"}).get_json()
    from service.storage import connect
    db = connect(app.config["DATABASE"])
    db.execute("update tickets set created = '2000-01-01T00:00:00+00:00' where code = ?", [first["ticket"]["code"]])
    later = client.post("/api/ask", json={"question": "贵单位大楼的开放日是哪天", "session": "s-9"}).get_json()
    assert later["ticket"]["code"] != first["ticket"]["code"]


def test_every_question_is_logged(app, client) -> None:
    client.post("/api/ask", json={"question": "你好", "session": "log"})
    client.post("/api/ask", json={"question": "申请要收费吗", "session": "log"})
    client.post("/api/ask", json={"question": "明天会下雨吗", "session": "log"})
    from service.storage import connect
    rows = list(connect(app.config["DATABASE"]).query(
        "select question, status, kind, entry_id, confidence, latency_ms, ticket_id from asks where session = 'log' order by id"))
    assert [r["status"] for r in rows] == ["answered", "answered", "escalated"]
    assert rows[0]["kind"] == "chitchat" and rows[1]["entry_id"] and rows[2]["ticket_id"]
    assert all(r["latency_ms"] > 0 for r in rows)


def test_chat_page(client) -> None:
    page = client.get("/").get_data(as_text=True)
    assert "国家统计局" in page and "政务公开智能问答" in page
    assert 'id="chat-form"' in page and "chat.js" in page
    assert "<script>" not in page and "onclick" not in page  # no inline script
    with client.get("/static/chat.js") as script:
        assert script.status_code == 200


def test_unknown_page_is_a_chinese_html_404(client) -> None:
    response = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404 and "页面不存在" in response.get_data(as_text=True)


def test_analytics_log_is_written_in_batches(tmp_path) -> None:
    from conftest import make_app
    from service.tickets import ASK_LOG

    app = make_app(tmp_path, ASK_LOG_BATCH=3, ASK_LOG_MAX_DELAY=3600)
    client = app.test_client()
    db = connect_db(app)
    for q in ["你好", "申请要收费吗"]:
        client.post("/api/ask", json={"question": q, "session": "batch"})
    assert db.execute("select count(*) from asks where session = 'batch'").fetchone()[0] == 0
    assert ASK_LOG.pending == 2
    client.post("/api/ask", json={"question": "谢谢", "session": "batch"})
    assert db.execute("select count(*) from asks where session = 'batch'").fetchone()[0] == 3
    # Follow-up context does not wait for the batch.
    client.post("/api/ask", json={"question": "2021年收到多少申请", "session": "batch"})
    assert "103" in client.post("/api/ask", json={"question": "那予以公开的呢", "session": "batch"}).get_json()["answer"]
    ASK_LOG.flush(db)


def connect_db(app):  # type: ignore[no-untyped-def]
    from service.storage import connect

    return connect(app.config["DATABASE"])


def test_a_quiet_worker_writes_its_buffered_log(tmp_path) -> None:
    import time

    from conftest import make_app

    app = make_app(tmp_path, ASK_LOG_BATCH=50, ASK_LOG_MAX_DELAY=0.2)
    client = app.test_client()
    db = connect_db(app)
    client.post("/api/ask", json={"question": "你好", "session": "quiet"})
    for _ in range(50):  # bounded: at most 5 s
        if db.execute("select count(*) from asks where session = 'quiet'").fetchone()[0]:
            break
        time.sleep(0.1)
    assert db.execute("select count(*) from asks where session = 'quiet'").fetchone()[0] == 1



@pytest.mark.parametrize(("question", "body"), [("怎么申请公租房？", "住房和城乡建设部门"), ("低保怎么申请", "民政部门"),
                                               ("我的养老金怎么还没到账", "人力资源和社会保障部门")])
def test_another_bodys_business_is_referred_without_a_ticket(app, client, question: str, body: str) -> None:
    from service.storage import connect

    reply = client.post("/api/ask", json={"question": question}).get_json()
    assert reply["status"] == "escalated" and reply["kind"] == "referral" and reply["ticket"] is None
    assert body in reply["answer"] and "12345" in reply["answer"]
    db = connect(app.config["DATABASE"])
    assert db.execute("select count(*) from tickets").fetchone()[0] == 0
    # The citizen may still send it to staff.
    sent = client.post("/api/ask", json={"question": question, "escalate": True}).get_json()
    assert sent["ticket"] and sent["ticket"]["code"]
    assert db.execute("select count(*) from tickets").fetchone()[0] == 1
