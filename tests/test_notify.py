"""E-mail to citizens when their ticket is answered or their application closed, sent
through a real SMTP server (aiosmtpd) on this machine."""
from __future__ import annotations

import email
import email.policy
import socket
from datetime import date

import pytest
from aiosmtpd.controller import Controller

from conftest import csrf_token
from service import notify, tickets
from service.storage import connect

QUESTION = "廉租房轮候一般要排多久？"
CONTACT = {"name": "王小明", "phone": "13800001234", "email": "wang@example.cn"}


class Inbox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp():  # type: ignore[no-untyped-def]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


@pytest.fixture
def mail_app(app, smtp):  # type: ignore[no-untyped-def]
    controller, _ = smtp
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=controller.port, MAIL_FROM="gongkai@example.gov.cn",
                      PUBLIC_URL="https://gongkai.example.gov.cn")
    return app


def _escalate(client, session: str, contact: dict | None = None) -> dict:  # type: ignore[no-untyped-def]
    body = client.post("/api/ask", json={"question": QUESTION, "session": session, "escalate": True}).get_json()
    ticket = body["ticket"]
    db = connect(client.application.config["DATABASE"])
    ticket["id"] = db.execute("select id from tickets where code = ?", [ticket["code"]]).fetchone()[0]
    if contact:
        tickets.save_contact(db, ticket["id"], tickets.clean_contact(contact["name"], contact["phone"],
                                                                      contact["email"]))
    return ticket


def _reviewer(client, auth):  # type: ignore[no-untyped-def]
    auth.login("reviewer1", "reviewer")
    return lambda path, **form: client.post(path, data={**form, "csrf_token": csrf_token(client, "/staff/")})


def test_the_message_names_the_code_and_the_page_and_nothing_else() -> None:
    subject, body = notify.compose("GK7Q3M9XA2RT", "https://example.gov.cn/tickets", agency="国家统计局")
    assert "GK7Q-3M9X-A2RT" in subject and "已有答复" in subject
    assert "GK7Q-3M9X-A2RT" in body and "https://example.gov.cn/tickets" in body and "查询密码" in body
    assert "国家统计局" in body


def test_no_mail_server_configured_means_no_mail(app, client, auth) -> None:
    citizen = app.test_client()
    ticket = _escalate(citizen, "m0", CONTACT)
    post = _reviewer(client, auth)
    assert post(f"/staff/tickets/{ticket['id']}/reply", reply="请向当地住房保障部门咨询。").status_code == 302
    assert connect(app.config["DATABASE"]).execute("select count(*) from mail_outbox").fetchone()[0] == 0
    assert notify.settings_from(app.config) is None


def test_answering_a_group_mails_each_citizen_who_left_an_address(mail_app, smtp, client, auth) -> None:
    _, inbox = smtp
    citizen = mail_app.test_client()
    first = _escalate(citizen, "m1", CONTACT)
    second = _escalate(citizen, "m2", {"name": "", "phone": "", "email": "li@example.com"})
    silent = _escalate(citizen, "m3")  # no contact: no mail, but answered with the others
    post = _reviewer(client, auth)
    response = post(f"/staff/tickets/{first['id']}/reply", reply="轮候时间由各地住房保障部门规定。", whole_group="1")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "一并答复了 2 张" in page and "已发送 2 封邮件" in page
    db = connect(mail_app.config["DATABASE"])
    assert {r[0] for r in db.execute("select status from tickets")} == {"answered"}
    assert sorted(rcpt[0] for rcpt, _ in inbox.messages) == ["li@example.com", "wang@example.cn"]
    for rcpt, message in inbox.messages:
        code = first["code"] if rcpt == ["wang@example.cn"] else second["code"]
        text = message.get_content()
        assert tickets.display_code(code) in message["Subject"] and tickets.display_code(code) in text
        assert "https://gongkai.example.gov.cn/tickets" in text and message["From"] == "gongkai@example.gov.cn"
        # No password, no reply, no personal data beyond the address it went to.
        for secret in (first["password"], second["password"], silent["password"], "王小明", "13800001234",
                       "轮候时间", QUESTION):
            assert secret not in text and secret not in message["Subject"], secret
    assert db.execute("select count(*) from mail_outbox where sent_at is null").fetchone()[0] == 0


def test_a_mail_server_that_is_down_does_not_fail_the_reply(app, client, auth) -> None:
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=_free_port(), MAIL_TIMEOUT=2)  # nobody listens
    citizen = app.test_client()
    ticket = _escalate(citizen, "m4", CONTACT)
    post = _reviewer(client, auth)
    response = post(f"/staff/tickets/{ticket['id']}/reply", reply="请向当地住房保障部门咨询。")
    assert response.status_code == 302
    assert "未能发出" in client.get(response.headers["Location"]).get_data(as_text=True)
    db = connect(app.config["DATABASE"])
    assert db.execute("select status from tickets where id = ?", [ticket["id"]]).fetchone()[0] == "answered"
    row = db.execute("select recipient, sent_at, attempts, error from mail_outbox").fetchone()
    assert row[0] == "wang@example.cn" and row[1] is None and row[2] == 1 and row[3]


def test_a_failed_message_is_sent_once_the_server_is_back(app, smtp, client, auth) -> None:
    controller, inbox = smtp
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=_free_port(), MAIL_TIMEOUT=2)
    citizen = app.test_client()
    first = _escalate(citizen, "m5", CONTACT)
    post = _reviewer(client, auth)
    assert post(f"/staff/tickets/{first['id']}/reply", reply="答复一").status_code == 302
    app.config["MAIL_PORT"] = controller.port
    other = citizen.post("/api/ask", json={"question": "居住证怎么办理才最快", "session": "m6",
                                           "escalate": True}).get_json()["ticket"]
    db = connect(app.config["DATABASE"])
    other_id = db.execute("select id from tickets where code = ?", [other["code"]]).fetchone()[0]
    tickets.save_contact(db, other_id, tickets.clean_contact("", "", "zhao@example.org"))
    assert post(f"/staff/tickets/{other_id}/reply", reply="答复二").status_code == 302
    assert sorted(r[0][0] for r in inbox.messages) == ["wang@example.cn", "zhao@example.org"]
    assert db.execute("select count(*) from mail_outbox where sent_at is null").fetchone()[0] == 0


def test_closing_an_application_mails_the_applicant(mail_app, smtp, client, auth) -> None:
    _, inbox = smtp
    mail_app.config["TODAY"] = date(2026, 3, 16)
    citizen = mail_app.test_client()
    ticket = _escalate(citizen, "m7", CONTACT)
    post = _reviewer(client, auth)
    base = f"/staff/tickets/{ticket['id']}"
    assert post(f"{base}/application", applicant_type="natural", channel="online",
                received_on="2026-03-02").status_code == 302
    refused = post(f"{base}/application/close", outcome="disclosed", closed_on="2026-03-10")
    assert refused.status_code == 400 and "请填写给申请人的答复" in refused.get_data(as_text=True)
    assert inbox.messages == []
    reply = "您申请公开的信息已通过电子邮件以外的方式提供，请登录查看。"
    assert post(f"{base}/application/close", outcome="disclosed", closed_on="2026-03-10",
                reply=reply).status_code == 302
    assert [r[0] for r in inbox.messages] == [["wang@example.cn"]]
    text = inbox.messages[0][1].get_content()
    assert tickets.display_code(ticket["code"]) in text and ticket["password"] not in text and reply not in text
    lookup = citizen.post("/tickets", data={"code": ticket["code"], "password": ticket["password"],
                                            "csrf_token": csrf_token(citizen, "/tickets")})
    assert reply in lookup.get_data(as_text=True)


@pytest.mark.parametrize(("config", "expected"), [
    ({}, None),
    ({"MAIL_SERVER": ""}, None),
    ({"MAIL_SERVER": "smtp.example.cn"}, notify.MailSettings("smtp.example.cn")),
    ({"MAIL_SERVER": "smtp.example.cn", "MAIL_PORT": "587", "MAIL_USE_TLS": True, "MAIL_USERNAME": "u",
      "MAIL_PASSWORD": "p", "MAIL_FROM": "a@b.cn"},
     notify.MailSettings("smtp.example.cn", 587, "a@b.cn", "u", "p", True)),
    ({"MAIL_SERVER": "smtp.example.cn", "MAIL_PORT": "twenty-five", "MAIL_TIMEOUT": "x"},
     notify.MailSettings("smtp.example.cn")),
])
def test_mail_settings_from_the_config(config: dict, expected) -> None:  # type: ignore[no-untyped-def]
    assert notify.settings_from(config) == expected


def test_the_outbox_gives_up_after_a_few_refusals(app) -> None:
    db = connect(app.config["DATABASE"])
    db["mail_outbox"].insert({"ticket_id": 1, "recipient": "x@example.cn", "subject": "s", "body": "b",
                              "created": "2026-01-01T00:00:00+00:00", "attempts": notify.MAX_ATTEMPTS})
    down = notify.MailSettings("127.0.0.1", _free_port(), timeout=1)
    assert notify.send_pending(db, down) == {"sent": 0, "failed": 0}
    assert notify.send_pending(db, None) == {"sent": 0, "failed": 0}
    assert notify.send_pending(db, down, []) == {"sent": 0, "failed": 0}


def test_mail_without_a_public_address_is_warned_of_at_start(tmp_path, caplog) -> None:
    import logging

    from conftest import make_app

    with caplog.at_level(logging.WARNING):
        make_app(tmp_path, MAIL_SERVER="127.0.0.1")
    assert any("PUBLIC_URL" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        make_app(tmp_path / "b", MAIL_SERVER="127.0.0.1", PUBLIC_URL="https://gongkai.example.gov.cn")
    assert not any("PUBLIC_URL" in r.getMessage() for r in caplog.records)
