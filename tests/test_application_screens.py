"""The screens for formal disclosure applications: the ticket page's 办理类型 panel, the queue's
deadlines, table 三 of the annual report and its downloads, and the citizen's lookup.

Due dates were counted by hand in tests/test_deadlines.py (Spring Festival and Qingming 2026).
"""
from __future__ import annotations

import re
from datetime import date

import pytest

from conftest import csrf_token, routes_of
from service import annual_table
from service.storage import connect
from service.tickets import display_code

UNANSWERABLE = "贵单位食堂今年的菜谱能公开吗？"


def db_of(app):  # type: ignore[no-untyped-def]
    return connect(app.config["DATABASE"])


@pytest.fixture
def citizen(app):  # type: ignore[no-untyped-def]
    """A second browser: the citizen's, with no staff session."""
    return app.test_client()


class Staff:
    """The test client logged in as staff; ``post(path, **form)`` sends a form with its token."""

    def __init__(self, client):  # type: ignore[no-untyped-def]
        self.client = client
        self.token = csrf_token(client, "/staff/")

    def get(self, path: str):  # type: ignore[no-untyped-def]
        return self.client.get(path)

    def page(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)

    def post(self, path: str, data=None, **form):  # type: ignore[no-untyped-def]
        return self.client.post(path, data={**(data or {}), **form, "csrf_token": self.token})


@pytest.fixture
def reviewer(app, client, auth):  # type: ignore[no-untyped-def]
    auth.login("reviewer1", "reviewer")
    app.config["TODAY"] = date(2026, 3, 5)
    return Staff(client)


def new_ticket(citizen, session: str) -> dict:  # type: ignore[no-untyped-def]
    """A ticket escalated by a citizen: {id, code, password}."""
    body = citizen.post("/api/ask", json={"question": UNANSWERABLE, "session": session}).get_json()
    assert body["status"] == "escalated", body
    ticket = body["ticket"]
    ticket["id"] = db_of(citizen.application).execute("select id from tickets where code = ?",
                                                      [ticket["code"]]).fetchone()[0]
    return ticket


def convert(reviewer, tid: int, received_on: str, applicant_type: str = "business", channel: str = "post"):  # type: ignore[no-untyped-def]
    response = reviewer.post(f"/staff/tickets/{tid}/application", applicant_type=applicant_type,
                             channel=channel, received_on=received_on)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def field(page: str, name: str) -> str:
    """The text of the element with id ``name`` (tags stripped, spaces collapsed)."""
    match = re.search(rf'<(\w+)[^>]*\bid="{name}"[^>]*>(.*?)</\1>', page, re.S)
    assert match, name
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(2)).split())


def errors_of(page: str) -> str:
    match = re.search(r'<p class="error" role="alert">(.*?)</p>', page, re.S)
    return match.group(1) if match else ""


def test_converting_through_the_form_shows_the_due_date(app, citizen, reviewer) -> None:
    tid = new_ticket(citizen, "c1")["id"]
    page = reviewer.page(f"/staff/tickets/{tid}")
    assert "办理类型" in page and "未分类" in page and "转为政府信息公开申请" in page
    for hint in ("以提交之日为收到之日", "以签收之日为收到之日", "以双方确认之日为收到之日", "第三十一条"):
        assert hint in page
    for label in ("自然人", "商业企业", "科研机构", "社会公益组织", "法律服务机构", "其他"):
        assert f">{label}" in page

    convert(reviewer, tid, "2026-02-06")
    page = reviewer.page(f"/staff/tickets/{tid}")
    assert field(page, "app-received") == "2026-02-06"
    assert field(page, "app-due") == "2026-03-12"
    assert field(page, "app-notice-due") == "2026-02-24"  # 7 working days, with 14 Feb worked
    # "Today" is Thu 5 Mar: 6, 9, 10, 11, 12 Mar are left.
    assert field(page, "app-days-left") == "即将到期 还剩 5 个工作日"
    assert "<dt>申请人类型</dt><dd>商业企业</dd>" in page and "以签收之日为收到之日" in page
    assert "转为政府信息公开申请：商业企业" in page  # the history, with its label
    row = next(db_of(app).query("select * from tickets where id = ?", [tid]))
    assert (row["kind"], row["applicant_type"], row["channel"], row["received_on"]) == \
        ("application", "business", "post", "2026-02-06")
    audited = db_of(app).execute("select action, username, before, after from audit_log where target = ?",
                                 [f"ticket:{tid}"]).fetchall()
    assert [(a[0], a[1]) for a in audited] == [("application_convert", "reviewer1")]
    assert '"kind": null' in audited[0][2] and '"kind": "application"' in audited[0][3]


def test_supplement_extension_and_consultation_move_the_due_date(app, citizen, reviewer) -> None:
    tid = new_ticket(citizen, "c1")["id"]
    convert(reviewer, tid, "2026-02-06")
    base = f"/staff/tickets/{tid}/application"

    assert reviewer.post(f"{base}/supplement", requested_on="2026-02-10",
                         supplement_note="请明确所需文件的名称").status_code == 302
    page = reviewer.page(f"/staff/tickets/{tid}")
    assert field(page, "app-due") == "暂停计时：等待申请人补正，答复期限暂停计算"
    assert "等待申请人补正" in page and "请明确所需文件的名称" in page

    assert reviewer.post(f"{base}/supplement/received", supplement_on="2026-03-16").status_code == 302
    # 20 working days from Mon 16 Mar, Qingming (4-6 Apr) off.
    assert field(reviewer.page(f"/staff/tickets/{tid}"), "app-due") == "2026-04-14"

    assert reviewer.post(f"{base}/extend", days="5", reason="需要调取历史档案").status_code == 302
    page = reviewer.page(f"/staff/tickets/{tid}")
    # 15, 16, 17, 20, 21 Apr.
    assert field(page, "app-due") == "2026-04-21" and "延长 5 个工作日" in page and "需要调取历史档案" in page
    again = reviewer.post(f"{base}/extend", days="3", reason="再延长")
    assert again.status_code == 400 and "只能延长一次" in errors_of(again.get_data(as_text=True))
    assert field(again.get_data(as_text=True), "app-due") == "2026-04-21"

    assert reviewer.post(f"{base}/pause", pause_kind="third_party", pause_on="2026-03-20",
                         pause_reason="涉及企业商业秘密").status_code == 302
    page = reviewer.page(f"/staff/tickets/{tid}")
    assert field(page, "app-due") == "暂停计时：征求第三方意见期间不计入答复期限"
    assert "征求第三方意见：2026-03-20 至 今（尚未返回）" in page and "涉及企业商业秘密" in page
    assert "意见返回" in page and 'name="pause_kind"' not in page

    assert reviewer.post(f"{base}/resume", resume_on="2026-03-27").status_code == 302
    page = reviewer.page(f"/staff/tickets/{tid}")
    # 23-27 Mar (5 working days) not counted: 21 Apr + 5 working days = 28 Apr.
    assert field(page, "app-due") == "2026-04-28"
    assert "征求第三方意见：2026-03-20 至 2026-03-27" in page
    for label in ("告知补正", "收到补正", "延长答复期限", "暂停计时（征求意见）", "意见返回，恢复计时"):
        assert label in page
    actions = [r[0] for r in db_of(app).execute("select action from audit_log where target = ? order by id",
                                                 [f"ticket:{tid}"])]
    assert actions == ["application_convert", "application_supplement_requested",
                       "application_supplement_received", "application_extend", "application_pause",
                       "application_resume"]


@pytest.mark.parametrize(("path", "form", "message"), [
    ("application", {"applicant_type": "", "channel": "post", "received_on": "2026-02-06"}, "请选择申请人类型"),
    ("application", {"applicant_type": "natural", "channel": "pigeon", "received_on": "2026-02-06"}, "提交方式"),
    ("application", {"applicant_type": "natural", "channel": "post", "received_on": "2026-02-30"}, "不是有效日期"),
    ("application", {"applicant_type": "natural", "channel": "post", "received_on": ""}, "不是有效日期"),
    ("application/extend", {"days": "21", "reason": "档案多"}, "延长期限应为1至20个工作日"),
    ("application/extend", {"days": "abc", "reason": "档案多"}, "延长期限应为1至20个工作日"),
    ("application/extend", {"days": "5", "reason": " "}, "请填写延长理由"),
    ("application/supplement", {"requested_on": "2026-02-01"}, "不能早于收到申请日期"),
    ("application/supplement/received", {"supplement_on": "2026-03-01"}, "尚未告知补正"),
    ("application/pause", {"pause_kind": "astrologer", "pause_on": "2026-02-10"}, "暂停类型无效"),
    ("application/resume", {"resume_on": "2026-03-01"}, "没有未结束的暂停"),
])
def test_refused_changes_show_the_page_with_the_reason(app, citizen, reviewer, path: str, form: dict,
                                                       message: str) -> None:
    tid = new_ticket(citizen, "c1")["id"]
    convert(reviewer, tid, "2026-02-06")
    before = next(db_of(app).query("select * from tickets where id = ?", [tid]))
    response = reviewer.post(f"/staff/tickets/{tid}/{path}", **form)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and message in errors_of(page), errors_of(page)
    assert "办理类型" in page  # the ticket page again, not an error page
    assert next(db_of(app).query("select * from tickets where id = ?", [tid])) == before
    assert db_of(app).execute("select count(*) from audit_log where target = ?", [f"ticket:{tid}"]).fetchone()[0] == 1


def test_closing_requires_exactly_one_valid_outcome(app, citizen, reviewer) -> None:
    tid = new_ticket(citizen, "c1")["id"]
    convert(reviewer, tid, "2026-02-06")
    page = reviewer.page(f"/staff/tickets/{tid}")
    groups = re.findall(r'<optgroup label="([^"]+)">', page)
    assert groups == ["（一）予以公开", "（二）部分公开", "（三）不予公开", "（四）无法提供", "（五）不予处理", "（六）其他处理"]
    options = re.findall(r'<option value="([a-z_0-9]+)"[^>]*>', page.split('id="outcome"')[1].split("</select>")[0])
    assert options == list(annual_table.OUTCOMES)

    close = f"/staff/tickets/{tid}/application/close"
    for form, message in [({"outcome": "", "closed_on": "2026-03-02"}, "请选择一项办理结果"),
                          ({"closed_on": "2026-03-02"}, "请选择一项办理结果"),
                          ({"outcome": "bogus", "closed_on": "2026-03-02"}, "请选择一项办理结果"),
                          ({"outcome": ["disclosed", "partial"], "closed_on": "2026-03-02"}, "只能选择一项"),
                          ({"outcome": "disclosed", "closed_on": "2026-02-01"}, "不能早于收到申请日期"),
                          ({"outcome": "disclosed", "closed_on": "昨天"}, "不是有效日期")]:
        response = reviewer.post(close, **form)
        assert response.status_code == 400 and message in errors_of(response.get_data(as_text=True)), form
    assert db_of(app).execute("select outcome, status from tickets where id = ?", [tid]).fetchone() == (None, "new")

    for reply in (None, "", "   "):  # the citizen must have a reply to read
        form = {"outcome": "withheld_4", "closed_on": "2026-03-02", **({} if reply is None else {"reply": reply})}
        response = reviewer.post(close, **form)
        assert response.status_code == 400 and "请填写给申请人的答复" in errors_of(response.get_data(as_text=True))
    response = reviewer.post(close, outcome="withheld_4", closed_on="2026-03-02", reply="答" * 2001)
    assert response.status_code == 400 and "不能超过2000字" in errors_of(response.get_data(as_text=True))
    assert db_of(app).execute("select outcome, status from tickets where id = ?", [tid]).fetchone() == (None, "new")
    reply = "经审查，您申请的信息涉及第三方合法权益，第三方不同意公开，决定不予公开。"
    assert reviewer.post(close, outcome="withheld_4", closed_on="2026-03-02", reply=reply).status_code == 302
    assert db_of(app).execute("select reply from tickets where id = ?", [tid]).fetchone()[0] == reply
    row = next(db_of(app).query("select outcome, outcome_on, status from tickets where id = ?", [tid]))
    assert row == {"outcome": "withheld_4", "outcome_on": "2026-03-02", "status": "closed"}
    page = reviewer.page(f"/staff/tickets/{tid}")
    assert field(page, "app-outcome") == "不予公开：保护第三方合法权益（2026-03-02 办结）"
    assert 'id="outcome"' not in page and "已办结" in page and "办结申请" in page  # the form is gone, the history stays
    again = reviewer.post(close, outcome="disclosed", closed_on="2026-03-03")
    assert again.status_code == 400 and "已办结" in errors_of(again.get_data(as_text=True))


def test_a_closed_application_without_outcome_is_impossible_through_the_ui(app, citizen, reviewer) -> None:
    db = db_of(app)
    tid = new_ticket(citizen, "c1")["id"]
    convert(reviewer, tid, "2026-02-06")
    page = reviewer.page(f"/staff/tickets/{tid}")
    assert 'value="closed"' not in page and ">关闭工单<" not in page and "不能直接关闭" in page
    for path, form in [(f"/staff/tickets/{tid}/close", {}), (f"/staff/tickets/{tid}/status", {"status": "closed"})]:
        response = reviewer.post(path, **form)
        assert response.status_code == 400 and "选择办理结果后办结" in errors_of(response.get_data(as_text=True))
    # Other status changes still work.
    assert reviewer.post(f"/staff/tickets/{tid}/status", status="in_progress").status_code == 302

    # A closed inquiry cannot become an application without being reopened.
    other = new_ticket(citizen, "c2")["id"]
    assert reviewer.post(f"/staff/tickets/{other}/close").status_code == 302
    assert "请先将状态改为“处理中”" in reviewer.page(f"/staff/tickets/{other}")
    response = reviewer.post(f"/staff/tickets/{other}/application", applicant_type="natural", channel="post",
                             received_on="2026-02-06")
    assert response.status_code == 400 and "工单已关闭" in errors_of(response.get_data(as_text=True))
    assert db.execute("select count(*) from tickets where kind = 'application' and status = 'closed' "
                      "and outcome is null").fetchone()[0] == 0
    assert db.execute("select kind from tickets where id = ?", [other]).fetchone()[0] is None


def _codes(page: str) -> list[str]:
    """The codes listed, as stored (the page shows them grouped: GK7Q-3M9X-A2RT)."""
    return [c.replace("-", "") for c in re.findall(r'class="ticket-code">(GK[0-9A-Z]{2}-[0-9A-Z]{4}-[0-9A-Z]{4})<', page)]


def _row_of(page: str, code: str) -> str:
    return next(chunk for chunk in page.split("<tr")[1:] if display_code(code) in chunk)


def test_queue_lists_overdue_applications_first_and_marks_those_due_soon(app, citizen, reviewer) -> None:
    db = db_of(app)
    names = ["overdue", "soon", "later", "inquiry", "unclassified", "done"]
    t = {name: new_ticket(citizen, name) for name in names}
    for day, name in enumerate(names, 1):  # created in this order: the overdue one is the oldest
        db.execute("update tickets set created = ? where id = ?", [f"2026-01-0{day}T08:00:00+00:00", t[name]["id"]])
    app.config["TODAY"] = date(2026, 3, 16)  # Monday
    convert(reviewer, t["overdue"]["id"], "2026-02-06")  # due Thu 12 Mar
    convert(reviewer, t["soon"]["id"], "2026-02-13")  # due Thu 19 Mar
    convert(reviewer, t["later"]["id"], "2026-03-13")  # due Mon 13 Apr
    convert(reviewer, t["done"]["id"], "2026-01-05")  # closed: never overdue
    assert reviewer.post(f"/staff/tickets/{t['done']['id']}/application/close", outcome="disclosed",
                         closed_on="2026-01-20", reply="您申请的信息予以公开。").status_code == 302
    assert reviewer.post(f"/staff/tickets/{t['inquiry']['id']}/inquiry").status_code == 302

    code = {name: t[name]["code"] for name in names}
    page = reviewer.page("/staff/tickets")
    assert _codes(page) == [code[n] for n in ("overdue", "unclassified", "inquiry", "later", "soon")]
    overdue, soon, later = (_row_of(page, code[n]) for n in ("overdue", "soon", "later"))
    assert 'class="overdue"' in overdue and "已逾期" in overdue and "2 个工作日" in overdue
    assert 'class="due-soon"' in soon and "即将到期" in soon and "期限 2026-03-19" in soon
    assert "已逾期" not in later and "即将到期" not in later and "期限 2026-04-13" in later
    assert "一般咨询" in _row_of(page, code["inquiry"]) and "未分类" in _row_of(page, code["unclassified"])
    assert "剩余工作日" in page and "/staff/applications/table" in page

    assert _codes(reviewer.page("/staff/tickets?order=oldest")) == \
        [code[n] for n in ("overdue", "soon", "later", "inquiry", "unclassified")]
    assert _codes(reviewer.page("/staff/tickets?kind=application&order=oldest")) == \
        [code[n] for n in ("overdue", "soon", "later")]
    assert _codes(reviewer.page("/staff/tickets?kind=inquiry")) == [code["inquiry"]]
    assert _codes(reviewer.page("/staff/tickets?kind=unclassified")) == [code["unclassified"]]
    everything = reviewer.page("/staff/tickets?status=all&kind=application&order=oldest")
    assert _codes(everything) == [code[n] for n in ("overdue", "soon", "later", "done")]
    assert "已办结" in _row_of(everything, code["done"]) and "已逾期" not in _row_of(everything, code["done"])
    # An unknown type falls back to all.
    assert len(_codes(reviewer.page("/staff/tickets?kind=bogus"))) == 5


def test_a_date_the_calendar_does_not_know_is_explained_not_a_500(app, citizen, reviewer) -> None:
    ticket = new_ticket(citizen, "c1")
    tid = ticket["id"]
    app.config["TODAY"] = date(2026, 11, 25)
    convert(reviewer, tid, "2026-11-20")  # due Fri 18 Dec 2026
    assert field(reviewer.page(f"/staff/tickets/{tid}"), "app-due") == "2026-12-18"
    # Twenty more working days reach into 2027, whose holidays are not known yet.
    assert reviewer.post(f"/staff/tickets/{tid}/application/extend", days="20",
                         reason="需要调取多个年度的档案").status_code == 302
    page = reviewer.page(f"/staff/tickets/{tid}")
    assert "尚未收录" in page and "holidays.toml" in page
    assert field(page, "app-due") == "无法计算" and field(page, "app-days-left") == "日历未覆盖"
    assert "日历未覆盖" in _row_of(reviewer.page("/staff/tickets"), ticket["code"])
    token = csrf_token(citizen, "/tickets")
    response = citizen.post("/tickets", data={"code": ticket["code"], "password": ticket["password"],
                                              "csrf_token": token})
    assert response.status_code == 200 and "节假日安排尚未公布" in field(response.get_data(as_text=True), "app-due")


def lookup(client, code: str, password: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/tickets")
    return client.post("/tickets", data={"code": code, "password": password, "csrf_token": token})


def test_the_citizen_sees_receipt_due_date_extension_consultation_and_outcome(app, citizen, reviewer) -> None:
    ticket = new_ticket(citizen, "c1")
    tid, base = ticket["id"], f"/staff/tickets/{ticket['id']}/application"
    page = lookup(citizen, ticket["code"], ticket["password"]).get_data(as_text=True)
    assert "政府信息公开申请办理情况" not in page  # not an application yet

    convert(reviewer, tid, "2026-02-06", applicant_type="natural", channel="in_person")
    page = lookup(citizen, ticket["code"], ticket["password"]).get_data(as_text=True)
    assert "2026-02-06" in field(page, "app-received") and "当面提交" in field(page, "app-received")
    assert field(page, "app-due") == "2026-03-12前"

    assert reviewer.post(f"{base}/extend", days="10", reason="需要调取多个年度的档案").status_code == 302
    assert reviewer.post(f"{base}/pause", pause_kind="consultation", pause_on="2026-03-02",
                         pause_reason="需征求其他部门意见").status_code == 302
    page = lookup(citizen, ticket["code"], ticket["password"]).get_data(as_text=True)
    assert "暂停计算" in field(page, "app-due") and "征求其他机关意见" in page and "尚在进行" in page
    assert reviewer.post(f"{base}/resume", resume_on="2026-03-04").status_code == 302
    assert reviewer.post(f"{base}/close", outcome="partial", closed_on="2026-03-20",
                         reply="部分公开：所需信息的一部分属于第三方商业秘密。").status_code == 302

    response = lookup(citizen, ticket["code"], ticket["password"])
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    # 12 Mar + 10 working days = 26 Mar; 3-4 Mar paused adds two: Mon 30 Mar.
    assert field(page, "app-due") == "2026-03-30前"
    assert "延长10个工作日" in page and "需要调取多个年度的档案" in page
    assert "2026-03-02起至2026-03-04" in page and "需征求其他部门意见" in page
    assert field(page, "app-outcome") == "部分公开（2026-03-20办结）"
    assert "reviewer1" not in page

    wrong = "000000" if ticket["password"] != "000000" else "111111"
    response = lookup(citizen, ticket["code"], wrong)
    page = response.get_data(as_text=True)
    assert response.status_code == 403 and "编号或查询密码不正确" in page
    assert "政府信息公开申请办理情况" not in page and "需要调取多个年度的档案" not in page


def test_the_citizen_sees_a_supplement_request(app, citizen, reviewer) -> None:
    ticket = new_ticket(citizen, "c1")
    convert(reviewer, ticket["id"], "2026-02-06")
    assert reviewer.post(f"/staff/tickets/{ticket['id']}/application/supplement",
                         requested_on="2026-02-10").status_code == 302
    page = lookup(citizen, ticket["code"], ticket["password"]).get_data(as_text=True)
    assert "2026-02-10告知您补正" in page and "等待申请人补正" in field(page, "app-due")


# (received, closed, outcome, applicant type) of applications entered through the forms
SPECS = [
    ("2025-06-02", "2025-06-20", "partial", "legal_services"),  # all in 2025
    ("2025-12-22", "2026-01-12", "disclosed", "natural"),  # carried into 2026
    ("2025-11-03", None, None, "natural"),  # open across both years
    ("2026-01-15", "2026-02-02", "unavailable_1", "public_interest"),
    ("2026-02-06", "2026-03-05", "withheld_4", "business"),
    ("2026-02-09", "2026-03-02", "disclosed", "business"),
    ("2026-03-02", None, None, "research"),
    ("2026-04-01", "2026-04-20", "not_processed_2", "natural"),
    ("2026-05-06", "2026-05-08", "other_3", "other"),
]


def expected_table(year: int) -> dict[str, dict[str, int]]:
    """Table 三 counted straight from SPECS, the way the report's notes define each row."""
    cells = {row: {col: 0 for col in annual_table.COLS} for row in annual_table.ROWS}

    def bump(row: str, col: str) -> None:
        cells[row][col] += 1
        cells[row]["total"] += 1

    for received, closed, outcome, col in SPECS:
        r_year, c_year = int(received[:4]), int(closed[:4]) if closed else None
        if r_year > year or (c_year is not None and c_year < year):
            continue
        bump("new" if r_year == year else "carried_in", col)
        if c_year == year:
            bump(outcome, col)
            bump("outcome_total", col)
        else:
            bump("carried_out", col)
    return cells


def page_table(page: str) -> dict[str, dict[str, int]]:
    out = {}
    for key, body in re.findall(r'<tr data-row="([a-z_0-9]+)">(.*?)</tr>', page, re.S):
        values = [int(v) for v in re.findall(r"<td [^>]*>(\d+)</td>", body)]
        out[key] = dict(zip(annual_table.COLS, values, strict=True))
    return out


def test_the_annual_table_counts_the_applications_and_downloads_read_back_equal(app, citizen, reviewer) -> None:
    app.config["TODAY"] = date(2026, 6, 30)
    for n, (received, closed, outcome, col) in enumerate(SPECS):
        tid = new_ticket(citizen, f"s{n}")["id"]
        convert(reviewer, tid, received, applicant_type=col, channel="online")
        if closed:
            response = reviewer.post(f"/staff/tickets/{tid}/application/close", outcome=outcome, closed_on=closed,
                                     reply="您申请的信息已作出答复，请查收书面答复。")
            assert response.status_code == 302
    for year in (2025, 2026):
        expected = expected_table(year)
        page = reviewer.page(f"/staff/applications/table?year={year}")
        assert page_table(page) == expected, year
        assert "勾稽关系校验通过" in page and "未通过" not in page
        for kind, mimetype in [("xlsx", "spreadsheetml"), ("docx", "wordprocessingml")]:
            response = reviewer.get(f"/staff/applications/table.{kind}?year={year}")
            assert response.status_code == 200 and mimetype in response.mimetype
            disposition = response.headers["Content-Disposition"]
            assert disposition.startswith("attachment;") and "filename*=UTF-8''" in disposition
            assert f"{year}%E5%B9%B4" in disposition  # "2026年", percent-encoded
            assert annual_table.read_back(response.data, kind) == expected, (year, kind)
    expected = expected_table(2026)
    assert expected["carried_in"]["total"] == 2 and expected["new"]["total"] == 6
    assert expected["carried_out"]["total"] == 2 and expected["disclosed"]["business"] == 1

    page = reviewer.page("/staff/applications/table?year=2026")
    # The national layout: three header rows, then 一 to 四 with the outcome groups.
    for text in ("申请人情况", "自然人", "法人或其他组织", "商业企业", "科研机构", "社会公益组织", "法律服务机构",
                 "总计", "一、本年新收政府信息公开申请数量", "二、上年结转政府信息公开申请数量", "三、本年度办理结果",
                 "（一）予以公开", "（二）部分公开（区分处理的，只计这一情形，不计其他情形）", "（三）不予公开",
                 "1.属于国家秘密", "8.属于行政查询事项", "（六）其他处理", "（七）总计", "四、结转下年度继续办理"):
        assert text in page, text
    assert list(page_table(page)) == list(annual_table.ROWS)
    assert 'rowspan="22"' in page and 'headers="r-outcome r-group-2 r-withheld_1 c-applicant c-org c-business"' in page
    assert 'href="/staff/applications/table.xlsx?year=2026"' in page
    assert 'href="/staff/applications/table.docx?year=2026"' in page
    assert 'value="2026" selected' in page
    assert page_table(reviewer.page("/staff/applications/table")) == expected  # this year by default


def test_the_annual_table_explains_a_broken_rule_and_refuses_a_bad_year(app, citizen, reviewer) -> None:
    tid = new_ticket(citizen, "c1")["id"]
    convert(reviewer, tid, "2026-02-06", applicant_type="natural")
    # Only a damaged database can hold this: the forms cannot close without an outcome.
    db_of(app).execute("update tickets set applicant_type = 'alien' where id = ?", [tid])
    page = reviewer.page("/staff/applications/table?year=2026")
    assert "勾稽关系校验未通过" in page and "申请人类型无效" in page and "勾稽关系校验通过" not in page
    for path in ("/staff/applications/table?year=abc", "/staff/applications/table.xlsx?year=1999",
                 "/staff/applications/table.docx?year=20260"):
        response = reviewer.get(path)
        assert response.status_code == 400 and "年份无效" in response.get_data(as_text=True), path




def test_only_reviewers_and_admins_handle_applications(app, client, auth, citizen) -> None:
    new_ticket(citizen, "c1")
    routes = (routes_of(app, "applications.") + routes_of(app, "annual.") + routes_of(app, "remedies.")
              + routes_of(app, "report."))
    assert len(routes) == 21
    for method, path in routes:  # anonymous: sent to the login page
        data = {"csrf_token": csrf_token(client, "/staff/login")} if method == "POST" else None
        response = client.open(path, method=method, data=data)
        assert response.status_code == 302 and "/staff/login" in response.headers["Location"], (method, path)
    auth.login("curator1", "curator")
    token = csrf_token(client, "/staff/")
    form = {"csrf_token": token, "applicant_type": "natural", "channel": "post", "received_on": "2026-02-06",
            "outcome": "disclosed", "closed_on": "2026-03-01", "days": "5", "reason": "x"}
    for method, path in [*routes, ("GET", "/staff/tickets"), ("GET", "/staff/tickets/1")]:
        response = client.open(path, method=method, data=form if method == "POST" else None)
        assert response.status_code == 403, (method, path)
    assert db_of(app).execute("select kind from tickets").fetchone()[0] is None
    assert db_of(app).execute("select count(*) from audit_log where target like 'ticket:%'").fetchone()[0] == 0
    auth.logout()
    auth.login("admin1", "admin")
    for path in ("/staff/applications/table?year=2026", "/staff/applications/table.xlsx?year=2026"):
        assert client.get(path).status_code == 200, path


def test_application_pages_have_no_inline_script_or_style_and_every_form_its_token(app, citizen, reviewer) -> None:
    tid = new_ticket(citizen, "c1")["id"]
    unclassified = reviewer.page(f"/staff/tickets/{tid}")
    convert(reviewer, tid, "2026-02-06")
    for page in (unclassified, reviewer.page(f"/staff/tickets/{tid}"), reviewer.page("/staff/tickets"),
                 reviewer.page("/staff/applications/table?year=2026")):
        assert "style=" not in page and "<style" not in page
        assert not re.search(r"<script(?![^>]*\bsrc=)", page)
        assert page.count('method="post"') == page.count('name="csrf_token"')


def test_a_change_and_its_audit_row_commit_together(app, citizen, reviewer, monkeypatch) -> None:
    import sqlite3

    from service.views import staff_review as review

    t = new_ticket(citizen, "audit-atomic")

    def failing_audit(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(review, "audit", failing_audit)
    response = reviewer.post(f"/staff/tickets/{t['id']}/application", applicant_type="natural",
                             channel="post", received_on="2026-02-06")
    assert response.status_code == 500
    row = connect(app.config["DATABASE"]).execute("select kind from tickets where id = ?", [t["id"]]).fetchone()
    assert row[0] != "application"  # the change was rolled back with its audit row
