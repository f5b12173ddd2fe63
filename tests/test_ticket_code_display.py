"""One form of a ticket code for people, one name for it: every page shows the code grouped in fours
(GK7Q-3M9X-A2RT, the ``ticket_code`` filter over :func:`service.tickets.display_code`) and calls it
工单编号; the lookup takes the code typed either way."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import render_template_string

from conftest import csrf_token
from service import tickets
from service.storage import connect

ROOT = Path(__file__).resolve().parent.parent
UNANSWERABLE = "贵单位食堂今年的菜谱能公开吗？"
GROUPED = re.compile(r"GK[0-9A-Z]{2}-[0-9A-Z]{4}-[0-9A-Z]{4}")


def escalate(client) -> dict:  # type: ignore[no-untyped-def]
    body = client.post("/api/ask", json={"question": UNANSWERABLE, "session": "display-1"}).get_json()
    assert body["status"] == "escalated", body
    return body["ticket"]


def lookup(client, code: str, password: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/tickets")
    return client.post("/tickets", data={"code": code, "password": password, "csrf_token": token})


@pytest.mark.parametrize(("code", "shown"), [
    ("GK7Q3M9XA2RT", "GK7Q-3M9X-A2RT"),
    ("GK0000000024", "GK00-0000-0024"),
    ("GK7Q-3M9X-A2RT", "GK7Q-3M9X-A2RT"),  # not a stored code: shown as it is
    ("GK1", "GK1"),
    ("", ""),
    (None, ""),
    ("<b>GK</b>", "&lt;b&gt;GK&lt;/b&gt;"),  # still escaped by the template
])
def test_the_ticket_code_filter(app, code, shown: str) -> None:  # type: ignore[no-untyped-def]
    with app.test_request_context():
        assert render_template_string("{{ code | ticket_code }}", code=code) == shown


def test_the_lookup_page_shows_the_grouped_code_and_takes_it_back(client) -> None:
    ticket = escalate(client)
    grouped = tickets.display_code(ticket["code"])
    assert GROUPED.fullmatch(grouped) and grouped.replace("-", "") == ticket["code"]
    for typed in (grouped, grouped.lower(), " ".join(grouped.split("-")), ticket["code"]):
        page = lookup(client, typed, ticket["password"])
        html = page.get_data(as_text=True)
        assert page.status_code == 200, typed
        assert f'工单编号 <span class="ticket-code">{grouped}</span>' in html
        assert ticket["code"] not in html  # the plain form is nowhere to be read
        assert f'value="{grouped}"' in html  # the form keeps the code as shown
    form = client.get("/tickets").get_data(as_text=True)
    assert '<label for="lookup-code">工单编号</label>' in form and "办理编号" not in form


def test_staff_pages_show_the_grouped_code(app, client, auth) -> None:
    ticket = escalate(client)
    grouped = tickets.display_code(ticket["code"])
    auth.login("reviewer1", "reviewer")
    db = connect(app.config["DATABASE"])
    ticket_id = db.execute("select id from tickets where code = ?", [ticket["code"]]).fetchone()[0]
    # A second ticket with the same question is listed on the first one's page.
    other = client.post("/api/ask", json={"question": UNANSWERABLE, "session": "display-2"}).get_json()["ticket"]

    queue = client.get("/staff/tickets").get_data(as_text=True)
    assert f'class="ticket-code">{grouped}</a>' in queue and '<th scope="col">工单编号</th>' in queue
    page = client.get(f"/staff/tickets/{ticket_id}").get_data(as_text=True)
    assert f"<title>工单 {grouped} ·" in page and f'<h1>工单 <span class="ticket-code">{grouped}</span>' in page
    assert f'class="ticket-code">{tickets.display_code(other["code"])}</a>' in page  # the same question
    for html in (queue, page):
        assert ticket["code"] not in html

    reviewer = dict(next(db.query("select id, username from users where username = 'reviewer1'")))
    tickets.reply(db, ticket_id, reviewer, "请向本单位机关服务中心咨询。")
    analytics = client.get("/staff/analytics").get_data(as_text=True)
    assert f'class="ticket-code" href="/staff/tickets/{ticket_id}">{grouped}</a>' in analytics
    export = client.get("/staff/analytics.csv").get_data().decode("utf-8-sig")
    assert f"{grouped},{UNANSWERABLE}" in export


def test_the_chat_calls_it_gongdan_bianhao_and_groups_it() -> None:
    """The chat's words: one name for the code, and the same grouping as display_code."""
    script = (ROOT / "static" / "chat.js").read_text(encoding="utf-8")
    page = (ROOT / "service" / "templates" / "index.html").read_text(encoding="utf-8")
    for text in (script, page):
        assert "办理编号" not in text and "工单编号" in text
    assert "var TICKET_CODE_RE = /^GK[0-9A-HJKMNP-TV-Z]{10}$/;" in script
    assert tickets._CODE_RE.pattern == r"^GK[0-9A-HJKMNP-TV-Z]{10}$"
