"""The citizens' report pages: the list of annual reports held and one report's page.

A report page shows the three statistics tables in the national layout (as accessible
HTML tables), a bar chart of how applications were handled (inline SVG built here, so
the page needs no script) and the narrative passages grouped by section.

The shaping functions here take plain values and return plain records, with no Flask;
the two views in ``service/views/public_reports.py`` read the database, call them and render.
"""
from __future__ import annotations

import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import sqlite_utils
from markupsafe import Markup

from .reports import (
    TABLE2_COLS, TABLE2_ROWS, TABLE3_COLS, TABLE3_GROUPS, TABLE3_ORG_COLS, TABLE3_ROWS,
    TABLE4_COLS, TABLE4_ROWS, TABLE_SECTIONS,
)

#: (table, row_key, col_key) -> value
Values = Mapping[tuple[str, str, str], float]


# --------------------------------------------------------------------------- records


@dataclass
class Cell:
    """One cell of a rendered table: a header (``th``) or a data cell (``td``)."""

    text: str
    header: bool = False
    scope: str | None = None
    colspan: int = 1
    rowspan: int = 1
    id: str | None = None
    headers: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    #: Read by screen readers only (e.g. "无数据" behind a dash).
    hidden_note: str = ""


@dataclass
class Section:
    """A group of table rows: ``head`` rows go into ``<thead>``, the others into a ``<tbody>``."""

    rows: list[list[Cell]]
    head: bool = False


@dataclass
class Table:
    """A statistics table ready for the template."""

    id: str
    heading: str
    caption: str
    sections: list[Section]
    note: str = ""


@dataclass
class Bar:
    """One outcome row of table 三 with its total."""

    key: str
    group: str  # disclosed, partial, or a TABLE3_GROUPS key
    name: str  # 予以公开, 部分公开 or the group's name (不予公开 …)
    item: str  # the reason within the group, "" for a row without one
    value: float

    @property
    def label(self) -> str:
        """The bar's label: "不予公开：属于国家秘密", "予以公开"."""
        return f"{self.name}：{self.item}" if self.item else self.name


@dataclass
class Outcomes:
    """How the year's applications were handled: the bars, the zero rows and the share."""

    bars: list[Bar]
    zero: list[Bar]
    total: float
    disclosed: float
    partial: float

    @property
    def zero_groups(self) -> list[tuple[str, list[str]]]:
        """The zero rows by outcome group: (group name, item names), in format order."""
        groups: dict[str, list[str]] = {}
        for bar in self.zero:
            groups.setdefault(bar.name, [])
            if bar.item:
                groups[bar.name].append(bar.item)
        return list(groups.items())

    @property
    def share(self) -> float | None:
        """Per cent of applications disclosed in full or in part, or None without a total."""
        if not self.total:
            return None
        return (self.disclosed + self.partial) / self.total * 100


@dataclass
class Paragraph:
    """Consecutive narrative sentences under the same topic sentence (``lead``)."""

    lead: str | None
    sentences: list[str] = field(default_factory=list)

    @property
    def lead_text(self) -> str:
        """The lead as printed, with its full stop."""
        return sentence(self.lead) if self.lead else ""

    @property
    def body(self) -> str:
        """The sentences as printed, each with its full stop."""
        return "".join(sentence(s) for s in self.sentences)


@dataclass
class NarrativePart:
    """One heading of the narrative (section, optionally a sub-section) and its paragraphs."""

    section: str
    sub: str
    paragraphs: list[Paragraph] = field(default_factory=list)


# --------------------------------------------------------------------------- numbers


def fmt(value: float | None) -> str:
    """A figure as printed in the report: integers without a decimal point."""
    if value is None:
        return "—"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _value_cell(values: Values, key: tuple[str, str, str], headers: Iterable[str]) -> Cell:
    value = values.get(key)
    return Cell(fmt(value), headers=tuple(headers), classes=("num",),
                hidden_note="无数据" if value is None else "")


# --------------------------------------------------------------------------- table 二

#: Table 二 blocks: the item of 《条例》第二十条 and the rows it covers (2021 and 2019 rows).
TABLE2_BLOCKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("第二十条第（一）项", ("rules", "normative_docs")),
    ("第二十条第（五）项", ("licensing", "other_services")),
    ("第二十条第（六）项", ("punishment", "enforcement")),
    ("第二十条第（八）项", ("fees",)),
    ("第二十条第（九）项", ("procurement",)),
)


#: Column order within a block: the 2021 format's, then the 2019 format's
#: (上一年项目数量, 本年增/减, 处理决定数量; 采购项目数量, 采购总金额).
TABLE2_COL_ORDER: tuple[str, ...] = (
    "issued", "repealed", "in_force", "made", "published", "total_public",
    "previous", "change", "decisions", "items", "amount",
)


def table2(values: Values, units: Mapping[tuple[str, str, str], str],
           labels: Mapping[tuple[str, str, str], str], heading: str) -> Table | None:
    """Table 二 as its 第二十条 blocks, each with the rows and columns the report has.

    Column headers use the label the report printed (``labels``), so a 2019-format
    procurement block reads 采购总金额 rather than the 2021 format's 本年收费金额.
    """
    blocks = []
    for title, rows in TABLE2_BLOCKS:
        present = [r for r in rows if any(k[0] == "二" and k[1] == r for k in values)]
        cols = [c for c in TABLE2_COL_ORDER if any(("二", r, c) in values for r in present)]
        if present and cols:
            blocks.append((title, present, cols))
    if not blocks:
        return None
    width = 1 + max(len(cols) for _, _, cols in blocks)
    sections = []
    for n, (title, rows, cols) in enumerate(blocks, 1):
        title_id, label_id = f"t2-b{n}", f"t2-b{n}-label"
        header_rows: list[list[Cell]] = [
            [Cell(title, header=True, scope="colgroup", colspan=width, id=title_id,
                  classes=("block-title",))],
            [Cell("信息内容", header=True, scope="col", id=label_id)],
        ]
        for c in cols:
            unit = next((units[("二", r, c)] for r in rows if units.get(("二", r, c))), "")
            label = next((labels[("二", r, c)] for r in rows if labels.get(("二", r, c))), TABLE2_COLS[c])
            if unit and unit not in ("件", "项"):
                label += f"（单位：{unit}）"
            header_rows[1].append(Cell(label, header=True, scope="col", id=f"t2-b{n}-{c}",
                                       classes=("num",)))
        if len(cols) + 1 < width:
            header_rows[1].append(Cell("", colspan=width - 1 - len(cols), classes=("filler",)))
        body_rows = []
        for r in rows:
            row_id = f"t2-r-{r}"
            cells = [Cell(TABLE2_ROWS[r], header=True, scope="row", id=row_id, headers=(title_id,))]
            cells += [_value_cell(values, ("二", r, c), (title_id, f"t2-b{n}-{c}", row_id)) for c in cols]
            if len(cols) + 1 < width:
                cells.append(Cell("", colspan=width - 1 - len(cols), classes=("filler",)))
            body_rows.append(cells)
        if n == 1:
            sections += [Section(header_rows, head=True), Section(body_rows)]
        else:
            sections.append(Section(header_rows + body_rows))
    return Table("table-2", heading, "表二　主动公开政府信息情况", sections)


# --------------------------------------------------------------------------- table 三

_CN_NUMBERS = "一二三四五六七八九十"
_TABLE3_NOTE = "（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）"
_PARTIAL_LABEL = "部分公开（区分处理的，只计这一情形，不计其他情形）"


def _outcome_rows(values: Values) -> list[tuple[str, str | None, str]]:
    """The outcome rows a report has, in format order: (row key, group key or None, label).

    The label of a group's sub-row is numbered ("1.属于国家秘密"); a group given as one row
    has the label "".
    """
    keys = {k[1] for k in values if k[0] == "三"}
    rows: list[tuple[str, str | None, str]] = []
    for key, label in (("disclosed", "予以公开"), ("partial", _PARTIAL_LABEL)):
        if key in keys:
            rows.append((key, None, label))
    for group, (_, items) in TABLE3_GROUPS.items():
        subs = [(f"{group}_{i}", group, f"{i}.{item}") for i, item in enumerate(items, 1)
                if f"{group}_{i}" in keys]
        if group == "other" and [k for k, _, _ in subs] == ["other_3"]:
            # The 2019 format's 其他处理 had no sub-rows; the importer files it as other_3.
            rows.append(("other_3", group, ""))
        elif subs:
            rows += subs
        elif group in keys:  # a group given as one row, without its sub-rows
            rows.append((group, group, ""))
    return rows


def table3(values: Values, heading: str) -> Table | None:
    """Table 三 in the national layout: applicant columns grouped, outcome rows nested."""
    keys = {k[1] for k in values if k[0] == "三"}
    if not keys:
        return None
    head = [
        [Cell(_TABLE3_NOTE, colspan=3, rowspan=3, classes=("corner",)),
         Cell("申请人情况", header=True, scope="colgroup", colspan=len(TABLE3_COLS), id="t3-applicant")],
        [Cell(TABLE3_COLS["natural"], header=True, scope="col", rowspan=2, id="t3-c-natural",
              headers=("t3-applicant",), classes=("num",)),
         Cell("法人或其他组织", header=True, scope="colgroup", colspan=len(TABLE3_ORG_COLS),
              id="t3-org", headers=("t3-applicant",)),
         Cell(TABLE3_COLS["total"], header=True, scope="col", rowspan=2, id="t3-c-total",
              headers=("t3-applicant",), classes=("num",))],
        [Cell(TABLE3_COLS[c], header=True, scope="col", id=f"t3-c-{c}",
              headers=("t3-applicant", "t3-org"), classes=("num",)) for c in TABLE3_ORG_COLS],
    ]

    def col_headers(col: str) -> tuple[str, ...]:
        return ("t3-applicant", "t3-org", f"t3-c-{col}") if col in TABLE3_ORG_COLS \
            else ("t3-applicant", f"t3-c-{col}")

    def data(row: str, row_headers: tuple[str, ...]) -> list[Cell]:
        return [_value_cell(values, ("三", row, c), (*row_headers, *col_headers(c))) for c in TABLE3_COLS]

    def top_row(row: str, number: str) -> list[Cell]:
        rid = f"t3-r-{row}"
        return [Cell(f"{number}、{TABLE3_ROWS[row]}", header=True, scope="row", colspan=3, id=rid),
                *data(row, (rid,))]

    body: list[list[Cell]] = []
    for row, number in (("new", "一"), ("carried_in", "二")):
        if row in keys:
            body.append(top_row(row, number))

    outcome = _outcome_rows(values)
    if "outcome_total" in keys:
        outcome.append(("outcome_total", None, "总计"))
    block: list[list[Cell]] = []
    group_numbers = {g: _CN_NUMBERS[i] for i, g in enumerate(TABLE3_GROUPS, 2)}
    seen_groups: set[str] = set()
    for key, group, label in outcome:
        rid = f"t3-r-{key}"
        if group is None:
            number = {"disclosed": "一", "partial": "二", "outcome_total": "七"}[key]
            cells = [Cell(f"（{number}）{label}", header=True, scope="row", colspan=2, id=rid,
                          headers=("t3-outcome",), classes=("level-1",))]
            block.append(cells + data(key, ("t3-outcome", rid)))
            continue
        gid = f"t3-g-{group}"
        group_title = f"（{group_numbers[group]}）{TABLE3_GROUPS[group][0]}"
        if not label:  # the group as a single row
            cells = [Cell(group_title, header=True, scope="row", colspan=2, id=rid,
                          headers=("t3-outcome",), classes=("level-1",))]
            block.append(cells + data(key, ("t3-outcome", rid)))
            continue
        cells = []
        if group not in seen_groups:
            seen_groups.add(group)
            span = sum(1 for _, g, lab in outcome if g == group and lab)
            cells.append(Cell(group_title, header=True, scope="rowgroup", rowspan=span, id=gid,
                              headers=("t3-outcome",), classes=("level-1",)))
        cells.append(Cell(label, header=True, scope="row", id=rid, headers=("t3-outcome", gid),
                          classes=("level-2",)))
        block.append(cells + data(key, ("t3-outcome", gid, rid)))
    if block:
        block[0].insert(0, Cell(f"三、{TABLE3_ROWS['outcome_total'].split('·')[0]}", header=True,
                                scope="rowgroup", rowspan=len(block), id="t3-outcome"))
        body += block
    if "carried_out" in keys:
        body.append(top_row("carried_out", "四"))
    return Table("table-3", heading, "表三　收到和处理政府信息公开申请情况",
                 [Section(head, head=True), Section(body)])


# --------------------------------------------------------------------------- table 四


def table4(values: Values, heading: str) -> Table | None:
    """Table 四 in the national layout: one row, 行政复议 then the two kinds of 行政诉讼."""
    if not any(k[0] == "四" for k in values):
        return None
    ncols = len(TABLE4_COLS)
    subs = {r: TABLE4_ROWS[r].split("·")[1] for r in ("litigation_direct", "litigation_after_review")}
    head: list[list[Cell]] = [
        [Cell("行政复议", header=True, scope="colgroup", colspan=ncols, id="t4-review"),
         Cell("行政诉讼", header=True, scope="colgroup", colspan=2 * ncols, id="t4-litigation")],
        [*(Cell(label, header=True, scope="col", rowspan=2, id=f"t4-review-{c}",
                headers=("t4-review",), classes=("num",)) for c, label in TABLE4_COLS.items()),
         *(Cell(label, header=True, scope="colgroup", colspan=ncols, id=f"t4-{r}",
                headers=("t4-litigation",)) for r, label in subs.items())],
        [Cell(label, header=True, scope="col", id=f"t4-{r}-{c}", headers=("t4-litigation", f"t4-{r}"),
              classes=("num",)) for r in subs for c, label in TABLE4_COLS.items()],
    ]
    row = [_value_cell(values, ("四", "review", c), ("t4-review", f"t4-review-{c}")) for c in TABLE4_COLS]
    row += [_value_cell(values, ("四", r, c), ("t4-litigation", f"t4-{r}", f"t4-{r}-{c}"))
            for r in subs for c in TABLE4_COLS]
    return Table("table-4", heading, "表四　政府信息公开行政复议、行政诉讼情况",
                 [Section(head, head=True), Section([row])])


# --------------------------------------------------------------------------- outcomes chart


def outcomes(values: Values) -> Outcomes | None:
    """The outcome rows' totals (column 总计) split into bars (non-zero) and zero rows."""
    bars, zero = [], []
    for key, group, label in _outcome_rows(values):
        value = values.get(("三", key, "total"))
        if value is None:
            continue
        if group is None:
            bar = Bar(key, key, "部分公开" if key == "partial" else label, "", value)
        else:
            bar = Bar(key, group, TABLE3_GROUPS[group][0], label.split(".", 1)[1] if label else "", value)
        (bars if value else zero).append(bar)
    if not bars and not zero:
        return None
    total = values.get(("三", "outcome_total", "total"))
    if total is None:
        total = sum(b.value for b in bars)
    return Outcomes(bars, zero, total, values.get(("三", "disclosed", "total"), 0.0),
                    values.get(("三", "partial", "total"), 0.0))


def share_sentence(o: Outcomes) -> str:
    """The share disclosed in full or in part, as one sentence."""
    share = o.share
    if share is None:
        return "本年度没有办结的政府信息公开申请。"
    return (f"本年度办理结果总计 {fmt(o.total)} 件，其中予以公开 {fmt(o.disclosed)} 件、"
            f"部分公开 {fmt(o.partial)} 件，两项合计 {fmt(o.disclosed + o.partial)} 件，"
            f"占办理结果总计的 {share:.1f}%。")


def chart_summary(o: Outcomes) -> str:
    """What the chart shows, in words (its accessible name)."""
    parts = "，".join(f"{b.label} {fmt(b.value)} 件" for b in o.bars)
    text = f"申请办理结果条形图：{parts}" if parts else "申请办理结果条形图：各情形均为 0 件"
    if o.bars and o.zero:
        text += f"；其余 {len(o.zero)} 种情形均为 0 件"
    return text + "。"


_SVG_NS = "http://www.w3.org/2000/svg"
CHART_WIDTH = 320
_FONT = 13
_LINE = 17
_BAR_HEIGHT = 14
_GAP = 12
_VALUE_ROOM = 112  # room right of the longest bar for "103 件 · 67.8%"


def text_width(text: str) -> float:
    """Approximate rendered width in em: wide (CJK) characters 1, others 0.55."""
    return sum(1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.55 for ch in text)


def wrap(text: str, width_em: float) -> list[str]:
    """Break a label into lines no wider than ``width_em``, preferring breaks after punctuation."""
    lines: list[str] = []
    line = ""
    for ch in text:
        if line and text_width(line + ch) > width_em:
            cut = max(line.rfind(p) for p in "，、：；")
            if cut >= len(line) // 2:
                lines.append(line[:cut + 1])
                line = line[cut + 1:]
            else:
                lines.append(line)
                line = ""
        line += ch
    if line:
        lines.append(line)
    return lines


def chart_svg(o: Outcomes) -> Markup:
    """Horizontal bars of the non-zero outcome rows, as inline SVG (no script, no style).

    Each bar has its label above it and its count and share after it; colours come from
    CSS classes (``bar-<group>``) so the page's stylesheet, high-contrast mode included,
    decides them. ElementTree escapes every text and attribute.
    """
    svg = ET.Element("svg", {
        "xmlns": _SVG_NS, "role": "img", "aria-label": chart_summary(o), "class": "chart-svg",
        "focusable": "false",
    })
    ET.SubElement(svg, "title").text = "本年度政府信息公开申请办理结果"
    biggest = max((b.value for b in o.bars), default=0.0)
    scale = (CHART_WIDTH - _VALUE_ROOM) / biggest if biggest else 0.0
    y = 0.0
    for bar in o.bars:
        item = ET.SubElement(svg, "g", {"class": f"chart-row bar-{bar.group}"})
        for line in wrap(bar.label, CHART_WIDTH / _FONT):
            y += _LINE
            ET.SubElement(item, "text", {"x": "0", "y": f"{y - 4:g}", "class": "chart-label"}).text = line
        width = max(bar.value * scale, 2.0)
        ET.SubElement(item, "rect", {
            "x": "0", "y": f"{y + 2:g}", "width": f"{width:.1f}", "height": str(_BAR_HEIGHT),
            "class": "chart-bar",
        })
        share = f" · {bar.value / o.total * 100:.1f}%" if o.total else ""
        ET.SubElement(item, "text", {
            "x": f"{width + 6:.1f}", "y": f"{y + 2 + _BAR_HEIGHT - 2:g}", "class": "chart-value",
        }).text = f"{fmt(bar.value)} 件{share}"
        y += 2 + _BAR_HEIGHT + _GAP
    height = max(y, 1.0)
    svg.set("viewBox", f"0 0 {CHART_WIDTH} {height:g}")
    svg.set("width", str(CHART_WIDTH))
    svg.set("height", f"{height:g}")
    return Markup(ET.tostring(svg, encoding="unicode", short_empty_elements=True))


# --------------------------------------------------------------------------- narrative

_SUB_SPLIT = re.compile(r"^(.*?) ([（(][一二三四五六七八九十]{1,3}[)）].*)$")
_CLOSED = ("。", "！", "？", "；", "：", ":", "…")


def sentence(text: str) -> str:
    """A stored sentence with its full stop back (the importer cuts sentences at their stop)."""
    return text if text.endswith(_CLOSED) else text + "。"


def narrative(passages: Iterable[Mapping[str, Any]]) -> list[NarrativePart]:
    """Group passages (in position order) by heading, then into paragraphs by topic sentence.

    Passages without a ``context`` under the same heading run on as one paragraph. Passages
    whose ``context`` is the topic sentence(s) stored just before them form a paragraph of
    their own, led by those topic sentences.
    """
    parts: list[NarrativePart] = []
    for p in passages:
        chain = p["section"] or ""
        match = _SUB_SPLIT.match(chain)
        section, sub = (match.group(1), match.group(2)) if match else (chain, "")
        if not parts or (parts[-1].section, parts[-1].sub) != (section, sub):
            parts.append(NarrativePart(section, sub))
        paragraphs = parts[-1].paragraphs
        text, context = p["text"] or "", p["context"] or ""
        last = paragraphs[-1] if paragraphs else None
        if not context:
            if last is not None and last.lead is None:
                last.sentences.append(text)
            else:
                paragraphs.append(Paragraph(None, [text]))
            continue
        if last is not None and last.lead == context:
            last.sentences.append(text)
            continue
        # The topic sentences were stored as plain sentences just before: they become the lead.
        topics = context.split("。")
        if last is not None and last.lead is None:
            while last.sentences and last.sentences[-1] in topics:
                last.sentences.pop()
            if not last.sentences:
                paragraphs.pop()
        paragraphs.append(Paragraph(context, [text]))
    return parts


# --------------------------------------------------------------------------- data access


def _problems(raw: str | None) -> list[str]:
    try:
        problems = json.loads(raw or "[]")
    except ValueError:
        return [raw] if raw else []
    return [str(p) for p in problems] if isinstance(problems, list) else []


def report_title(row: Mapping[str, Any]) -> str:
    """The report's title, or one made from its agency and year."""
    return row.get("title") or f"{row['year']}年{row['agency']}政府信息公开工作年度报告"


def list_reports(db: sqlite_utils.Database, home_agency: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """Reports held, grouped by agency (home agency first), newest year first in each group."""
    rows = db.query(
        "select r.id, r.agency, r.year, r.title, r.problems, f.value as received from reports r "
        "left join facts f on f.report_id = r.id and f.tbl = '三' and f.row_key = 'new' "
        "and f.col_key = 'total' order by r.agency, r.year desc, r.id desc")
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        row["title"] = report_title(row)
        row["received_text"] = fmt(row["received"])
        row["has_problems"] = bool(_problems(row.pop("problems")))
        groups.setdefault(row["agency"], []).append(row)
    return sorted(groups.items(), key=lambda item: (item[0] != home_agency, item[0]))


def load_report(db: sqlite_utils.Database, report_id: int) -> dict[str, Any] | None:
    """Everything the report page shows, or None when there is no such report."""
    row = next(db.query("select * from reports where id = ?", [report_id]), None)
    if row is None:
        return None
    facts = list(db.query("select tbl, row_key, col_key, col_label, value, unit, section from facts "
                          "where report_id = ? order by id", [report_id]))
    values = {(f["tbl"], f["row_key"], f["col_key"]): f["value"] for f in facts if f["value"] is not None}
    units = {(f["tbl"], f["row_key"], f["col_key"]): f["unit"] or "" for f in facts}
    labels = {(f["tbl"], f["row_key"], f["col_key"]): f["col_label"] or "" for f in facts}
    headings = dict(TABLE_SECTIONS)
    for f in facts:
        if f["section"]:
            headings[f["tbl"]] = f["section"]
    passages = db.query("select section, context, text from passages where report_id = ? "
                        "order by position, id", [report_id])
    outcome = outcomes(values)
    return {
        "id": row["id"], "agency": row["agency"], "year": row["year"], "title": report_title(row),
        "problems": _problems(row["problems"]),
        "tables": [t for t in (table2(values, units, labels, headings["二"]), table3(values, headings["三"]),
                               table4(values, headings["四"])) if t is not None],
        "outcomes": outcome,
        "chart": chart_svg(outcome) if outcome and outcome.bars else None,
        "share": share_sentence(outcome) if outcome else None,
        "narrative": narrative(passages),
    }
