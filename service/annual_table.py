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
# The 21 outcome rows an application can be closed with.
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
PARTIAL_NOTE = "（区分处理的，只计这一情形，不计其他情形）"
LABEL_COLS = 3  # the printed table's row headings take three columns


def row_label(row: str) -> str:
    """The row's label as a flat string, e.g. "本年度办理结果 不予公开 属于国家秘密"."""
    return TABLE3_ROWS[row].replace("·", " ")


def layout(table: Table3) -> list[list[Any]]:
    """The table flattened: three header rows, then one row per table row (label, 7 numbers)."""
    rows: list[list[Any]] = [HEADER_TOP, HEADER_MID, HEADER_LOW]
    for row in ROWS:
        rows.append([row_label(row), *(table.value(row, col) for col in COLS)])
    return rows


@dataclass
class Cell:
    """One printed cell of a table with merged headings: its top-left position and spans."""

    row: int
    col: int
    text: Any
    rowspan: int = 1
    colspan: int = 1
    header: bool = True


@dataclass
class Printed:
    """A table as the report prints it: size, the cells that are written, and which printed
    label (the innermost heading of a data row) names which row key."""

    n_rows: int
    n_cols: int
    cells: list[Cell]
    keys: dict[str, str] = field(default_factory=dict)  # innermost label -> row key


def row_headings() -> list[tuple[str, list[Cell]]]:
    """The row headings of table 三 as printed, per row key, with positions relative to the
    first data row: 三、本年度办理结果 spans its 22 rows, （三）不予公开 spans its items…"""
    out: list[tuple[str, list[Cell]]] = []
    out.append(("new", [Cell(0, 0, f"一、{TABLE3_ROWS['new']}", colspan=3)]))
    out.append(("carried_in", [Cell(1, 0, f"二、{TABLE3_ROWS['carried_in']}", colspan=3)]))
    r = 2
    groups = outcome_groups()
    heading = TABLE3_ROWS[OUTCOMES[0]].split("·")[0]
    for g_index, group in enumerate(groups):
        for i_index, item in enumerate(group["items"]):
            heads = []
            if g_index == 0 and i_index == 0:
                heads.append(Cell(r, 0, f"三、{heading}", rowspan=len(OUTCOMES) + 1))
            name = f"（{group['number']}）{group['name']}"
            if not item["item"]:
                heads.append(Cell(r, 1, name + (PARTIAL_NOTE if item["key"] == "partial" else ""), colspan=2))
            else:
                if i_index == 0:
                    heads.append(Cell(r, 1, name, rowspan=len(group["items"])))
                heads.append(Cell(r, 2, item["text"]))
            out.append((item["key"], heads))
            r += 1
    out.append(("outcome_total", [Cell(r, 1, f"（{CN[len(groups)]}）总计", colspan=2)]))
    out.append(("carried_out", [Cell(r + 1, 0, f"四、{TABLE3_ROWS['carried_out']}", colspan=3)]))
    return out


def printed(table: Table3) -> Printed:
    """Table 三 in the national layout: the note in the corner (3×3), 申请人情况 over seven
    columns, 自然人 and 总计 over two rows, 法人或其他组织 over five, then the 25 rows."""
    cells = [Cell(0, 0, NOTE, rowspan=3, colspan=LABEL_COLS), Cell(0, 3, HEADER_TOP[1], colspan=7),
             Cell(1, 3, HEADER_MID[1], rowspan=2), Cell(1, 4, HEADER_MID[2], colspan=5),
             Cell(1, 9, HEADER_MID[7], rowspan=2),
             *(Cell(2, 4 + i, label) for i, label in enumerate(HEADER_LOW[2:7]))]
    keys: dict[str, str] = {}
    for key, heads in row_headings():
        for head in heads:
            cells.append(Cell(head.row + 3, head.col, head.text, head.rowspan, head.colspan))
        r = heads[-1].row + 3
        keys[str(heads[-1].text)] = key
        cells += [Cell(r, LABEL_COLS + i, table.value(key, col), header=False) for i, col in enumerate(COLS)]
    return Printed(3 + len(ROWS), LABEL_COLS + len(COLS), cells, keys)


# -- writing a printed table into a workbook or a document (table 三 and table 四) -----------
A4_WIDTH_CM, A4_HEIGHT_CM = 21.0, 29.7
MARGIN_CM = 2.5


def a4_document():  # type: ignore[no-untyped-def]
    """A new Word document on A4 portrait with 2.5 cm margins, Chinese text in 宋体."""
    from docx import Document
    from docx.oxml.ns import qn
    from docx.shared import Cm

    doc = Document()
    # Without an East Asian font Word picks one by locale; reports are set in 宋体.
    doc.styles["Normal"].element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), "宋体")
    for section in doc.sections:
        section.page_width, section.page_height = Cm(A4_WIDTH_CM), Cm(A4_HEIGHT_CM)
        section.top_margin = section.bottom_margin = Cm(MARGIN_CM)
        section.left_margin = section.right_margin = Cm(MARGIN_CM)
    return doc


def add_printed_docx(doc, grid: Printed, font_pt: float = 9) -> None:  # type: ignore[no-untyped-def]
    """Append ``grid`` to a Word document as a table with real merges (gridSpan, vMerge)."""
    from docx.enum.table import WD_CELL_VERTICAL_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    table = doc.add_table(rows=grid.n_rows, cols=grid.n_cols)
    table.style = "Table Grid"
    # The cells before any merge, read once (table.cell() reads the whole grid each call).
    # The printed regions never overlap, so each region's corners survive the others' merges.
    flat = table._cells
    before = [flat[r * grid.n_cols:(r + 1) * grid.n_cols] for r in range(grid.n_rows)]
    for cell in grid.cells:
        target = before[cell.row][cell.col]
        if cell.rowspan > 1 or cell.colspan > 1:
            target = target.merge(before[cell.row + cell.rowspan - 1][cell.col + cell.colspan - 1])
        target.text = str(cell.text)
        target.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.CENTER
        for paragraph in target.paragraphs:
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
            for run in paragraph.runs:
                run.font.size = Pt(font_pt)
                run.bold = cell.header and cell.row < 3 and not cell.text == NOTE


def add_printed_xlsx(sheet, grid: Printed, top: int = 1) -> None:  # type: ignore[no-untyped-def]
    """Write ``grid`` into a worksheet from row ``top`` with merged ranges, A4 fit to width."""
    from openpyxl.styles import Alignment, Border, Font, Side

    thin = Side(style="thin")
    for cell in grid.cells:
        r, c = top + cell.row, 1 + cell.col
        if cell.rowspan > 1 or cell.colspan > 1:
            sheet.merge_cells(start_row=r, start_column=c, end_row=r + cell.rowspan - 1,
                              end_column=c + cell.colspan - 1)
        target = sheet.cell(row=r, column=c, value=cell.text)
        target.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        if cell.header and cell.row < 3:
            target.font = Font(bold=True)
    for row in sheet.iter_rows(min_row=top, max_row=top + grid.n_rows - 1, max_col=grid.n_cols):
        for target in row:
            target.border = Border(left=thin, right=thin, top=thin, bottom=thin)
    sheet.page_setup.paperSize = 9  # A4 (sheet.PAPERSIZE_A4 is the string "9")
    sheet.page_setup.orientation = "portrait"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True


def to_xlsx(table: Table3) -> bytes:
    """The table as an Excel workbook laid out like the report's table 三 (A4, merged headings)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = f"{table.year}年表三"
    sheet.append([f"三、收到和处理政府信息公开申请情况（{table.year}年）"])
    sheet["A1"].font = Font(bold=True, size=12)
    add_printed_xlsx(sheet, printed(table), top=2)
    for letter, width in zip("ABCDEFGHIJ", (10, 12, 26, *([9] * 7))):
        sheet.column_dimensions[letter].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def to_docx(table: Table3) -> bytes:
    """The table as a Word document (A4) laid out like the report's table 三."""
    doc = a4_document()
    doc.add_paragraph(f"三、收到和处理政府信息公开申请情况（{table.year}年）")
    add_printed_docx(doc, printed(table))
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def docx_rows(table) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """A Word table's rows, one entry per cell as written (a horizontal merge once, a
    vertical continuation as ""), the way the report importer reads them."""
    from docx.table import _Cell

    return [["" if tc.vMerge == "continue" else _Cell(tc, table).text for tc in tr.tc_lst]
            for tr in table._tbl.tr_lst]


def xlsx_rows(data: bytes) -> list[list[str]]:
    """The first sheet's rows as text, a merged range's covered cells as ""."""
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(data)).active
    return [["" if c.value is None else str(c.value) for c in r] for r in sheet.iter_rows()]


def read_rows(rows: list[list[str]], keys: dict[str, str], width: int) -> dict[str, list[int]]:
    """Data rows found by their innermost printed heading: key -> the last ``width`` numbers."""
    found: dict[str, list[int]] = {}
    for values in rows:
        tail = [v.strip() for v in values[-width:]]
        labels = [v.strip() for v in values[:-width] if v and v.strip()]
        if len(tail) == width and labels and all(v.isascii() and v.isdigit() for v in tail) and labels[-1] in keys:
            found[keys[labels[-1]]] = [int(v) for v in tail]
    return found


def read_back(data: bytes, kind: str) -> dict[str, dict[str, int]]:
    """Cells of an exported table (for tests and for checking a file before pasting)."""
    keys = printed(compute(2000, [])).keys
    if kind == "xlsx":
        rows = xlsx_rows(data)
    else:
        from docx import Document

        rows = docx_rows(Document(io.BytesIO(data)).tables[0])
    return {key: dict(zip(COLS, values)) for key, values in read_rows(rows, keys, len(COLS)).items()}


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
