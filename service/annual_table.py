"""Table 三 of the annual report, computed from the year's disclosure applications (no Flask).

Rows and columns are those of the national format (国办公开办函〔2021〕30号), as in
:mod:`service.reports`. For a year Y:

* 一、本年新收: applications received in Y;
* 二、上年结转: applications received before Y and still open on 1 January of Y;
* 三、本年度办理结果: applications closed in Y, by outcome;
* 四、结转下年度继续办理: applications received up to Y and still open on 31 December of Y.

The table's own rule (第一项 + 第二项 = 第三项总计 + 第四项, per column) is checked, and
each break is explained by the applications that cause it.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Iterable

from .reports import TABLE3_COLS, TABLE3_ORG_COLS, TABLE3_ROWS

APPLICANT_COLS = ("natural", *TABLE3_ORG_COLS)  # the six columns before 总计
COLS = (*APPLICANT_COLS, "total")
ROWS = tuple(TABLE3_ROWS)  # the 25 rows of the 2021 format, in order
# The 22 outcome rows an application can be closed with.
OUTCOMES = tuple(r for r in ROWS if r not in ("new", "carried_in", "outcome_total", "carried_out"))


@dataclass
class Application:
    """What the table needs of one application."""

    ref: str  # ticket code, for explanations
    applicant: str  # one of APPLICANT_COLS
    received: date
    closed: date | None = None
    outcome: str | None = None  # one of OUTCOMES once closed


@dataclass
class Table3:
    """The computed table and the explanation of any inconsistency."""

    year: int
    cells: dict[str, dict[str, int]]
    problems: list[str] = field(default_factory=list)

    def value(self, row: str, col: str) -> int:
        """One cell."""
        return self.cells[row][col]


def compute(year: int, applications: Iterable[Application]) -> Table3:
    """Count the applications into table 三 for ``year``."""
    cells = {row: {col: 0 for col in COLS} for row in ROWS}
    problems: list[str] = []
    start, end = date(year, 1, 1), date(year, 12, 31)

    def add(row: str, col: str) -> None:
        cells[row][col] += 1
        cells[row]["total"] += 1

    for app in applications:
        if app.applicant not in APPLICANT_COLS:
            problems.append(f"申请 {app.ref} 的申请人类型无效（{app.applicant}），未计入。")
            continue
        if app.received > end:
            continue
        open_at_start = app.received < start and (app.closed is None or app.closed >= start)
        if app.received < start and not open_at_start:
            continue  # finished in an earlier year
        add("new" if app.received >= start else "carried_in", app.applicant)
        if app.closed is not None and app.closed <= end:
            if app.outcome in OUTCOMES:
                add(app.outcome, app.applicant)
                add("outcome_total", app.applicant)
            else:
                problems.append(f"申请 {app.ref} 已于{app.closed.isoformat()}办结，但没有记录办理结果，"
                                "未计入“本年度办理结果”，因此第一项与第二项之和多于第三项与第四项之和。")
        else:
            add("carried_out", app.applicant)
    problems += check(cells)
    return Table3(year, cells, problems)


def check(cells: dict[str, dict[str, int]]) -> list[str]:
    """The rule printed on table 三, column by column."""
    out = []
    for col in COLS:
        left = cells["new"][col] + cells["carried_in"][col]
        right = cells["outcome_total"][col] + cells["carried_out"][col]
        if left != right:
            out.append(f"“{TABLE3_COLS[col]}”列：第一项加第二项为{left}，第三项总计加第四项为{right}，两者不等。")
    return out


# -- layout shared by the HTML page and the exports ----------------------------------------
HEADER_TOP = ["", "申请人情况", "", "", "", "", "", ""]
HEADER_MID = ["", "自然人", "法人或其他组织", "", "", "", "", "总计"]
HEADER_LOW = ["", "", "商业企业", "科研机构", "社会公益组织", "法律服务机构", "其他", ""]
NOTE = "（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）"


def row_label(row: str) -> str:
    """The row's label as printed in the report, e.g. "（三）不予公开 1.属于国家秘密"."""
    return TABLE3_ROWS[row].replace("·", " ")


def layout(table: Table3) -> list[list[Any]]:
    """The table as printed: three header rows, then one row per table row."""
    rows: list[list[Any]] = [HEADER_TOP, HEADER_MID, HEADER_LOW]
    for row in ROWS:
        rows.append([row_label(row), *(table.value(row, col) for col in COLS)])
    return rows


def to_xlsx(table: Table3) -> bytes:
    """The table as an Excel workbook laid out like the report's table 三."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    sheet = book.active
    sheet.title = f"{table.year}年表三"
    sheet.append([f"三、收到和处理政府信息公开申请情况（{table.year}年）"])
    sheet.append([NOTE])
    for row in layout(table):
        sheet.append(row)
    sheet.merge_cells(start_row=3, start_column=2, end_row=3, end_column=8)
    sheet.merge_cells(start_row=4, start_column=3, end_row=4, end_column=7)
    sheet.merge_cells(start_row=4, start_column=2, end_row=5, end_column=2)
    sheet.merge_cells(start_row=4, start_column=8, end_row=5, end_column=8)
    sheet.column_dimensions["A"].width = 60
    for cell in sheet[3] + sheet[4] + sheet[5]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def to_docx(table: Table3) -> bytes:
    """The table as a Word document laid out like the report's table 三."""
    from docx import Document

    doc = Document()
    doc.add_paragraph(f"三、收到和处理政府信息公开申请情况（{table.year}年）")
    rows = layout(table)
    grid = doc.add_table(rows=len(rows), cols=8)
    grid.style = "Table Grid"
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            grid.cell(r, c).text = str(value)
    grid.cell(0, 1).merge(grid.cell(0, 7)).text = "申请人情况"
    grid.cell(1, 2).merge(grid.cell(1, 6)).text = "法人或其他组织"
    grid.cell(1, 1).merge(grid.cell(2, 1)).text = "自然人"
    grid.cell(1, 7).merge(grid.cell(2, 7)).text = "总计"
    grid.cell(0, 0).text = NOTE
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def read_back(data: bytes, kind: str) -> dict[str, dict[str, int]]:
    """Cells of an exported table (for tests and for checking a file before pasting)."""
    labels = {row_label(row): row for row in ROWS}
    found: dict[str, dict[str, int]] = {}
    if kind == "xlsx":
        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(data)).active
        rows = [[c.value for c in r] for r in sheet.iter_rows()]
    else:
        from docx import Document

        rows = [[c.text for c in r.cells] for r in Document(io.BytesIO(data)).tables[0].rows]
    for values in rows:
        if values and values[0] in labels:
            found[labels[values[0]]] = {col: int(v) for col, v in zip(COLS, values[1:8])}
    return found


CN = "一二三四五六七八九十"  # the numbering of the printed table: （一）, （二）…
# An outcome as reviewers choose it: 不予公开：属于国家秘密.
OUTCOME_LABELS = {k: TABLE3_ROWS[k].replace("本年度办理结果·", "").replace("·", "：") for k in OUTCOMES}


def outcome_groups() -> list[dict[str, Any]]:
    """The outcomes of table 三 in its groups (予以公开 … 其他处理), numbered as printed."""
    groups: dict[str, dict[str, Any]] = {}
    for key in OUTCOMES:
        _, group, *item = TABLE3_ROWS[key].split("·")
        entry = groups.setdefault(group, {"name": group, "number": CN[len(groups)], "items": []})
        entry["items"].append({"key": key, "item": item[0] if item else "", "label": OUTCOME_LABELS[key]})
    for entry in groups.values():
        for n, item in enumerate(entry["items"], 1):
            item["text"] = f"{n}.{item['item']}" if item["item"] else entry["name"]
    return list(groups.values())
