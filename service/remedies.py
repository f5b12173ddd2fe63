"""Administrative review and litigation over disclosure applications, and table 四 (no Flask).

A reviewer records that an application led to 行政复议 or to 行政诉讼 (未经复议直接起诉 or
复议后起诉), the date it was filed, and its result (维持 / 纠正 / 其他) with the date it was
decided; a case without a result is 尚未审结. Table 四 of year Y counts:

* the cases decided in Y, by result;
* the cases filed up to Y and not decided by 31 December of Y, as 尚未审结: they carry into
  the next year's table until they are decided.

A case decided before Y does not appear in Y's table. 总计 of each kind is the sum of its
four result columns, the rule :func:`service.reports.validate` checks.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Iterable

import sqlite_utils

from .accounts import audit
from .annual_table import Cell, Printed, a4_document, add_printed_docx, add_printed_xlsx, xlsx_rows
from .knowledge import now
from .reports import TABLE4_COLS, TABLE4_ROWS
from .storage import immediate

KINDS: dict[str, str] = {
    "review": "行政复议",
    "litigation_direct": "行政诉讼（未经复议直接起诉）",
    "litigation_after_review": "行政诉讼（复议后起诉）",
}
RESULTS: dict[str, str] = {"upheld": "维持", "corrected": "纠正", "other": "其他", "pending": "尚未审结"}
DECIDED = ("upheld", "corrected", "other")
ROWS = tuple(TABLE4_ROWS)  # review, litigation_direct, litigation_after_review
COLS = tuple(TABLE4_COLS)  # upheld, corrected, other, pending, total
NOTE_MAX = 500


class RemedyError(Exception):
    """A remedy case the rules refuse; the message is plain Chinese."""


@dataclass
class Case:
    """What table 四 needs of one case."""

    ref: str  # ticket code, for explanations
    kind: str  # one of KINDS
    filed: date
    result: str = "pending"  # one of RESULTS
    decided: date | None = None


@dataclass
class Table4:
    """Table 四 for one year: cells[kind][result column]."""

    year: int
    cells: dict[str, dict[str, int]]
    problems: list[str] = field(default_factory=list)

    def value(self, row: str, col: str) -> int:
        """One cell."""
        return self.cells[row][col]


def compute(year: int, cases: Iterable[Case]) -> Table4:
    """Count the cases into table 四 for ``year`` (see the module's docstring)."""
    cells = {row: {col: 0 for col in COLS} for row in ROWS}
    problems: list[str] = []
    start, end = date(year, 1, 1), date(year, 12, 31)
    for case in cases:
        if case.kind not in KINDS:
            problems.append(f"案件（申请 {case.ref}）的类型无效（{case.kind}），未计入。")
            continue
        if case.filed > end:
            continue
        decided = case.result in DECIDED and case.decided is not None
        if decided and case.decided < start:  # type: ignore[operator]
            continue  # finished in an earlier year
        column = case.result if decided and case.decided <= end else "pending"  # type: ignore[operator]
        cells[case.kind][column] += 1
        cells[case.kind]["total"] += 1
    return Table4(year, cells, problems)


# -- storage ---------------------------------------------------------------------------------


def _date(value: str | date | None, what: str) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise RemedyError(f"{what}不是有效日期（应为 YYYY-MM-DD）。") from exc


def _check(db: sqlite_utils.Database, ticket_id: int, kind: str, filed_on: str | date | None, result: str,
           decided_on: str | date | None, note: str, today: date) -> dict[str, Any]:
    """The validated row, or :class:`RemedyError` saying what is wrong."""
    ticket = db.execute("select kind, received_on from tickets where id = ?", [ticket_id]).fetchone()
    if ticket is None:
        raise RemedyError("工单不存在。")
    if ticket[0] != "application" or not ticket[1]:
        raise RemedyError("只有政府信息公开申请才能登记行政复议或行政诉讼。")
    if kind not in KINDS:
        raise RemedyError("请选择案件类型：行政复议、行政诉讼（未经复议直接起诉）或行政诉讼（复议后起诉）。")
    if result not in RESULTS:
        raise RemedyError("请选择案件结果：维持、纠正、其他或尚未审结。")
    filed = _date(filed_on, "立案（提起）日期")
    if filed is None:
        raise RemedyError("请填写提起行政复议或行政诉讼的日期。")
    if filed > today:
        raise RemedyError("提起日期不能晚于今天。")
    if filed < date.fromisoformat(ticket[1]):
        raise RemedyError("提起日期不能早于收到该申请的日期。")
    decided = _date(decided_on, "审结日期")
    if result == "pending" and decided is not None:
        raise RemedyError("尚未审结的案件不填写审结日期；已审结的，请选择结果（维持、纠正或其他）。")
    if result != "pending":
        if decided is None:
            raise RemedyError("已审结的案件请填写审结日期。")
        if decided < filed:
            raise RemedyError("审结日期不能早于提起日期。")
        if decided > today:
            raise RemedyError("审结日期不能晚于今天。")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise RemedyError(f"备注过长（不超过{NOTE_MAX}字）。")
    return {"ticket_id": ticket_id, "kind": kind, "filed_on": filed.isoformat(), "result": result,
            "decided_on": decided.isoformat() if decided else None, "note": note}


def record(db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any] | None, *, kind: str,
           filed_on: str | date | None, result: str = "pending", decided_on: str | date | None = None,
           note: str = "", today: date | None = None) -> int:
    """Record a new case for an application ticket; return its id."""
    with immediate(db):
        row = _check(db, ticket_id, kind, filed_on, result, decided_on, note, today or date.today())
        stamp = now()
        remedy_id = db["remedies"].insert({**row, "created": stamp, "updated": stamp,
                                           "updated_by": user["username"] if user else None}).last_pk
        audit(db, user, "remedy_create", f"remedy:{remedy_id}", after=row)
    return int(remedy_id)


def update(db: sqlite_utils.Database, remedy_id: int, user: dict[str, Any] | None, *, kind: str,
           filed_on: str | date | None, result: str, decided_on: str | date | None = None, note: str = "",
           today: date | None = None) -> None:
    """Change a case (its result once decided, or a correction)."""
    with immediate(db):
        before = get(db, remedy_id)
        row = _check(db, before["ticket_id"], kind, filed_on, result, decided_on, note, today or date.today())
        db["remedies"].update(remedy_id, {**row, "updated": now(),
                                          "updated_by": user["username"] if user else None})
        audit(db, user, "remedy_update", f"remedy:{remedy_id}",
              before={k: before[k] for k in row}, after=row)


def remove(db: sqlite_utils.Database, remedy_id: int, user: dict[str, Any] | None) -> None:
    """Withdraw a case recorded in error (the audit log keeps what it was)."""
    with immediate(db):
        before = get(db, remedy_id)
        db.execute("delete from remedies where id = ?", [remedy_id])
        audit(db, user, "remedy_delete", f"remedy:{remedy_id}",
              before={k: before[k] for k in ("ticket_id", "kind", "filed_on", "result", "decided_on", "note")})


def get(db: sqlite_utils.Database, remedy_id: int) -> dict[str, Any]:
    """One case with its ticket's code, or :class:`RemedyError`."""
    rows = list(db.query("select r.*, t.code from remedies r join tickets t on t.id = r.ticket_id "
                         "where r.id = ?", [remedy_id]))
    if not rows:
        raise RemedyError("案件不存在。")
    return rows[0]


def listing(db: sqlite_utils.Database, ticket_id: int | None = None) -> list[dict[str, Any]]:
    """Cases (of one ticket, or all), open ones first, newest filing first."""
    where, args = ("where r.ticket_id = ?", [ticket_id]) if ticket_id is not None else ("", [])
    return list(db.query(f"select r.*, t.code from remedies r join tickets t on t.id = r.ticket_id {where} "
                         "order by r.result != 'pending', r.filed_on desc, r.id desc", args))


def cases(db: sqlite_utils.Database) -> list[Case]:
    """Every recorded case, for :func:`compute`."""
    return [Case(r["code"], r["kind"], date.fromisoformat(r["filed_on"]), r["result"],
                 date.fromisoformat(r["decided_on"]) if r["decided_on"] else None) for r in listing(db)]


def table_for_year(db: sqlite_utils.Database, year: int) -> Table4:
    """Table 四 for ``year`` from every recorded case."""
    return compute(year, cases(db))


# -- the printed table -----------------------------------------------------------------------
HEADER_REVIEW, HEADER_LITIGATION = "行政复议", "行政诉讼"
SUB_HEADERS = {"litigation_direct": "未经复议直接起诉", "litigation_after_review": "复议后起诉"}


def printed(table: Table4) -> Printed:
    """Table 四 in the national layout: 行政复议 over five columns whose labels span two rows,
    行政诉讼 over ten, 未经复议直接起诉 and 复议后起诉 over five each, then one row of 15."""
    labels = list(TABLE4_COLS.values())
    cells = [Cell(0, 0, HEADER_REVIEW, colspan=5), Cell(0, 5, HEADER_LITIGATION, colspan=10),
             *(Cell(1, i, label, rowspan=2) for i, label in enumerate(labels)),
             Cell(1, 5, SUB_HEADERS["litigation_direct"], colspan=5),
             Cell(1, 10, SUB_HEADERS["litigation_after_review"], colspan=5),
             *(Cell(2, 5 + i, label) for i, label in enumerate(labels * 2))]
    cells += [Cell(3, r * 5 + c, table.value(row, col), header=False)
              for r, row in enumerate(ROWS) for c, col in enumerate(COLS)]
    return Printed(4, 15, cells)


TITLE = "四、政府信息公开行政复议、行政诉讼情况"


def to_xlsx(table: Table4) -> bytes:
    """Table 四 as an Excel workbook (A4, merged headings)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = f"{table.year}年表四"
    sheet.append([f"{TITLE}（{table.year}年）"])
    sheet["A1"].font = Font(bold=True, size=12)
    add_printed_xlsx(sheet, printed(table), top=2)
    sheet.page_setup.orientation = "landscape"  # fifteen columns
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def to_docx(table: Table4) -> bytes:
    """Table 四 as a Word document (A4) laid out like the report's table 四."""
    doc = a4_document()
    doc.add_paragraph(f"{TITLE}（{table.year}年）")
    add_printed_docx(doc, printed(table), font_pt=8)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def read_rows(rows: list[list[str]]) -> dict[str, dict[str, int]]:
    """The row of fifteen numbers of a printed table 四, by kind and column."""
    for values in rows:
        tail = [v.strip() for v in values[-15:]]
        if len(tail) == 15 and all(v.isascii() and v.isdigit() for v in tail):
            numbers = [int(v) for v in tail]
            return {row: dict(zip(COLS, numbers[r * 5:r * 5 + 5])) for r, row in enumerate(ROWS)}
    return {}


def read_back(data: bytes, kind: str) -> dict[str, dict[str, int]]:
    """Cells of an exported table 四 (for tests and for checking a file before pasting)."""
    if kind == "xlsx":
        return read_rows(xlsx_rows(data))
    from docx import Document

    from .annual_table import docx_rows

    return read_rows(docx_rows(Document(io.BytesIO(data)).tables[0]))
