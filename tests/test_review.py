"""The reviewers' side of tickets: the queue, the ticket page, the actions and promotion to FAQ."""
from __future__ import annotations

import re

import pytest

from conftest import csrf_token, routes_of
from service import tickets
from service.knowledge import knowledge_version
from service.storage import connect

UNANSWERABLE = "廉租房轮候一般要排多久？"


def db_of(app):  # type: ignore[no-untyped-def]
    return connect(app.config["DATABASE"])


def ask(client, question: str, session: str = "citizen-1") -> dict:  # type: ignore[no-untyped-def]
    response = client.post("/api/ask", json={"question": question, "session": session})
    assert response.status_code == 200
    return response.get_json()


def escalate(client, question: str = UNANSWERABLE, session: str = "citizen-1") -> dict:  # type: ignore[no-untyped-def]
    """A ticket for a question the desk leaves to staff. Several of these questions are
    another body's business, which the desk refers without a ticket; the citizen's
    仍然提交给工作人员 (``escalate``) sends them to staff."""
    response = client.post("/api/ask", json={"question": question, "session": session, "escalate": True})
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "escalated" and body["ticket"], body
    return body["ticket"]


def ticket_id(app, code: str) -> int:  # type: ignore[no-untyped-def]
    return db_of(app).execute("select id from tickets where code = ?", [code]).fetchone()[0]


@pytest.fixture
def citizen(app):  # type: ignore[no-untyped-def]
    """A second browser: the citizen's, with no staff session."""
    return app.test_client()


@pytest.fixture
def reviewer(client, auth):  # type: ignore[no-untyped-def]
    """The test client, logged in as a reviewer; ``post(path, **form)`` sends a form with its token."""
    auth.login("reviewer1", "reviewer")

    class Reviewer:
        def get(self, path: str):  # type: ignore[no-untyped-def]
            return client.get(path)

        def post(self, path: str, data=None, **form):  # type: ignore[no-untyped-def]
            return client.post(path, data={**(data or {}), **form, "csrf_token": csrf_token(client, "/staff/")})

    return Reviewer()


def lookup(client, code: str, password: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/tickets")
    return client.post("/tickets", data={"code": code, "password": password, "csrf_token": token})


def test_the_whole_story_from_question_to_reply(app, citizen, reviewer) -> None:
    ticket = escalate(citizen)
    queue = reviewer.get("/staff/tickets").get_data(as_text=True)
    assert tickets.display_code(ticket["code"]) in queue and UNANSWERABLE in queue and "新建" in queue
    tid = ticket_id(app, ticket["code"])

    assert reviewer.post(f"/staff/tickets/{tid}/take").status_code == 302
    page = reviewer.get(f"/staff/tickets/{tid}").get_data(as_text=True)
    assert "处理中" in page and "reviewer1" in page and "接手处理" in page

    reply = "公租房申请条件由当地住房保障部门规定，请向户籍或工作所在地的住房保障部门咨询。"
    response = reviewer.post(f"/staff/tickets/{tid}/reply", reply=reply)
    assert response.status_code == 302
    row = next(db_of(app).query("select * from tickets where id = ?", [tid]))
    assert row["status"] == "answered" and row["reply"] == reply and row["replied_at"]
    assert row["replied_by"] == row["assigned_to"]

    page = lookup(citizen, ticket["code"], ticket["password"]).get_data(as_text=True)
    assert "已答复" in page and reply in page
    wrong = "000000" if ticket["password"] != "000000" else "111111"
    page = lookup(citizen, ticket["code"], wrong).get_data(as_text=True)
    assert "编号或查询密码不正确" in page and reply not in page and "已答复" not in page

    history = reviewer.get(f"/staff/tickets/{tid}").get_data(as_text=True)
    assert "群众提问，生成工单" in history and "接手处理" in history and reply in history
    actions = [r["action"] for r in db_of(app).query("select action from ticket_events where ticket_id = ? order by id", [tid])]
    assert actions == ["open", "take", "reply"]
    audited = {r["action"]: r for r in db_of(app).query("select * from audit_log where target = ?", [f"ticket:{tid}"])}
    assert set(audited) == {"ticket_take", "ticket_reply"} and audited["ticket_reply"]["username"] == "reviewer1"


def test_ticket_page_shows_the_session_before_it_and_the_candidates(app, citizen, reviewer) -> None:
    ask(citizen, "如何申请政府信息公开？")
    ask(citizen, "申请要收费吗")
    ticket = escalate(citizen, "公租房轮候名单能查吗")
    ask(citizen, "后来问的问题不应出现")
    tid = ticket_id(app, ticket["code"])
    page = reviewer.get(f"/staff/tickets/{tid}").get_data(as_text=True)
    assert "如何申请政府信息公开？" in page and "申请要收费吗" in page and "后来问的问题不应出现" not in page
    candidates = tickets.resolve_candidates(db_of(app), db_of(app).execute(
        "select candidates from tickets where id = ?", [tid]).fetchone()[0])
    faq = [c for c in candidates if c["kind"] == "faq"]
    assert faq, "the matcher kept FAQ candidates for this question"
    question = db_of(app).execute("select question from entries where id = ?", [faq[0]["entry_id"]]).fetchone()[0]
    assert faq[0]["label"] == question and question in page
    assert f"{faq[0]['score']:.3f}" in page and "覆盖率" in page


def test_contact_is_masked_in_the_queue_and_shown_on_the_ticket(app, citizen, reviewer) -> None:
    ticket = escalate(citizen)
    citizen.post(f"/api/tickets/{ticket['code']}/contact",
                 json={"password": ticket["password"], "name": "王小明", "phone": "13800001234",
                       "email": "wang@example.cn"})
    queue = reviewer.get("/staff/tickets").get_data(as_text=True)
    assert "138****1234" in queue and "13800001234" not in queue and "王小明" not in queue
    assert "w***@example.cn" in queue and "wang@example.cn" not in queue
    page = reviewer.get(f"/staff/tickets/{ticket_id(app, ticket['code'])}")
    text = page.get_data(as_text=True)
    assert "13800001234" in text and "王小明" in text and "wang@example.cn" in text
    assert page.headers["Cache-Control"] == "no-store"
    assert "群众留下联系方式" in text


def test_promoting_to_a_new_entry_makes_a_draft_that_the_chat_does_not_use(app, citizen, reviewer) -> None:
    ticket = escalate(citizen, "廉租房轮候要排多久")
    tid = ticket_id(app, ticket["code"])
    app.config["PROMOTE_PUBLISHES_FOR_ADMINS"] = True  # for admins only: a reviewer still drafts
    page = reviewer.get(f"/staff/tickets/{tid}").get_data(as_text=True)
    assert "保存为常见问题草稿" in page and "审核发布" in page
    answer = "廉租房的轮候时间由各地住房保障部门规定，请向当地住房保障部门咨询。"
    response = reviewer.post(f"/staff/tickets/{tid}/promote/new", question="廉租房轮候一般要排多久？",
                             answer=answer, category="其他", source="")
    assert response.status_code == 302
    page = reviewer.get(response.headers["Location"]).get_data(as_text=True)
    assert "草稿" in page and "审核发布" in page
    db = db_of(app)
    entry = next(db.query("select * from entries order by id desc limit 1"))
    assert entry["question"] == "廉租房轮候一般要排多久？" and entry["status"] == "draft"
    assert [r["text"] for r in db.query("select text from alternates where entry_id = ?", [entry["id"]])] == \
        ["廉租房轮候要排多久"]
    body = ask(citizen, "廉租房轮候一般要排多久？", session="citizen-9")
    assert body.get("entry_id") != entry["id"]
    assert "（草稿，待编辑发布）" in "".join(
        r[0] for r in db.execute("select detail from ticket_events where ticket_id = ?", [tid]))


def test_an_admin_publishes_a_promoted_ticket_when_the_config_allows(app, citizen, client, auth) -> None:
    auth.login("admin1", "admin")
    app.config["PROMOTE_PUBLISHES_FOR_ADMINS"] = True

    class Admin:
        def get(self, path: str):  # type: ignore[no-untyped-def]
            return client.get(path)

        def post(self, path: str, **form):  # type: ignore[no-untyped-def]
            return client.post(path, data={**form, "csrf_token": csrf_token(client, "/staff/")})

    _promote_and_publish(app, citizen, Admin())


def _promote_and_publish(app, citizen, reviewer) -> None:  # type: ignore[no-untyped-def]
    ticket = escalate(citizen, "廉租房轮候要排多久")
    tid = ticket_id(app, ticket["code"])
    version = knowledge_version(db_of(app))
    answer = "廉租房的轮候时间由各地住房保障部门规定，请向当地住房保障部门咨询。"
    response = reviewer.post(f"/staff/tickets/{tid}/promote/new", question="廉租房轮候一般要排多久？",
                             answer=answer, category="其他", source="")
    assert response.status_code == 302
    db = db_of(app)
    entry = next(db.query("select * from entries order by id desc limit 1"))
    assert entry["question"] == "廉租房轮候一般要排多久？" and entry["status"] == "published"
    assert entry["version"] == 1 and entry["created"] and entry["updated"] and entry["key"].startswith("ticket-")
    assert [r["text"] for r in db.query("select text from alternates where entry_id = ?", [entry["id"]])] == \
        ["廉租房轮候要排多久"]
    assert knowledge_version(db) > version
    assert db.execute("select 1 from audit_log where action = 'create_entry' and target = ?",
                      [f"entry:{entry['id']}"]).fetchone()
    for question in ("廉租房轮候要排多久", "廉租房轮候一般要排多久？"):
        body = ask(citizen, question, session="citizen-9")
        assert body["status"] == "answered" and body["entry_id"] == entry["id"] and body["answer"] == answer
    # The same canonical question cannot be published twice.
    again = reviewer.post(f"/staff/tickets/{tid}/promote/new", question="廉租房轮候一般要排多久？",
                          answer=answer, category="其他")
    assert again.status_code == 400 and "相似问法" in again.get_data(as_text=True)


@pytest.mark.parametrize(("form", "message"), [
    ({"question": "", "answer": "答案", "category": "其他"}, "标准问题不能为空"),
    ({"question": "问题", "answer": " ", "category": "其他"}, "答案不能为空"),
    ({"question": "问题", "answer": "答案", "category": "分" * 21}, "分类不能超过"),
    ({"question": "问" * 201, "answer": "答案", "category": "其他"}, "标准问题不能超过"),
])
def test_promoting_to_a_new_entry_checks_the_form(app, citizen, reviewer, form: dict, message: str) -> None:
    ticket = escalate(citizen)
    count = db_of(app).execute("select count(*) from entries").fetchone()[0]
    response = reviewer.post(f"/staff/tickets/{ticket_id(app, ticket['code'])}/promote/new", **form)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert db_of(app).execute("select count(*) from entries").fetchone()[0] == count


def test_promoting_as_an_alternate_makes_the_chat_answer(app, citizen, reviewer) -> None:
    question = "居住证怎么办理"
    ticket = escalate(citizen, question)
    tid = ticket_id(app, ticket["code"])
    db = db_of(app)
    entry_id, entry_question, version = db.execute(
        "select id, question, version from entries where key = 'how-to-apply'").fetchone()
    # The search box lists entries by a word of their question.
    page = reviewer.get(f"/staff/tickets/{tid}?entry_q=申请 方式").get_data(as_text=True)
    assert entry_question in page and f'name="entry_id" value="{entry_id}"' in page
    kb = knowledge_version(db)
    assert reviewer.post(f"/staff/tickets/{tid}/promote/alternate", entry_id=str(entry_id)).status_code == 302
    assert db.execute("select version from entries where id = ?", [entry_id]).fetchone()[0] == version + 1
    assert db.execute("select 1 from alternates where entry_id = ? and text = ?", [entry_id, question]).fetchone()
    assert knowledge_version(db) > kb
    assert db.execute("select 1 from audit_log where action = 'add_alternate'").fetchone()
    body = ask(citizen, question, session="citizen-9")
    assert body["status"] == "answered" and body["entry_id"] == entry_id
    # Twice is refused, as are unknown and unpublished entries.
    response = reviewer.post(f"/staff/tickets/{tid}/promote/alternate", entry_id=str(entry_id))
    assert response.status_code == 400 and "已有这个问法" in response.get_data(as_text=True)
    assert reviewer.post(f"/staff/tickets/{tid}/promote/alternate", entry_id="99999").status_code == 404
    db.execute("update entries set status = 'draft' where key = 'apply-online'")
    draft = db.execute("select id from entries where key = 'apply-online'").fetchone()[0]
    response = reviewer.post(f"/staff/tickets/{tid}/promote/alternate", entry_id=str(draft))
    assert response.status_code == 400 and "未发布" in response.get_data(as_text=True)
    assert reviewer.post(f"/staff/tickets/{tid}/promote/alternate", entry_id="abc").status_code == 400


def test_similar_open_tickets_are_answered_together(app, citizen, reviewer) -> None:
    codes = [escalate(citizen, session=f"citizen-{i}")["code"] for i in range(4)]
    ids = [ticket_id(app, c) for c in codes]
    db = db_of(app)
    db.execute("update tickets set status = 'closed' where id = ?", [ids[3]])
    other = ticket_id(app, escalate(citizen, "居住证怎么办理")["code"])
    page = reviewer.get(f"/staff/tickets/{ids[0]}").get_data(as_text=True)
    listed = re.findall(r'name="also" value="(\d+)" checked', page)
    assert listed == [str(ids[1]), str(ids[2])]  # open ones only, all checked by default

    reply = "请向当地住房保障部门咨询。"
    response = reviewer.post(f"/staff/tickets/{ids[0]}/reply", {"also": [str(ids[1]), str(other)]}, reply=reply)
    assert response.status_code == 302
    status = dict(db.execute("select id, status from tickets").fetchall())
    assert [status[i] for i in ids] == ["answered", "answered", "new", "closed"]
    assert status[other] == "new"  # not the same question: left alone
    detail = db.execute("select detail from ticket_events where ticket_id = ? and action = 'reply'", [ids[1]]).fetchone()[0]
    assert tickets.display_code(codes[0]) in detail and reply in detail
    assert db.execute("select reply from tickets where id = ?", [ids[1]]).fetchone()[0] == reply
    # The one left open can be answered from its own page, now with nobody else to include.
    assert 'name="also"' not in reviewer.get(f"/staff/tickets/{ids[2]}").get_data(as_text=True)


def test_an_application_with_the_same_question_is_never_answered_with_a_group(app, citizen, reviewer) -> None:
    """An application is closed through its own workflow: the group reply, whole or in part,
    never touches it, and the count offered leaves it out."""
    from datetime import date

    from service import applications

    codes = [escalate(citizen, session=f"citizen-{i}")["code"] for i in range(3)]
    ids = [ticket_id(app, c) for c in codes]
    db = db_of(app)
    applications.convert(db, ids[2], None, applicant_type="natural", channel="post",
                         received_on=date(2026, 2, 6), today=date(2026, 2, 6))
    page = reviewer.get(f"/staff/tickets/{ids[0]}").get_data(as_text=True)
    assert re.findall(r'name="also" value="(\d+)"', page) == [str(ids[1])]
    # Even a forged form naming the application leaves it alone.
    response = reviewer.post(f"/staff/tickets/{ids[0]}/reply", {"also": [str(ids[1]), str(ids[2])]}, reply="答复。")
    assert response.status_code == 302
    status = dict(db.execute("select id, status from tickets").fetchall())
    assert (status[ids[1]], status[ids[2]]) == ("answered", "new")


def test_editing_a_sent_reply_does_not_offer_to_answer_newer_tickets_by_default(app, citizen, reviewer) -> None:
    """A first reply answers the whole group by default; changing a reply already sent does
    not, so a correction never answers (and e-mails) tickets opened since without a choice."""
    first = ticket_id(app, escalate(citizen, session="citizen-a")["code"])
    reviewer.post(f"/staff/tickets/{first}/reply", {}, reply="答复。")
    ticket_id(app, escalate(citizen, session="citizen-b")["code"])  # asked after the reply
    page = reviewer.get(f"/staff/tickets/{first}").get_data(as_text=True)
    assert 'name="whole_group" value="1">' in page and 'name="whole_group" value="1" checked' not in page
    assert re.findall(r'name="also" value="(\d+)" checked', page) == []


@pytest.mark.parametrize(("text", "message"), [("", "请填写答复内容"), ("   ", "请填写答复内容"),
                                                ("答" * 2001, "不能超过2000字")])
def test_reply_must_be_short_and_not_empty(app, citizen, reviewer, text: str, message: str) -> None:
    tid = ticket_id(app, escalate(citizen)["code"])
    response = reviewer.post(f"/staff/tickets/{tid}/reply", reply=text)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert db_of(app).execute("select status, reply from tickets where id = ?", [tid]).fetchone() == ("new", None)


def test_status_changes_and_close(app, citizen, reviewer) -> None:
    tid = ticket_id(app, escalate(citizen)["code"])
    db = db_of(app)
    assert reviewer.post(f"/staff/tickets/{tid}/status", status="waiting", note="请群众说明所在城市").status_code == 302
    assert db.execute("select status from tickets where id = ?", [tid]).fetchone()[0] == "waiting"
    response = reviewer.post(f"/staff/tickets/{tid}/status", status="answered")
    assert response.status_code == 400 and "还没有答复内容" in response.get_data(as_text=True)
    assert reviewer.post(f"/staff/tickets/{tid}/status", status="bogus").status_code == 400
    assert reviewer.post(f"/staff/tickets/{tid}/close", note="重复提问").status_code == 302
    status, closed_at = db.execute("select status, closed_at from tickets where id = ?", [tid]).fetchone()
    assert status == "closed" and closed_at
    response = reviewer.post(f"/staff/tickets/{tid}/take")
    assert response.status_code == 400 and "已关闭" in response.get_data(as_text=True)
    assert reviewer.post(f"/staff/tickets/{tid}/status", status="in_progress").status_code == 302
    assert db.execute("select closed_at from tickets where id = ?", [tid]).fetchone()[0] is None
    events = [(r["action"], r["username"], r["detail"]) for r in
              db.query("select * from ticket_events where ticket_id = ? order by id", [tid])]
    assert events[1] == ("status", "reviewer1", "新建 → 等待群众补充：请群众说明所在城市")
    assert events[2] == ("close", "reviewer1", "等待群众补充 → 已关闭：重复提问")
    assert [r[0] for r in db.execute("select action from audit_log where target = ? order by id", [f"ticket:{tid}"])] \
        == ["ticket_status", "ticket_close", "ticket_status"]
    assert reviewer.post("/staff/tickets/99999/take").status_code == 404


def _rows(page: str) -> list[str]:
    """The codes listed, as stored (the page shows them grouped: GK7Q-3M9X-A2RT)."""
    return [c.replace("-", "") for c in re.findall(r'class="ticket-code">(GK[0-9A-Z]{2}-[0-9A-Z]{4}-[0-9A-Z]{4})<', page)]


def test_queue_filters_by_status_and_sorts(app, citizen, reviewer) -> None:
    codes = [escalate(citizen, q, session=f"s{i}")["code"] for i, q in
             enumerate([UNANSWERABLE, "居住证怎么办理", "统计局的停车场在哪里"])]
    db = db_of(app)
    for i, code in enumerate(codes):  # distinct times, oldest first
        db.execute("update tickets set created = ? where code = ?", [f"2024-05-0{i + 1}T08:00:00+00:00", code])
    db.execute("update tickets set status = 'answered', reply = '答复' where code = ?", [codes[1]])
    assert _rows(reviewer.get("/staff/tickets").get_data(as_text=True)) == [codes[2], codes[0]]
    assert _rows(reviewer.get("/staff/tickets?order=oldest").get_data(as_text=True)) == [codes[0], codes[2]]
    assert _rows(reviewer.get("/staff/tickets?status=answered").get_data(as_text=True)) == [codes[1]]
    assert _rows(reviewer.get("/staff/tickets?status=all&order=oldest").get_data(as_text=True)) == codes
    assert _rows(reviewer.get("/staff/tickets?status=closed").get_data(as_text=True)) == []
    assert "没有符合条件的工单" in reviewer.get("/staff/tickets?status=closed").get_data(as_text=True)
    # Nonsense parameters fall back to the defaults.
    assert _rows(reviewer.get("/staff/tickets?status=x&order=y&min_asked=z&page=-3").get_data(as_text=True)) \
        == [codes[2], codes[0]]


def test_queue_filters_by_how_often_a_question_was_asked(app, citizen, reviewer) -> None:
    popular = [escalate(citizen, UNANSWERABLE, session=f"s{i}")["code"] for i in range(3)]
    escalate(citizen, UNANSWERABLE, session="s0")  # the same session again: same ticket, asked twice
    single = escalate(citizen, "居住证怎么办理", session="s9")["code"]
    page = reviewer.get("/staff/tickets?min_asked=4&merged=0").get_data(as_text=True)
    assert sorted(_rows(page)) == sorted(popular) and "同类工单 3 张" in page and "4 次" in page
    assert _rows(reviewer.get("/staff/tickets?min_asked=5&merged=0").get_data(as_text=True)) == []
    assert set(_rows(reviewer.get("/staff/tickets?min_asked=1&merged=0").get_data(as_text=True))) == {*popular, single}
    # By default the three open tickets of one question are one row, the earliest, with the count.
    merged = reviewer.get("/staff/tickets?min_asked=4").get_data(as_text=True)
    assert _rows(merged) == [popular[0]] and "3 人提问" in merged and "共 1 个待处理问题" in merged
    assert set(_rows(reviewer.get("/staff/tickets").get_data(as_text=True))) == {popular[0], single}
    detail = reviewer.get(f"/staff/tickets/{ticket_id(app, popular[0])}").get_data(as_text=True)
    assert "共 3 张工单，合计提问 4 次" in detail and "2 次" in detail


def test_queue_is_paginated(app, reviewer) -> None:
    db = db_of(app)
    for i in range(tickets.PAGE_SIZE + 5):
        db["tickets"].insert({"code": f"GK{i:010d}", "question": f"问题{i}", "normalised": f"问题{i}",
                              "status": "new", "asked_count": 1, "created": f"2024-05-01T08:{i:02d}:00+00:00"})
    first = reviewer.get("/staff/tickets").get_data(as_text=True)
    second = reviewer.get("/staff/tickets?page=2").get_data(as_text=True)
    assert len(_rows(first)) == tickets.PAGE_SIZE and len(_rows(second)) == 5
    assert _rows(first)[0] == f"GK{tickets.PAGE_SIZE + 4:010d}" and _rows(second)[-1] == "GK0000000000"
    assert "page=2" in first and "下一页" in first and "上一页" in second and "第 2/2 页" in second




def test_only_reviewers_and_admins_may_review(app, client, auth, citizen) -> None:
    escalate(citizen)
    routes = [r for r in routes_of(app, "review.") if not r[1].startswith("/staff/canned")]  # curators' (test_canned)
    assert len(routes) == 9
    for method, path in routes:  # anonymous: sent to the login page
        data = {"csrf_token": csrf_token(client, "/staff/login")} if method == "POST" else None
        response = client.open(path, method=method, data=data)
        assert response.status_code == 302 and "/staff/login" in response.headers["Location"], (method, path)
    auth.login("curator1", "curator")
    token = csrf_token(client, "/staff/")
    for method, path in routes:  # a curator: forbidden, and nothing changes
        response = client.open(path, method=method, data={"csrf_token": token, "reply": "x", "status": "closed",
                                                          "entry_id": "1"} if method == "POST" else None)
        assert response.status_code == 403, (method, path)
    assert db_of(app).execute("select status, reply from tickets").fetchone() == ("new", None)
    auth.logout()
    auth.login("admin1", "admin")
    assert client.get("/staff/tickets").status_code == 200
    assert client.get("/staff/tickets/1").status_code == 200


def test_actions_need_the_csrf_token(app, citizen, reviewer, client) -> None:
    tid = ticket_id(app, escalate(citizen)["code"])
    response = client.post(f"/staff/tickets/{tid}/reply", data={"reply": "答复"})
    assert response.status_code == 400
    assert db_of(app).execute("select status from tickets where id = ?", [tid]).fetchone()[0] == "new"


def test_staff_ticket_pages_have_no_inline_script_or_style(app, citizen, reviewer) -> None:
    tid = ticket_id(app, escalate(citizen)["code"])
    for path in ("/staff/tickets", f"/staff/tickets/{tid}", f"/staff/tickets/{tid}?entry_q=申请"):
        page = reviewer.get(path).get_data(as_text=True)
        assert "style=" not in page and "<style" not in page, path
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), path
        assert page.count('name="csrf_token"') >= 2 or path == "/staff/tickets", path


def test_a_question_too_long_for_an_alternate(app, citizen, reviewer) -> None:
    question = "我想了解公租房" + "、廉租房和经济适用房" * 25 + "的申请条件"
    tid = ticket_id(app, escalate(citizen, question)["code"])
    response = reviewer.post(f"/staff/tickets/{tid}/promote/alternate", entry_id="1")
    assert response.status_code == 400 and "超过200字" in response.get_data(as_text=True)
    response = reviewer.post(f"/staff/tickets/{tid}/promote/new", question="保障性住房的申请条件是什么？",
                             answer="请向当地住房保障部门咨询。", category="其他")
    assert response.status_code == 302
    assert "未作为相似问法加入" in reviewer.get(response.headers["Location"]).get_data(as_text=True)
    assert db_of(app).execute("select count(*) from alternates where text = ?", [question]).fetchone()[0] == 0


def test_a_phrasing_shared_with_another_entry_is_added_with_a_warning(app, citizen, reviewer) -> None:
    tid = ticket_id(app, escalate(citizen, "居住证怎么办理")["code"])
    db = db_of(app)
    first, second = [r[0] for r in db.execute("select id from entries where status = 'published' order by id limit 2")]
    db["alternates"].insert({"entry_id": first, "text": "居住证怎么办理？", "created": "2024-05-01T08:00:00+00:00"})
    response = reviewer.post(f"/staff/tickets/{tid}/promote/alternate", entry_id=str(second))
    assert response.status_code == 302
    page = reviewer.get(response.headers["Location"]).get_data(as_text=True)
    assert f"条目 {first}" in page and "也有相同的问法" in page


def test_assigning_a_ticket_and_the_mine_view(app, citizen, reviewer, auth) -> None:
    auth.create("reviewer2", "reviewer")
    auth.create("curator9", "curator")
    first = ticket_id(app, escalate(citizen, UNANSWERABLE, session="a1")["code"])
    other = escalate(citizen, "居住证怎么办理", session="a2")["code"]
    db = db_of(app)
    second_id = db.execute("select id from users where username = 'reviewer2'").fetchone()[0]
    curator_id = db.execute("select id from users where username = 'curator9'").fetchone()[0]
    assert _rows(reviewer.get("/staff/tickets?view=mine").get_data(as_text=True)) == []
    assert reviewer.post(f"/staff/tickets/{first}/take").status_code == 302
    mine = reviewer.get("/staff/tickets?view=mine").get_data(as_text=True)
    assert _rows(mine) == [db.execute("select code from tickets where id = ?", [first]).fetchone()[0]]
    assert "我的工单" in mine and other not in _rows(mine)
    page = reviewer.get(f"/staff/tickets/{first}").get_data(as_text=True)
    assert 'id="assignee"' in page and "reviewer2" in page and "curator9" not in page
    assert reviewer.post(f"/staff/tickets/{first}/assign", assignee=str(second_id)).status_code == 302
    assert db.execute("select assigned_to from tickets where id = ?", [first]).fetchone()[0] == second_id
    assert _rows(reviewer.get("/staff/tickets?view=mine").get_data(as_text=True)) == []
    assert "分派给 reviewer2" in reviewer.get(f"/staff/tickets/{first}").get_data(as_text=True)
    for bad, message in ((str(curator_id), "请选择一位办理工单的工作人员"), ("", "请选择一位办理工单的工作人员"),
                         ("abc", "请选择一位办理工单的工作人员"), ("99999", "请选择一位办理工单的工作人员"),
                         (str(second_id), "已由 reviewer2 处理")):
        response = reviewer.post(f"/staff/tickets/{first}/assign", assignee=bad)
        assert response.status_code == 400 and message in response.get_data(as_text=True), bad
    assert reviewer.get("/staff/tickets?view=bogus").status_code == 200


def test_one_reply_answers_every_citizen_who_asked_the_same_question(app, citizen, reviewer) -> None:
    asked = [escalate(citizen, UNANSWERABLE, session=f"g{i}") for i in range(4)]
    ids = [ticket_id(app, t["code"]) for t in asked]
    page = reviewer.get(f"/staff/tickets/{ids[0]}").get_data(as_text=True)
    assert "一并答复相同问题的其他 3 张待处理工单" in page
    response = reviewer.post(f"/staff/tickets/{ids[0]}/reply", reply="由各地住房保障部门规定。", whole_group="1")
    assert response.status_code == 302
    assert "一并答复了 3 张" in reviewer.get(response.headers["Location"]).get_data(as_text=True)
    db = db_of(app)
    assert [r[0] for r in db.execute(f"select status from tickets where id in ({','.join('?' * 4)})", ids)] == \
        ["answered"] * 4
    for t in asked:  # each citizen reads it under their own code and password
        token = csrf_token(citizen, "/tickets")
        found = citizen.post("/tickets", data={"code": t["code"], "password": t["password"], "csrf_token": token})
        assert "由各地住房保障部门规定。" in found.get_data(as_text=True)
    assert "没有符合条件的工单" in reviewer.get("/staff/tickets").get_data(as_text=True)


@pytest.mark.parametrize(("zone", "shown"), [
    (None, "2024-05-01 16:03"), ("Asia/Shanghai", "2024-05-01 16:03"), ("Europe/London", "2024-05-01 09:03"),
    ("Nowhere/Atlantis", "2024-05-01 16:03"),
])
def test_times_are_shown_in_the_configured_zone(app, citizen, reviewer, zone, shown) -> None:
    code = escalate(citizen)["code"]
    db = db_of(app)
    db.execute("update tickets set created = '2024-05-01T08:03:00+00:00' where code = ?", [code])
    if zone:
        app.config["TIME_ZONE"] = zone
    assert shown in reviewer.get("/staff/tickets").get_data(as_text=True)
    assert shown in reviewer.get(f"/staff/tickets/{ticket_id(app, code)}").get_data(as_text=True)
    assert tickets.display_time("2024-05-01T08:03:00+00:00", zone) == shown
    assert tickets.display_time("garbage") == "garbage" and tickets.display_time(None) == ""
