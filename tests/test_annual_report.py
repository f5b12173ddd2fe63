"""The drafted annual report: table 二's form, the desk's figures, the checks, and the round
trip of a synthetic year through the desk's own importer with zero inconsistencies."""
from __future__ import annotations

import io
import random
from datetime import date, timedelta

import pytest
import sqlite_utils
from docx import Document

from conftest import csrf_token
from service import annual_report as ar
from service import annual_table as t3
from service import applications, knowledge, remedies, tickets
from service.migrations import apply_migrations
from service.reports import parse_report
from service.storage import connect
from service.tickets import new_code, open_ticket

YEAR = 2025
TODAY = date(2026, 1, 20)


@pytest.fixture(autouse=True)
def quick_passwords(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Tickets here are never looked up by citizens: skip the deliberately slow password hash."""
    monkeypatch.setattr(tickets, "password_digest", lambda code, password, secret=None: "unused")


def _year_of_applications(db: sqlite_utils.Database, seed: int = 11) -> None:
    """Applications received over the year before and this one, closed with every outcome
    or still open; remedy cases of every kind and result, some still open."""
    rng = random.Random(seed)
    app_ids = []
    for n in range(70):
        ticket = open_ticket(db, question=f"申请公开第{n}号文件", normalised=new_code(), session=None, candidates=[])
        received = date(YEAR - 1, 11, 1) + timedelta(days=rng.randint(0, 440))
        applications.convert(db, ticket["id"], None, applicant_type=rng.choice(t3.APPLICANT_COLS), channel="post",
                             received_on=received, today=TODAY)
        if n < len(t3.OUTCOMES) or rng.random() < 0.7:
            closed = min(received + timedelta(days=rng.randint(1, 40)), TODAY)
            applications.close(db, ticket["id"], None, t3.OUTCOMES[n % len(t3.OUTCOMES)], closed)
        app_ids.append((ticket["id"], received))
    for i, (tid, received) in enumerate(app_ids[:24]):
        kind = list(remedies.KINDS)[i % 3]
        result = list(remedies.RESULTS)[i % 4]
        filed = min(received + timedelta(days=20), TODAY)
        decided = min(filed + timedelta(days=rng.randint(5, 90)), TODAY) if result != "pending" else None
        remedies.record(db, tid, None, kind=kind, filed_on=filed, result=result, decided_on=decided, today=TODAY)


FIGURES = {("rules", "issued"): 2, ("rules", "repealed"): 1, ("rules", "in_force"): 98,
           ("normative_docs", "issued"): 35, ("normative_docs", "in_force"): 1204,
           ("licensing", "decisions"): 1356, ("punishment", "decisions"): 23, ("fees", "amount"): 12345.67}
TEXTS = {"preamble": "本报告由本机关政府信息公开工作机构编制。",
         "一": "本年度，本机关认真贯彻落实《中华人民共和国政府信息公开条例》。\n（一）主动公开。全年主动公开政府信息120条。",
         "五": "政策解读的针对性仍需提高。", "六": "本年度未收取信息处理费。"}


def _check_round_trip(data: bytes, draft: ar.Draft, table3: t3.Table3, table4: remedies.Table4) -> None:
    report = parse_report(data, "draft.docx")
    assert report.problems == []
    assert (report.agency, report.year, report.format) == (draft.agency, draft.year, "2021")
    for row in t3.ROWS:
        for col in t3.COLS:
            assert report.value(row, col, "三") == table3.value(row, col), (row, col)
    for row in remedies.ROWS:
        for col in remedies.COLS:
            assert report.value(row, col, "四") == table4.value(row, col), (row, col)
    for (row, col) in ar.TABLE2_FIELDS:
        assert report.value(row, col, "二") == draft.figures.get((row, col), 0), (row, col)
    assert any("全年主动公开政府信息120条" in p.text for p in report.passages)


def test_a_synthetic_year_drafts_and_reimports_with_zero_inconsistencies(tmp_path) -> None:
    db = sqlite_utils.Database(tmp_path / "t.db")
    apply_migrations(db)
    _year_of_applications(db)
    table3, table4 = applications.table_for_year(db, YEAR), remedies.table_for_year(db, YEAR)
    assert table3.problems == [] and table4.value("review", "total") > 0
    assert sum(table4.value(k, "pending") for k in remedies.KINDS) > 0
    draft = ar.Draft(YEAR, "某市统计局", {k: float(v) for k, v in FIGURES.items()}, TEXTS)
    ar.save(db, draft, None)
    saved = ar.load(db, YEAR)
    assert saved.figures == draft.figures and saved.texts == draft.texts
    assert ar.check(saved, table3, table4) == []
    data = ar.to_docx(saved, table3, table4, ar.desk_figures(db, YEAR, applications.default_calendar()))
    section = Document(io.BytesIO(data)).sections[0]
    assert (round(section.page_width.cm, 1), round(section.page_height.cm, 1)) == (21.0, 29.7)
    _check_round_trip(data, saved, table3, table4)
    assert ar.reimport_problems(data, saved, table3, table4) == []
    # and into the desk's knowledge, as the importer stores it
    report_id, replaced = knowledge.save_report(db, parse_report(data, "draft.docx"), "draft.docx")
    assert report_id and not replaced


def test_the_document_has_the_six_sections_in_order() -> None:
    draft = ar.Draft(YEAR, "某局", {}, {})
    data = ar.to_docx(draft, t3.compute(YEAR, []), remedies.compute(YEAR, []), ar.DeskFigures(YEAR))
    texts = [p.text for p in Document(io.BytesIO(data)).paragraphs]
    assert texts[0] == "某局2025年政府信息公开工作年度报告"
    positions = [texts.index(head) for head in ar.SECTIONS.values()]
    assert positions == sorted(positions)
    assert list(ar.SECTIONS.values())[0] == "一、总体情况" and list(ar.SECTIONS.values())[-1] == "六、其他需要报告的事项"


def test_table_two_is_laid_out_in_its_four_blocks() -> None:
    from docx.table import _Cell

    draft = ar.Draft(YEAR, "某局", {k: float(v) for k, v in FIGURES.items()}, {})
    doc = Document(io.BytesIO(ar.to_docx(draft, t3.compute(YEAR, []), remedies.compute(YEAR, []), ar.DeskFigures(YEAR))))
    grid = doc.tables[0]
    rows = [[(tc.grid_span, _Cell(tc, grid).text) for tc in tr.tc_lst] for tr in grid._tbl.tr_lst]
    assert rows[0] == [(4, "第二十条第（一）项")]
    assert rows[1] == [(1, "信息内容"), (1, "本年制发件数"), (1, "本年废止件数"), (1, "现行有效件数")]
    assert rows[2] == [(1, "规章"), (1, "2"), (1, "1"), (1, "98")]
    assert rows[5] == [(1, "信息内容"), (3, "本年处理决定数量")] and rows[6] == [(1, "行政许可"), (3, "1356")]
    assert rows[-2] == [(1, "信息内容"), (3, "本年收费金额（单位：万元）")] and rows[-1] == [(1, "行政事业性收费"), (3, "12345.67")]


def test_the_checks_are_the_importers() -> None:
    table3 = t3.compute(YEAR, [t3.Application("GK1", "natural", date(YEAR, 3, 1), date(YEAR, 3, 9), None)])
    problems = ar.check(ar.Draft(YEAR, "某局"), table3, remedies.compute(YEAR, []))
    assert any("本年新收（1）" in p for p in problems)  # reports.validate's own message
    assert any("GK1" in p for p in problems)  # and the computation's explanation


@pytest.mark.parametrize(("value", "ok"), [("12", True), ("1,204", True), ("", True), ("-1", False), ("1.5", False),
                                           ("abc", False), ("1e3", False)])
def test_counts_are_whole_numbers(value, ok) -> None:
    form = {ar.field_name("rules", "issued"): value}
    if ok:
        assert ar.parse_figures(form)["rules", "issued"] >= 0
    else:
        with pytest.raises(ar.DraftError, match="规章·本年制发件数"):
            ar.parse_figures(form)


def test_amounts_have_at_most_two_decimals() -> None:
    assert ar.parse_figures({ar.field_name("fees", "amount"): "12345.67"})["fees", "amount"] == 12345.67
    with pytest.raises(ar.DraftError, match="行政事业性收费"):
        ar.parse_figures({ar.field_name("fees", "amount"): "1.234"})


def test_desk_figures_count_what_they_say(tmp_path) -> None:
    db = sqlite_utils.Database(memory=True)
    apply_migrations(db)
    for day, status in [("2025-03-01", "answered"), ("2025-03-01", "escalated"), ("2024-12-31", "answered")]:
        db["ask_daily"].insert({"day": day, "status": status, "kind": "", "entry_id": 0, "n": 2, "latency_ms": 0})
    ids = [open_ticket(db, question=f"问题{i}", normalised=f"问题{i}", session=None, candidates=[])["id"] for i in range(3)]
    # opened Monday 2025-03-03 09:00 Beijing, replied Thursday: 3 working days; one rated 满意
    db.execute("update tickets set created = '2025-03-03T01:00:00+00:00', replied_at = '2025-03-06T02:00:00+00:00' "
               "where id in (?, ?)", ids[:2])
    db.execute("update tickets set satisfaction = 'satisfied' where id = ?", [ids[0]])
    db.execute("update tickets set created = '2024-12-30T01:00:00+00:00', replied_at = null where id = ?", [ids[2]])
    figures = ar.desk_figures(db, 2025, applications.default_calendar())
    assert (figures.questions, figures.answered, figures.tickets, figures.replied) == (4, 2, 2, 2)
    assert figures.mean_workdays == 3.0 and (figures.rated, figures.satisfied) == (1, 1)
    text = ar.desk_paragraph(figures)
    assert "收到群众提问4个" in text and "占50.0%" in text and "平均用时3个工作日" in text and "占100.0%" in text


def test_the_draft_screen_saves_refuses_and_downloads(app, client, auth) -> None:
    app.config["TODAY"] = TODAY
    db = connect(app.config["DATABASE"])
    _year_of_applications(db)
    auth.login("reviewer1", "reviewer")
    token = csrf_token(client, f"/staff/annual-report?year={YEAR}")
    assert client.get("/staff/annual-report?year=abc").status_code == 400
    assert client.get("/staff/annual-report.docx?year=99").status_code == 400
    form = {"csrf_token": token, "agency": "某市统计局", **{f"text-{k}": v for k, v in TEXTS.items()},
            **{ar.field_name(r, c): f"{v:g}" for (r, c), v in FIGURES.items()}}
    bad = client.post(f"/staff/annual-report?year={YEAR}", data={**form, ar.field_name("rules", "issued"): "两件"})
    assert bad.status_code == 400 and "规章·本年制发件数" in bad.get_data(as_text=True)
    assert "两件" in bad.get_data(as_text=True)  # the form keeps what was typed
    no_agency = client.post(f"/staff/annual-report?year={YEAR}", data={**form, "agency": " "})
    assert no_agency.status_code == 400 and "请填写发布机关名称" in no_agency.get_data(as_text=True)
    assert client.post(f"/staff/annual-report?year={YEAR}", data=form).status_code == 302
    # next year's page shows this year's figures beside the form
    page = client.get(f"/staff/annual-report?year={YEAR + 1}").get_data(as_text=True)
    assert f"右列为{YEAR}年已填报数据" in page and "1356" in page
    page = client.get(f"/staff/annual-report?year={YEAR}").get_data(as_text=True)
    assert "数据校验通过" in page and "收到群众提问" in page
    response = client.get(f"/staff/annual-report.docx?year={YEAR}")
    assert response.status_code == 200
    draft = ar.load(db, YEAR)
    _check_round_trip(response.data, draft, applications.table_for_year(db, YEAR), remedies.table_for_year(db, YEAR))
    assert db.execute("select count(*) from audit_log where action = 'annual_report_save'").fetchone()[0] == 1


def test_the_reimport_check_says_what_reads_differently() -> None:
    table3, table4 = t3.compute(YEAR, []), remedies.compute(YEAR, [])
    draft = ar.Draft(YEAR, "某局", {("rules", "issued"): 3.0}, {})
    data = ar.to_docx(draft, table3, table4, ar.DeskFigures(YEAR))
    assert ar.reimport_problems(data, draft, table3, table4) == []
    other = ar.Draft(YEAR, "某局", {("rules", "issued"): 4.0}, {})
    assert ar.reimport_problems(data, other, table3, table4) == ["导入时表二“规章·本年制发件数”读为3，草稿为4。"]
    renamed = ar.Draft(YEAR, "关于某局", {("rules", "issued"): 3.0}, {})
    data = ar.to_docx(renamed, table3, table4, ar.DeskFigures(YEAR))
    assert any("请调整机关名称" in p for p in ar.reimport_problems(data, renamed, table3, table4))
