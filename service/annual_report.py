"""The year's 政府信息公开工作年度报告, drafted (no Flask).

Staff enter table 二's figures (主动公开政府信息情况) and the narrative of each section;
table 三 is computed from the applications (:mod:`service.annual_table`) and table 四 from
the review and litigation cases (:mod:`service.remedies`); section 一 opens with the desk's
own figures for the year, computed from the database (:func:`desk_figures`). The draft is
checked by the importer's own rules (:func:`service.reports.validate`) and written as an A4
.docx in the six sections of the national format, the way the published reports lay them
out (tests/data/reports/mof-2022.docx), so that the desk's importer reads it back.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import sqlite_utils

from . import annual_table, remedies
from .accounts import audit
from .annual_table import Cell, Printed, a4_document, add_printed_docx
from .deadlines import CalendarRangeError, WorkCalendar
from .knowledge import now
from .reports import (TABLE2_COLS, TABLE2_ROWS, TABLE2_UNITS, TABLE3_COLS, TABLE3_ROWS, TABLE4_COLS, TABLE4_ROWS,
                      TABLE_SECTIONS, Fact, ReportFormatError, parse_report, validate)
from .storage import immediate

#: The six sections of the national format (国办公开办函〔2021〕30号), as reports print them.
SECTIONS: dict[str, str] = {
    "一": "一、总体情况",
    "二": TABLE_SECTIONS["二"],
    "三": TABLE_SECTIONS["三"],
    "四": TABLE_SECTIONS["四"],
    "五": "五、存在的主要问题及改进情况",
    "六": "六、其他需要报告的事项",
}
#: Narrative blocks staff write: the preamble under the title, then one per section.
TEXTS: dict[str, str] = {"preamble": "报告说明（标题下）", **{k: v for k, v in SECTIONS.items()}}
TEXT_MAX = 20000

#: Table 二 of the 2021 format in its four blocks: (第二十条 item, column keys, row keys).
TABLE2_BLOCKS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("第二十条第（一）项", ("issued", "repealed", "in_force"), ("rules", "normative_docs")),
    ("第二十条第（五）项", ("decisions",), ("licensing",)),
    ("第二十条第（六）项", ("decisions",), ("punishment", "enforcement")),
    ("第二十条第（八）项", ("amount",), ("fees",)),
]
#: Every (row, column) of table 二 that staff enter, in form order.
TABLE2_FIELDS: list[tuple[str, str]] = [(row, col) for _, cols, rows in TABLE2_BLOCKS for row in rows for col in cols]
BEIJING = timezone(timedelta(hours=8))


class DraftError(Exception):
    """A draft the rules refuse; the message is plain Chinese."""


@dataclass
class Draft:
    """What staff entered for one year's report."""

    year: int
    agency: str
    figures: dict[tuple[str, str], float] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)


def field_name(row: str, col: str) -> str:
    """The form field of one table 二 cell."""
    return f"t2-{row}-{col}"


def label(row: str, col: str) -> str:
    """A table 二 cell as staff read it: 规章·本年制发件数（件）."""
    return f"{TABLE2_ROWS[row]}·{TABLE2_COLS[col]}（{TABLE2_UNITS[col]}）"


def parse_figures(form: dict[str, str]) -> dict[tuple[str, str], float]:
    """Table 二 from a form: counts are whole numbers, 收费金额 has at most two decimals; a
    blank cell is 0. Raises :class:`DraftError` naming every bad cell."""
    out: dict[tuple[str, str], float] = {}
    bad: list[str] = []
    for row, col in TABLE2_FIELDS:
        text = str(form.get(field_name(row, col), "") or "").strip().replace(",", "").replace("，", "")
        pattern = r"\d{1,12}(\.\d{1,2})?" if col == "amount" else r"\d{1,9}"
        if not text:
            out[row, col] = 0.0
        elif re.fullmatch(pattern, text):
            out[row, col] = float(text)
        else:
            bad.append(label(row, col))
    if bad:
        raise DraftError("以下数字无效（件数应为不小于0的整数，收费金额最多两位小数）：" + "、".join(bad) + "。")
    return out


def load(db: sqlite_utils.Database, year: int, default_agency: str = "") -> Draft:
    """The saved draft of ``year`` (empty figures and texts when none was saved)."""
    row = db.execute("select agency from annual_reports where year = ?", [year]).fetchone()
    figures = {(r, c): v for r, c, v in db.execute(
        "select row_key, col_key, value from annual_report_figures where year = ?", [year])}
    texts = dict(db.execute("select section, body from annual_report_texts where year = ?", [year]).fetchall())
    return Draft(year, row[0] if row else default_agency, figures, texts)


def has_figures(db: sqlite_utils.Database, year: int) -> bool:
    """Whether table 二 of ``year`` was entered."""
    return db.execute("select 1 from annual_report_figures where year = ? limit 1", [year]).fetchone() is not None


def save(db: sqlite_utils.Database, draft: Draft, user: dict[str, Any] | None) -> None:
    """Store the draft (agency, table 二, texts), replacing the year's earlier one; audited."""
    agency = draft.agency.strip()
    if not agency:
        raise DraftError("请填写发布机关名称。")
    if len(agency) > 60 or re.search(r"[\r\n\t]", agency):
        raise DraftError("发布机关名称应为一行，不超过60字。")
    for key, body in draft.texts.items():
        if key not in TEXTS:
            raise DraftError("未知的报告部分。")
        if len(body) > TEXT_MAX:
            raise DraftError(f"“{TEXTS[key]}”的内容过长（不超过{TEXT_MAX}字）。")
    with immediate(db):
        before = load(db, draft.year)
        db.execute("insert into annual_reports (year, agency, updated, updated_by) values (?, ?, ?, ?) "
                   "on conflict (year) do update set agency = excluded.agency, updated = excluded.updated, "
                   "updated_by = excluded.updated_by",
                   [draft.year, agency, now(), user["username"] if user else None])
        db.execute("delete from annual_report_figures where year = ?", [draft.year])
        db.execute("delete from annual_report_texts where year = ?", [draft.year])
        for (row, col), value in draft.figures.items():
            db.execute("insert into annual_report_figures values (?, ?, ?, ?)", [draft.year, row, col, value])
        for key, body in draft.texts.items():
            if body.strip():
                db.execute("insert into annual_report_texts values (?, ?, ?)", [draft.year, key, body.strip()])
        audit(db, user, "annual_report_save", f"annual_report:{draft.year}",
              before={"agency": before.agency, "figures": {f"{r}.{c}": v for (r, c), v in before.figures.items()}},
              after={"agency": agency, "figures": {f"{r}.{c}": v for (r, c), v in draft.figures.items()},
                     "texts": sorted(k for k, v in draft.texts.items() if v.strip())})


# -- the desk's own figures (section 一) -------------------------------------------------------


@dataclass
class DeskFigures:
    """The desk's figures for one year, each with what it counts."""

    year: int
    questions: int = 0  # questions asked in the chat (Beijing days of the year)
    answered: int = 0  # of those, answered directly (status "answered")
    tickets: int = 0  # tickets (人工工单) opened in the year
    replied: int = 0  # tickets whose reply was given in the year
    mean_workdays: float | None = None  # mean working days from opening to reply, of those
    rated: int = 0  # replies the citizens rated, among the tickets replied in the year
    satisfied: int = 0  # of those, 满意 or 基本满意

    @property
    def answered_share(self) -> float | None:
        """Answered directly, as a fraction of the questions (None without questions)."""
        return self.answered / self.questions if self.questions else None

    @property
    def satisfied_share(self) -> float | None:
        """满意 or 基本满意, as a fraction of the rated replies (None without ratings)."""
        return self.satisfied / self.rated if self.rated else None


def _beijing_day(stamp: str) -> date:
    at = datetime.fromisoformat(stamp)
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(BEIJING).date()


def workdays_between(cal: WorkCalendar, start: date, end: date) -> int:
    """Working days after ``start`` up to and including ``end`` (0 when the same day)."""
    return sum(1 for i in range(1, (end - start).days + 1) if cal.is_workday(start + timedelta(days=i)))


def desk_figures(db: sqlite_utils.Database, year: int, cal: WorkCalendar | None) -> DeskFigures:
    """The year's questions, answered share, tickets, working days to reply and satisfaction.

    Questions come from the analytics rollup (``ask_daily``, brought up to date here);
    tickets by their opening and reply times, read as Beijing days. The mean working days
    are left out (None) when the calendar does not cover a reply's dates.
    """
    from .analytics import roll_up

    roll_up(db)
    first, last = date(year, 1, 1).isoformat(), date(year, 12, 31).isoformat()
    out = DeskFigures(year)
    out.questions, out.answered = (int(x or 0) for x in db.execute(
        "select sum(n), sum(case when status = 'answered' then n else 0 end) from ask_daily "
        "where day between ? and ?", [first, last]).fetchone())
    begin = datetime(year, 1, 1, tzinfo=BEIJING).astimezone(timezone.utc).isoformat(timespec="seconds")
    end = datetime(year + 1, 1, 1, tzinfo=BEIJING).astimezone(timezone.utc).isoformat(timespec="seconds")
    out.tickets = db.execute("select count(*) from tickets where created >= ? and created < ?",
                             [begin, end]).fetchone()[0]
    replied = db.execute("select created, replied_at, satisfaction from tickets where replied_at >= ? "
                         "and replied_at < ?", [begin, end]).fetchall()
    out.replied = len(replied)
    out.rated = sum(1 for _, _, s in replied if s)
    out.satisfied = sum(1 for _, _, s in replied if s in ("satisfied", "mostly"))
    if replied and cal is not None:
        try:
            days = [workdays_between(cal, _beijing_day(c), _beijing_day(r)) for c, r, _ in replied]
            out.mean_workdays = round(sum(days) / len(days), 1)
        except CalendarRangeError:
            out.mean_workdays = None
    return out


def _percent(share: float | None) -> str:
    return f"{share * 100:.1f}%" if share is not None else "—"


def desk_paragraph(figures: DeskFigures) -> str:
    """Section 一's paragraph of the desk's figures, each said with what it counts."""
    parts = [f"本机关政务公开智能问答平台{figures.year}年共收到群众提问{figures.questions}个，"
             f"其中由平台直接解答{figures.answered}个，占{_percent(figures.answered_share)}"]
    parts.append(f"转人工办理的工单{figures.tickets}件，年内答复{figures.replied}件"
                 + (f"，自提交至答复平均用时{figures.mean_workdays:g}个工作日" if figures.mean_workdays is not None
                    else ""))
    parts.append(f"群众对{figures.rated}件答复作出评价，其中“满意”或“基本满意”{figures.satisfied}件，"
                 f"占{_percent(figures.satisfied_share)}" if figures.rated else "年内答复尚无群众评价")
    return "；".join(parts) + "。"


# -- tables as facts, checks, and the document -------------------------------------------------


def facts(draft: Draft, table3: annual_table.Table3, table4: remedies.Table4) -> list[Fact]:
    """The draft's three tables as the importer's facts (for :func:`service.reports.validate`)."""
    out = [Fact("二", row, TABLE2_ROWS[row], col, TABLE2_COLS[col], draft.figures.get((row, col), 0.0),
                TABLE2_UNITS[col], SECTIONS["二"]) for row, col in TABLE2_FIELDS]
    out += [Fact("三", row, TABLE3_ROWS[row], col, TABLE3_COLS[col], float(table3.value(row, col)), "件",
                 SECTIONS["三"]) for row in annual_table.ROWS for col in annual_table.COLS]
    out += [Fact("四", row, TABLE4_ROWS[row], col, TABLE4_COLS[col], float(table4.value(row, col)), "件",
                 SECTIONS["四"]) for row in remedies.ROWS for col in remedies.COLS]
    return out


def check(draft: Draft, table3: annual_table.Table3, table4: remedies.Table4) -> list[str]:
    """Every inconsistency: the importer's rules on the three tables, and what the
    computations of tables 三 and 四 explained."""
    return [*validate(facts(draft, table3, table4)), *table3.problems, *table4.problems]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")


def table2_printed(draft: Draft) -> Printed:
    """Table 二 as the reports print it: four columns, each 第二十条 block headed by its item
    over the whole width, then 信息内容 and its columns (a single column spans three)."""
    cells: list[Cell] = []
    r = 0
    for item, cols, rows in TABLE2_BLOCKS:
        cells.append(Cell(r, 0, item, colspan=4))
        r += 1
        span = 3 // len(cols)
        unit = lambda c: "（单位：万元）" if c == "amount" else ""  # noqa: E731 - the one unit printed
        cells.append(Cell(r, 0, "信息内容"))
        cells += [Cell(r, 1 + i * span, TABLE2_COLS[c] + unit(c), colspan=span) for i, c in enumerate(cols)]
        r += 1
        for row in rows:
            cells.append(Cell(r, 0, TABLE2_ROWS[row], header=False))
            cells += [Cell(r, 1 + i * span, _number(draft.figures.get((row, c), 0.0)), colspan=span, header=False)
                      for i, c in enumerate(cols)]
            r += 1
    return Printed(r, 4, cells)


def title(draft: Draft) -> str:
    """The report's title as published: 某机关2025年政府信息公开工作年度报告."""
    return f"{draft.agency}{draft.year}年政府信息公开工作年度报告"


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in (text or "").splitlines() if p.strip()]


def to_docx(draft: Draft, table3: annual_table.Table3, table4: remedies.Table4, desk: DeskFigures) -> bytes:
    """The whole report as an A4 Word document: title, the statistics period, sections 一
    to 六 with the staff's paragraphs, section 一's desk figures and tables 二, 三 and 四."""
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    doc = a4_document()
    heading = doc.add_paragraph()
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = heading.add_run(title(draft))
    run.bold, run.font.size = True, Pt(16)
    period = f"本报告所列数据的统计期限自{draft.year}年1月1日起至{draft.year}年12月31日止。"
    for text in [period, *_paragraphs(draft.texts.get("preamble", ""))]:
        doc.add_paragraph(text)
    for key, head in SECTIONS.items():
        doc.add_paragraph().add_run(head).bold = True
        body = _paragraphs(draft.texts.get(key, ""))
        if key == "一":  # the desk's own figures first, apart from the sub-items staff write
            body = [desk_paragraph(desk), *body]
        for text in body:
            doc.add_paragraph(text)
        if key == "二":
            add_printed_docx(doc, table2_printed(draft))
        elif key == "三":
            add_printed_docx(doc, annual_table.printed(table3), font_pt=8)
        elif key == "四":
            add_printed_docx(doc, remedies.printed(table4), font_pt=8)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def reimport_problems(data: bytes, draft: Draft, table3: annual_table.Table3, table4: remedies.Table4) -> list[str]:
    """Read the drafted document back with the desk's importer, as staff would import it
    once published: what it refuses, finds inconsistent, or reads differently from the draft."""
    try:
        report = parse_report(data, "draft.docx")
    except ReportFormatError as exc:
        return [f"导入时无法识别：{exc}"]
    out = [f"导入时发现：{p}" for p in report.problems]
    if (report.agency, report.year) != (draft.agency.strip(), draft.year):
        out.append(f"导入时识别的机关和年度为“{report.agency}”{report.year}年，与草稿（“{draft.agency.strip()}”"
                   f"{draft.year}年）不同，请调整机关名称。")
    for fact in facts(draft, table3, table4):
        read = report.value(fact.row_key, fact.col_key, fact.table)
        if read != fact.value:
            out.append(f"导入时表{fact.table}“{fact.row_label}·{fact.col_label}”读为"
                       f"{'空' if read is None else _number(read)}，草稿为{_number(fact.value)}。")
    return out
