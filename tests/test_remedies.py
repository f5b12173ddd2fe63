"""Review and litigation cases (table 四): counting by year with carry-over, validation, the
exports' merged headings and page size, and the reviewers' screen."""
from __future__ import annotations

import io
import random
from datetime import date, timedelta

import pytest
import sqlite_utils
from docx import Document
from docx.table import _Cell
from openpyxl import load_workbook

from conftest import csrf_token
from service import applications, remedies
from service.migrations import apply_migrations
from service.storage import connect
from service.tickets import new_code, open_ticket

D = date.fromisoformat


def _synthetic(year: int, seed: int = 3) -> list[remedies.Case]:
    rng = random.Random(seed)
    out = []
    for n in range(60):
        kind = rng.choice(list(remedies.KINDS))
        filed = date(year - 1, 6, 1) + timedelta(days=rng.randint(0, 700))
        result = rng.choice(list(remedies.RESULTS))
        decided = filed + timedelta(days=rng.randint(10, 200)) if result != "pending" else None
        out.append(remedies.Case(f"C{n}", kind, filed, result, decided))
    return out


def test_synthetic_year_matches_independent_counts() -> None:
    year = 2025
    cases = _synthetic(year)
    table = remedies.compute(year, cases)
    end = date(year, 12, 31)
    for kind in remedies.KINDS:
        mine = [c for c in cases if c.kind == kind and c.filed <= end]
        for result in remedies.DECIDED:
            assert table.value(kind, result) == sum(1 for c in mine if c.result == result and c.decided.year == year)
        pending = sum(1 for c in mine if c.decided is None or c.decided > end)
        assert table.value(kind, "pending") == pending
        assert table.value(kind, "total") == sum(table.value(kind, c) for c in remedies.COLS[:4])
    assert sum(table.value(k, "pending") for k in remedies.KINDS) > 0


def test_an_open_case_carries_into_the_next_year_until_decided() -> None:
    case = remedies.Case("GK1", "review", D("2024-11-20"), "corrected", D("2026-02-10"))
    assert remedies.compute(2023, [case]).value("review", "total") == 0
    assert remedies.compute(2024, [case]).value("review", "pending") == 1
    assert remedies.compute(2025, [case]).value("review", "pending") == 1
    assert remedies.compute(2026, [case]).value("review", "corrected") == 1
    assert remedies.compute(2026, [case]).value("review", "pending") == 0
    assert remedies.compute(2027, [case]).value("review", "total") == 0


def test_exports_read_back_with_the_national_merges_on_a4() -> None:
    table = remedies.compute(2025, _synthetic(2025))
    for kind, data in [("xlsx", remedies.to_xlsx(table)), ("docx", remedies.to_docx(table))]:
        assert remedies.read_back(data, kind) == table.cells, kind
    sheet = load_workbook(io.BytesIO(remedies.to_xlsx(table))).active
    assert {str(r) for r in sheet.merged_cells.ranges} == {
        "A2:E2", "F2:O2", "A3:A4", "B3:B4", "C3:C4", "D3:D4", "E3:E4", "F3:J3", "K3:O3"}
    assert (sheet["A2"].value, sheet["F2"].value, sheet["F3"].value, sheet["K3"].value) == (
        "行政复议", "行政诉讼", "未经复议直接起诉", "复议后起诉")
    assert int(sheet.page_setup.paperSize) == 9 and sheet.sheet_properties.pageSetUpPr.fitToPage
    doc = Document(io.BytesIO(remedies.to_docx(table)))
    assert (round(doc.sections[0].page_width.cm, 1), round(doc.sections[0].page_height.cm, 1)) == (21.0, 29.7)
    grid = doc.tables[0]
    rows = [[(tc.grid_span, tc.vMerge, _Cell(tc, grid).text) for tc in tr.tc_lst] for tr in grid._tbl.tr_lst]
    assert rows[0] == [(5, None, "行政复议"), (10, None, "行政诉讼")]
    assert rows[1][:5] == [(1, "restart", t) for t in ("结果维持", "结果纠正", "其他结果", "尚未审结", "总计")]
    assert rows[1][5:] == [(5, None, "未经复议直接起诉"), (5, None, "复议后起诉")]
    assert rows[2][:5] == [(1, "continue", "")] * 5 and len(rows[2]) == 15
    assert [int(t) for _, _, t in rows[3]] == [table.value(r, c) for r in remedies.ROWS for c in remedies.COLS]


@pytest.fixture
def db() -> sqlite_utils.Database:
    database = sqlite_utils.Database(memory=True)
    apply_migrations(database)
    return database


def _application(db: sqlite_utils.Database, received: str = "2025-03-01") -> int:
    ticket = open_ticket(db, question="申请公开某项目的审批文件", normalised=new_code(), session=None, candidates=[])
    applications.convert(db, ticket["id"], None, applicant_type="natural", channel="post", received_on=received,
                         today=D("2026-03-01"))
    return int(ticket["id"])


@pytest.mark.parametrize(("fields", "message"), [
    ({"kind": "appeal"}, "请选择案件类型"),
    ({"result": "won"}, "请选择案件结果"),
    ({"filed_on": ""}, "请填写提起"),
    ({"filed_on": "2025-13-01"}, "不是有效日期"),
    ({"filed_on": "2025-02-01"}, "不能早于收到该申请"),
    ({"filed_on": "2026-04-01"}, "不能晚于今天"),
    ({"result": "upheld"}, "请填写审结日期"),
    ({"decided_on": "2025-06-01"}, "尚未审结的案件不填写审结日期"),
    ({"result": "upheld", "decided_on": "2025-04-01"}, "不能早于提起日期"),
    ({"result": "upheld", "decided_on": "2026-04-01"}, "审结日期不能晚于今天"),
    ({"note": "长" * 501}, "备注过长"),
])
def test_bad_cases_are_refused_in_plain_chinese(db, fields, message) -> None:
    tid = _application(db)
    with pytest.raises(remedies.RemedyError, match=message):
        remedies.record(db, tid, None, **{"kind": "review", "filed_on": "2025-05-01", **fields},
                        today=D("2026-03-01"))
    assert db["remedies"].count == 0


def test_only_applications_have_cases(db) -> None:
    ticket = open_ticket(db, question="问一下", normalised="问一下", session=None, candidates=[])
    with pytest.raises(remedies.RemedyError, match="只有政府信息公开申请"):
        remedies.record(db, ticket["id"], None, kind="review", filed_on="2025-05-01", today=D("2026-03-01"))


def test_record_update_and_audit(db) -> None:
    tid = _application(db)
    user = {"id": 1, "username": "li"}
    rid = remedies.record(db, tid, user, kind="litigation_after_review", filed_on="2025-05-01",
                          today=D("2026-03-01"))
    assert remedies.table_for_year(db, 2025).value("litigation_after_review", "pending") == 1
    remedies.update(db, rid, user, kind="litigation_after_review", filed_on="2025-05-01", result="upheld",
                    decided_on="2026-01-15", today=D("2026-03-01"))
    assert remedies.table_for_year(db, 2025).value("litigation_after_review", "pending") == 1
    assert remedies.table_for_year(db, 2026).value("litigation_after_review", "upheld") == 1
    actions = [r["action"] for r in db.query("select action from audit_log where target = ?", [f"remedy:{rid}"])]
    assert actions == ["remedy_create", "remedy_update"]


def test_reviewer_screen_records_updates_and_downloads(app, client, auth) -> None:
    app.config["TODAY"] = D("2026-03-01")
    tid = _application(connect(app.config["DATABASE"]))
    code = connect(app.config["DATABASE"]).execute("select code from tickets where id = ?", [tid]).fetchone()[0]
    auth.login("reviewer1", "reviewer")
    token = csrf_token(client, "/staff/remedies")
    page = client.get(f"/staff/remedies?ticket={tid}").get_data(as_text=True)
    assert "登记案件" in page and code[:4] in page
    bad = client.post("/staff/remedies", data={"csrf_token": token, "ticket": code, "kind": "review",
                                               "filed_on": "not a date"})
    assert bad.status_code == 400 and "不是有效日期" in bad.get_data(as_text=True)
    missing = client.post("/staff/remedies", data={"csrf_token": token, "ticket": "XXXX", "kind": "review",
                                                   "filed_on": "2025-05-01"})
    assert missing.status_code == 400 and "未找到该工单编号" in missing.get_data(as_text=True)
    ok = client.post("/staff/remedies", data={"csrf_token": token, "ticket": code.lower(), "kind": "review",
                                              "filed_on": "2025-05-01", "result": "pending"})
    assert ok.status_code == 302
    rid = connect(app.config["DATABASE"]).execute("select id from remedies").fetchone()[0]
    assert client.get(f"/staff/remedies/{rid}").status_code == 200
    assert client.get("/staff/remedies/99999").status_code == 404
    bad = client.post(f"/staff/remedies/{rid}", data={"csrf_token": token, "kind": "review",
                                                     "filed_on": "2025-05-01", "result": "corrected"})
    assert bad.status_code == 400 and "请填写审结日期" in bad.get_data(as_text=True)
    ok = client.post(f"/staff/remedies/{rid}", data={"csrf_token": token, "kind": "review",
                                                    "filed_on": "2025-05-01", "result": "corrected",
                                                    "decided_on": "2025-09-01"})
    assert ok.status_code == 302
    page = client.get("/staff/remedies?year=2025").get_data(as_text=True)
    assert 'colspan="10"' in page and "复议后起诉" in page
    assert client.get("/staff/remedies?year=abc").status_code == 400
    assert client.get("/staff/remedies/table.xlsx?year=1").status_code == 400
    for kind in ("xlsx", "docx"):
        response = client.get(f"/staff/remedies/table.{kind}?year=2025")
        assert response.status_code == 200
        assert remedies.read_back(response.data, kind)["review"] == {
            "upheld": 0, "corrected": 1, "other": 0, "pending": 0, "total": 1}
    refused = client.post(f"/staff/remedies/{rid}/delete", data={"csrf_token": token})
    assert refused.status_code == 400 and "确认撤销" in refused.get_data(as_text=True)
    assert client.post("/staff/remedies/99999/delete", data={"csrf_token": token, "confirm": "yes"}).status_code == 404
    assert client.post(f"/staff/remedies/{rid}/delete", data={"csrf_token": token, "confirm": "yes"}).status_code == 302
    assert remedies.table_for_year(connect(app.config["DATABASE"]), 2025).value("review", "total") == 0
    assert connect(app.config["DATABASE"]).execute(
        "select count(*) from audit_log where action = 'remedy_delete'").fetchone()[0] == 1


def test_the_cases_page_takes_only_plain_digits_for_a_ticket(client, auth) -> None:
    auth.login("rev1", "reviewer")
    for value in ["²", "9" * 40, "-1", "abc"]:
        assert client.get(f"/staff/remedies?ticket={value}").status_code == 200
