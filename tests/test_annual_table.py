"""Table 三 generated from applications: synthetic year, the seed's 2021 figures, exports."""
from __future__ import annotations

import io
import random
from datetime import date, timedelta
from pathlib import Path

from docx import Document
from docx.table import _Cell
from openpyxl import load_workbook

from service import annual_table as t3
from service.reports import parse_report

ROOT = Path(__file__).resolve().parent.parent


def _synthetic(year: int, seed: int = 7) -> list[t3.Application]:
    rng = random.Random(seed)
    apps = []
    n = 0
    # every outcome row and applicant column at least once, in the year
    for outcome in t3.OUTCOMES:
        for col in t3.APPLICANT_COLS:
            for _ in range(rng.randint(1, 2)):
                received = date(year, 1, 1) + timedelta(days=rng.randint(0, 330))
                apps.append(t3.Application(f"A{n}", col, received, received + timedelta(days=rng.randint(1, 30)), outcome))
                n += 1
    # carried over from the year before, closed this year
    for col in t3.APPLICANT_COLS[:3]:
        apps.append(t3.Application(f"B{n}", col, date(year - 1, 12, 20), date(year, 1, 10), "disclosed"))
        n += 1
    # received late this year, still open (carried into the next year)
    for col in t3.APPLICANT_COLS[2:]:
        apps.append(t3.Application(f"C{n}", col, date(year, 12, 28), None, None))
        apps.append(t3.Application(f"D{n}", col, date(year, 12, 15), date(year + 1, 1, 5), "partial"))
        n += 1
    # noise that must not count: finished last year, received next year
    apps.append(t3.Application("E1", "natural", date(year - 1, 3, 1), date(year - 1, 3, 20), "disclosed"))
    apps.append(t3.Application("E2", "natural", date(year + 1, 1, 2), None, None))
    return apps


def test_synthetic_year_matches_independent_counts_and_the_rule() -> None:
    year = 2025
    apps = _synthetic(year)
    table = t3.compute(year, apps)
    assert table.problems == []
    for col in t3.APPLICANT_COLS:
        mine = [a for a in apps if a.applicant == col]
        new = sum(1 for a in mine if a.received.year == year)
        carried_in = sum(1 for a in mine if a.received.year < year and (a.closed is None or a.closed.year >= year))
        closed = [a for a in mine if a.received.year <= year and a.closed and a.closed.year == year]
        carried_out = sum(1 for a in mine if a.received.year <= year and (a.closed is None or a.closed.year > year))
        assert table.value("new", col) == new
        assert table.value("carried_in", col) == carried_in
        assert table.value("outcome_total", col) == len(closed)
        assert table.value("carried_out", col) == carried_out
        for outcome in t3.OUTCOMES:
            assert table.value(outcome, col) == sum(1 for a in closed if a.outcome == outcome)
        assert new + carried_in == len(closed) + carried_out
    assert table.value("carried_in", "total") == 3 and table.value("carried_out", "total") == 8
    assert all(table.value(o, "total") >= 1 for o in t3.OUTCOMES)


def test_a_closed_application_without_outcome_is_explained() -> None:
    apps = [t3.Application("GK1", "natural", date(2025, 3, 1), date(2025, 3, 20), None)]
    table = t3.compute(2025, apps)
    assert any("GK1" in p and "没有记录办理结果" in p for p in table.problems)
    assert any("第一项加第二项为1" in p for p in table.problems)


def test_the_seed_2021_figures_are_reproduced_cell_for_cell() -> None:
    seed = parse_report((ROOT / "knowledge" / "reports" / "nbs-2021-disclosure-report.txt").read_bytes(), "nbs.txt")
    apps, n = [], 0
    for outcome in t3.OUTCOMES:
        for col in t3.APPLICANT_COLS:
            for _ in range(int(seed.value(outcome, col, "三") or 0)):
                apps.append(t3.Application(f"S{n}", col, date(2021, 3, 1), date(2021, 3, 20), outcome))
                n += 1
    table = t3.compute(2021, apps)
    assert table.problems == []
    for row in t3.ROWS:
        for col in t3.COLS:
            assert table.value(row, col) == int(seed.value(row, col, "三") or 0), (row, col)


def test_exports_read_back_equal() -> None:
    table = t3.compute(2025, _synthetic(2025))
    for kind, data in [("xlsx", t3.to_xlsx(table)), ("docx", t3.to_docx(table))]:
        back = t3.read_back(data, kind)
        assert set(back) == set(t3.ROWS), kind
        for row in t3.ROWS:
            assert back[row] == table.cells[row], (kind, row)


def _docx_spans(table) -> list[list[tuple[int, str | None, str]]]:  # type: ignore[no-untyped-def]
    """Each written cell of a Word table: (gridSpan, vMerge, text)."""
    return [[(tc.grid_span, tc.vMerge, _Cell(tc, table).text) for tc in tr.tc_lst] for tr in table._tbl.tr_lst]


def test_xlsx_has_the_national_merges_and_prints_on_a4() -> None:
    sheet = load_workbook(io.BytesIO(t3.to_xlsx(t3.compute(2025, _synthetic(2025))))).active
    merged = {str(r) for r in sheet.merged_cells.ranges}
    # header: the note in the 3×3 corner, 申请人情况 over 7 columns, 法人或其他组织 over 5,
    # 自然人 and 总计 over two rows; rows: 一/二/四 over three columns, 三 over its 22 rows,
    # （三）不予公开 over its 8 items, （四）无法提供 3, （五）不予处理 5, （六）其他处理 3.
    assert merged == {"A2:C4", "D2:J2", "E3:I3", "D3:D4", "J3:J4", "A5:C5", "A6:C6", "A7:A28", "B7:C7", "B8:C8",
                      "B9:B16", "B17:B19", "B20:B24", "B25:B27", "B28:C28", "A29:C29"}
    assert sheet["A2"].value == t3.NOTE and sheet["D2"].value == "申请人情况"
    assert sheet["A7"].value == "三、本年度办理结果" and sheet["B9"].value == "（三）不予公开"
    assert sheet["C9"].value == "1.属于国家秘密" and sheet["B28"].value == "（七）总计"
    assert int(sheet.page_setup.paperSize) == 9  # A4 in the OOXML paper size list
    assert sheet.page_setup.fitToWidth == 1 and sheet.sheet_properties.pageSetUpPr.fitToPage


def test_docx_has_the_national_merges_on_a4() -> None:
    doc = Document(io.BytesIO(t3.to_docx(t3.compute(2025, _synthetic(2025)))))
    section = doc.sections[0]
    assert round(section.page_width.cm, 1) == 21.0 and round(section.page_height.cm, 1) == 29.7
    assert 1.5 <= section.left_margin.cm <= 3.5 and 1.5 <= section.top_margin.cm <= 4
    rows = _docx_spans(doc.tables[0])
    assert rows[0] == [(3, "restart", t3.NOTE), (7, None, "申请人情况")]
    assert rows[1][0] == (3, "continue", "") and rows[1][1:] == [(1, "restart", "自然人"), (5, None, "法人或其他组织"),
                                                                 (1, "restart", "总计")]
    assert rows[3][0] == (3, None, "一、本年新收政府信息公开申请数量")
    assert rows[5][:2] == [(1, "restart", "三、本年度办理结果"), (2, None, "（一）予以公开")]
    assert rows[7][:3] == [(1, "continue", ""), (1, "restart", "（三）不予公开"), (1, None, "1.属于国家秘密")]
    assert rows[8][:3] == [(1, "continue", ""), (1, "continue", ""), (1, None, "2.其他法律行政法规禁止公开")]
    assert rows[26][:2] == [(1, "continue", ""), (2, None, "（七）总计")]
    assert rows[27][0] == (3, None, "四、结转下年度继续办理")
    # every row fills the ten grid columns
    assert all(sum(span for span, _, _ in row) == 10 for row in rows)
    # the outcome heading covers 22 rows: 21 outcomes and the total
    assert sum(1 for row in rows if row[0][:2] == (1, "continue")) == 21


def test_docx_table_reads_like_a_report_table() -> None:
    """The importer reads the exported table 三 cell for cell (its own reading of merges)."""
    table = t3.compute(2025, _synthetic(2025))
    doc = Document(io.BytesIO(t3.to_docx(table)))
    doc.paragraphs[0].insert_paragraph_before("某局2025年政府信息公开工作年度报告")
    out = io.BytesIO()
    doc.save(out)
    report = parse_report(out.getvalue(), "t.docx")
    assert report.problems == []
    for row in t3.ROWS:
        for col in t3.COLS:
            assert report.value(row, col, "三") == table.value(row, col), (row, col)
