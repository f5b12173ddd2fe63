"""Canned replies (常用答复): curators keep them, reviewers pick one into the reply box."""
from __future__ import annotations

import html
import re

import pytest

from conftest import csrf_token
from service import canned
from service.storage import connect

TITLE = "转交住房保障部门"
BODY = "您好，您咨询的问题属于住房保障部门职责，请向当地住房保障部门咨询。"


def _post(client, path: str, **form):  # type: ignore[no-untyped-def]
    return client.post(path, data={**form, "csrf_token": csrf_token(client, "/staff/")})


def _reply_box(page: str) -> str:
    match = re.search(r'<textarea id="reply"[^>]*>(.*?)</textarea>', page, re.S)
    return html.unescape(match.group(1)) if match else ""


def test_a_curator_adds_edits_and_deletes_canned_replies(app, client, auth) -> None:
    auth.login("curator1", "curator")
    response = _post(client, "/staff/canned", title=f"  {TITLE} ", body=BODY)
    assert response.status_code == 302
    page = client.get("/staff/canned").get_data(as_text=True)
    assert TITLE in page and "已添加常用答复" in page
    db = connect(app.config["DATABASE"])
    canned_id = db.execute("select id from canned_replies where title = ?", [TITLE]).fetchone()[0]
    assert db.execute("select 1 from audit_log where action = 'canned_create'").fetchone()
    assert TITLE in client.get(f"/staff/canned/{canned_id}").get_data(as_text=True)
    assert _post(client, f"/staff/canned/{canned_id}", title="改过的标题", body="改过的内容").status_code == 302
    assert db.execute("select title, body, updated_by from canned_replies").fetchone() == \
        ("改过的标题", "改过的内容", "curator1")
    assert _post(client, f"/staff/canned/{canned_id}/delete").status_code == 302
    assert db.execute("select count(*) from canned_replies").fetchone()[0] == 0
    assert db.execute("select 1 from audit_log where action = 'canned_delete'").fetchone()


@pytest.mark.parametrize(("form", "message"), [
    ({"title": "", "body": BODY}, "请填写常用答复的标题"),
    ({"title": TITLE, "body": "  "}, "请填写常用答复的内容"),
    ({"title": "标" * 41, "body": BODY}, "标题不能超过40字"),
    ({"title": TITLE, "body": "答" * 2001}, "内容不能超过2000字"),
    ({}, "请填写常用答复的标题"),
])
def test_bad_canned_replies_are_refused_in_plain_words(app, client, auth, form: dict, message: str) -> None:
    auth.login("curator1", "curator")
    response = _post(client, "/staff/canned", **form)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert connect(app.config["DATABASE"]).execute("select count(*) from canned_replies").fetchone()[0] == 0


def test_titles_are_unique_and_missing_ones_are_404(app, client, auth) -> None:
    auth.login("curator1", "curator")
    assert _post(client, "/staff/canned", title=TITLE, body=BODY).status_code == 302
    again = _post(client, "/staff/canned", title=TITLE, body="另一段")
    assert again.status_code == 400 and "已有标题" in again.get_data(as_text=True)
    assert client.get("/staff/canned/999").status_code == 404
    assert _post(client, "/staff/canned/999", title="x", body="y").status_code == 404
    assert _post(client, "/staff/canned/999/delete").status_code == 404


def test_reviewers_pick_but_do_not_keep_canned_replies(app, client, auth) -> None:
    db = connect(app.config["DATABASE"])
    canned_id = canned.create(db, {"id": None, "username": "curator1"}, TITLE, BODY)
    citizen = app.test_client()
    code = citizen.post("/api/ask", json={"question": "廉租房轮候一般要排多久？", "session": "c1",
                                          "escalate": True}).get_json()["ticket"]["code"]
    tid = db.execute("select id from tickets where code = ?", [code]).fetchone()[0]
    auth.login("reviewer1", "reviewer")
    assert client.get("/staff/canned").status_code == 403
    assert _post(client, "/staff/canned", title="x", body="y").status_code == 403
    page = client.get(f"/staff/tickets/{tid}").get_data(as_text=True)
    assert "选用常用答复" in page and TITLE in page and _reply_box(page) == ""
    page = client.get(f"/staff/tickets/{tid}?canned={canned_id}").get_data(as_text=True)
    assert _reply_box(page) == BODY and "已将常用答复填入答复框" in page
    for bad in ("999", "abc", "-1", "1e9"):
        response = client.get(f"/staff/tickets/{tid}?canned={bad}")
        assert response.status_code == 200 and "所选的常用答复不存在" in response.get_data(as_text=True)
    # The picked text is only a start: what the reviewer sends is what the citizen reads.
    assert _post(client, f"/staff/tickets/{tid}/reply", reply=BODY + "（补充）").status_code == 302
    assert db.execute("select reply from tickets where id = ?", [tid]).fetchone()[0] == BODY + "（补充）"
