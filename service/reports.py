"""Parse 政府信息公开工作年度报告 (government-information-disclosure annual reports).

Every agency publishes its annual report in a national format: narrative sections 一 to 六
and three statistics tables (二 主动公开, 三 依申请公开, 四 复议诉讼).  This module reads a
report given as converter-style plain text, as an HTML page or as a .docx file and returns
its statistics as :class:`Fact` records with canonical keys, its narrative as
:class:`Passage` records (one per sentence), and the inconsistencies found by
:func:`validate`.

Each input form is first reduced to the same model: an ordered list of blocks, each either
a paragraph (``str``) or a table (rows of cell texts, "converter style": a horizontally
merged cell appears once, a cell covered by a vertical merge appears as an empty string).
One routine then reads the tables by their labels and one routine cuts the narrative.

Both the 2021 format (国办公开办函〔2021〕30号) and the older 2019 trial format are read; the
key dictionaries below (``TABLE2_ROWS``, ``TABLE3_ROWS`` …) list every key that can appear.
"""

from __future__ import annotations

import io
import re
import unicodedata
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Any, Iterable, Union

from .uploads import ArchiveRefused, check_archive

# --------------------------------------------------------------------------- vocabulary

#: Default section headings of the three statistics tables (used when a report omits them).
TABLE_SECTIONS: dict[str, str] = {
    "二": "二、主动公开政府信息情况",
    "三": "三、收到和处理政府信息公开申请情况",
    "四": "四、政府信息公开行政复议、行政诉讼情况",
}

#: Table 二 rows.  ``other_services`` and ``procurement`` exist only in the 2019 format.
TABLE2_ROWS: dict[str, str] = {
    "rules": "规章",
    "normative_docs": "行政规范性文件",
    "licensing": "行政许可",
    "other_services": "其他对外管理服务事项",
    "punishment": "行政处罚",
    "enforcement": "行政强制",
    "fees": "行政事业性收费",
    "procurement": "政府集中采购",
}

#: Table 二 columns.  2021 format: issued, repealed, in_force (规章/规范性文件), decisions
#: (许可/处罚/强制), amount (收费).  2019 format: made, published, total_public
#: (规章/规范性文件), previous, change, decisions (许可/处罚/强制/收费), items, amount (采购).
TABLE2_COLS: dict[str, str] = {
    "issued": "本年制发件数",
    "repealed": "本年废止件数",
    "in_force": "现行有效件数",
    "decisions": "本年处理决定数量",
    "amount": "本年收费金额",
    "made": "本年新制作数量",
    "published": "本年新公开数量",
    "total_public": "对外公开总数量",
    "previous": "上一年项目数量",
    "change": "本年增/减",
    "items": "采购项目数量",
}

#: Default unit of each table 二 column (a unit printed in the header wins).
TABLE2_UNITS: dict[str, str] = {
    "issued": "件", "repealed": "件", "in_force": "件", "decisions": "件", "amount": "万元",
    "made": "件", "published": "件", "total_public": "件", "previous": "项", "change": "项",
    "items": "项",
}

#: Table 三 columns, in the order of the national format.
TABLE3_COLS: dict[str, str] = {
    "natural": "自然人",
    "business": "商业企业",
    "research": "科研机构",
    "public_interest": "社会公益组织",
    "legal_services": "法律服务机构",
    "other": "其他",
    "total": "总计",
}
#: The five columns grouped under 法人或其他组织.
TABLE3_ORG_COLS: tuple[str, ...] = ("business", "research", "public_interest", "legal_services", "other")

_OUTCOME = "本年度办理结果"
#: Sub-rows of the outcome groups, in format order: group key -> (group label, item labels).
TABLE3_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "withheld": ("不予公开", (
        "属于国家秘密", "其他法律行政法规禁止公开", "危及“三安全一稳定”", "保护第三方合法权益",
        "属于三类内部事务信息", "属于四类过程性信息", "属于行政执法案卷", "属于行政查询事项")),
    "unavailable": ("无法提供", (
        "本机关不掌握相关政府信息", "没有现成信息需要另行制作", "补正后申请内容仍不明确")),
    "not_processed": ("不予处理", (
        "信访举报投诉类申请", "重复申请", "要求提供公开出版物", "无正当理由大量反复申请",
        "要求行政机关确认或重新出具已获取信息")),
    "other": ("其他处理", (
        "申请人无正当理由逾期不补正、行政机关不再处理其政府信息公开申请",
        "申请人逾期未按收费通知要求缴纳费用、行政机关不再处理其政府信息公开申请",
        "其他")),
}

#: Table 三 rows (25 in the 2021 format), key -> readable label.
TABLE3_ROWS: dict[str, str] = {
    "new": "本年新收政府信息公开申请数量",
    "carried_in": "上年结转政府信息公开申请数量",
    "disclosed": f"{_OUTCOME}·予以公开",
    "partial": f"{_OUTCOME}·部分公开",
    **{f"{g}_{i}": f"{_OUTCOME}·{name}·{item}"
       for g, (name, items) in TABLE3_GROUPS.items() for i, item in enumerate(items, 1)},
    "outcome_total": f"{_OUTCOME}·总计",
    "carried_out": "结转下年度继续办理",
}
#: Group rows, emitted only when a report gives a group as one row without its sub-rows.
#: (A 2019-format "（六）其他处理" row, which never had sub-rows, is emitted as ``other_3``.)
TABLE3_GROUP_ROWS: dict[str, str] = {
    g: f"{_OUTCOME}·{name}" for g, (name, _) in TABLE3_GROUPS.items() if g != "other"}
#: Rows whose sum must equal ``outcome_total``.
TABLE3_OUTCOME_ROWS: tuple[str, ...] = tuple(
    k for k in [*TABLE3_ROWS, *TABLE3_GROUP_ROWS] if k not in ("new", "carried_in", "outcome_total", "carried_out"))

#: Table 四 rows and columns.
TABLE4_ROWS: dict[str, str] = {
    "review": "行政复议",
    "litigation_direct": "行政诉讼·未经复议直接起诉",
    "litigation_after_review": "行政诉讼·复议后起诉",
}
TABLE4_COLS: dict[str, str] = {
    "upheld": "结果维持",
    "corrected": "结果纠正",
    "other": "其他结果",
    "pending": "尚未审结",
    "total": "总计",
}


# --------------------------------------------------------------------------- records


class ReportFormatError(Exception):
    """Input is not a disclosure annual report; message in plain Simplified Chinese."""


@dataclass
class Fact:
    """One cell of a statistics table."""

    table: str
    row_key: str
    row_label: str
    col_key: str
    col_label: str
    value: float
    unit: str
    section: str
    blank: bool = False  # the report left the cell empty: not stated (counted as 0 in sums)


@dataclass
class Passage:
    """One narrative sentence with its heading chain and topic sentence(s)."""

    section: str
    context: str
    text: str


@dataclass
class Report:
    """A parsed annual report."""

    agency: str
    year: int
    title: str
    facts: list[Fact] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    format: str = "2021"

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for JSON), read back by :meth:`from_dict`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Report":
        """The report that :meth:`to_dict` wrote."""
        return cls(**{**data, "facts": [Fact(**f) for f in data["facts"]],
                      "passages": [Passage(**p) for p in data["passages"]]})

    def value(self, row_key: str, col_key: str, table: str | None = None) -> float | None:
        """Return the value of one cell, or None when the report does not have it."""
        for f in self.facts:
            if f.row_key == row_key and f.col_key == col_key and table in (None, f.table):
                return f.value
        return None


# --------------------------------------------------------------------------- text helpers

Grid = list[list[str]]
Block = Union[str, Grid]  # a paragraph or a table

_BOOKMARK = re.compile(r"\[bookmark:[^\]]*\]")
_FULLWIDTH = {c: c - 0xFEE0 for c in [*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B)]}
_CN_DIGITS = str.maketrans("〇零一二三四五六七八九", "00123456789")
_SECTION_HEAD = re.compile(r"^[一二三四五六七八九十]{1,3}、")
_SUB_HEAD = re.compile(r"^[（(][一二三四五六七八九十]{1,3}[)）]")
_ITEM = re.compile(r"^(\d{1,2})[.、](.*)$")
_SENTENCE_END = re.compile(r"([。！？；])")
_ZERO_MARKS = {"", "无"}  # dashes and slashes are matched by a pattern


def _clean_text(text: str) -> str:
    """Drop converter markers, turn full-width digits/letters into ASCII, tidy spaces."""
    text = _BOOKMARK.sub("", text).translate(_FULLWIDTH)
    text = re.sub(r"(?<=\d)．(?=\d)", ".", text)
    text = re.sub(r"[\s\u3000\xa0]+", " ", text).strip()
    # Spaces next to Chinese characters are layout noise; keep those between ASCII words.
    return re.sub(r"(?<=[^\x00-\x7f]) | (?=[^\x00-\x7f])", "", text)


def _norm(text: str) -> str:
    """Normalise a table label for matching: NFKC, no spaces, no quotes or markers."""
    text = unicodedata.normalize("NFKC", _BOOKMARK.sub("", text))
    return re.sub(r"[\s\"'“”‘’「」]+", "", text)


def _number(cell: str) -> float | None:
    """Parse a statistics cell; blank and dash cells are 0, non-numbers give None."""
    s = _norm(cell)
    if s in _ZERO_MARKS or re.fullmatch(r"[-—–/\\]+", s):
        return 0.0
    s = re.sub(r"(件|项|个|次|条|万元|元)$", "", s)
    if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?", s):
        s = s.replace(",", "")
    if re.fullmatch(r"[+-]?\d+(\.\d+)?", s):
        return float(s)
    return None


def _fmt(value: float) -> str:
    """Format a number for a message: integers without a decimal point."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# --------------------------------------------------------------------------- input forms


def _parse_report(data: bytes | str, filename: str, agency: str | None = None,
                 year: int | None = None) -> Report:
    """Parse a report file, choosing the reader by the file name's suffix.

    ``.txt`` bytes may be UTF-8 (with or without BOM) or GB18030.  An explicit ``agency``
    or ``year`` overrides what the report says.  Raises :class:`ReportFormatError` when the
    input is empty, of an unsupported type, or not a disclosure annual report.
    """
    suffix = PurePath(filename or "").suffix.lower()
    if not data or (isinstance(data, str) and not data.strip()):
        raise ReportFormatError("文件内容为空，无法识别为政府信息公开工作年度报告。")
    if suffix == ".txt":
        text = _decode(data)
        if not text.strip():
            raise ReportFormatError("文件内容为空，无法识别为政府信息公开工作年度报告。")
        return parse_text(text, agency=agency, year=year)
    if suffix in (".html", ".htm"):
        return parse_html(data, agency=agency, year=year)
    if suffix == ".docx":
        if isinstance(data, str):
            raise ReportFormatError("Word 文档（.docx）应以二进制方式读取，请重新上传原文件。")
        return parse_docx(data, agency=agency, year=year)
    raise ReportFormatError(
        f"暂不支持“{suffix or '无扩展名'}”类型的文件，请上传 .txt、.html 或 .docx 格式的年度报告。")


def _decode(data: bytes | str) -> str:
    """Decode text bytes as UTF-8 (BOM optional), falling back to GB18030."""
    if isinstance(data, str):
        return data
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ReportFormatError("无法识别文本文件的编码，请以 UTF-8 或 GB18030 编码保存后重新上传。")


def parse_text(text: str, agency: str | None = None, year: int | None = None) -> Report:
    """Parse the plain text a docx converter produces.

    Table cells sit on their own line behind a tab, table rows are separated by blank
    lines, and a line without a tab right after a cell continues that cell ("商业\\n企业").
    """
    blocks: list[Block] = []
    table: Grid | None = None
    # A cell read line by line is a list of its lines until the end (joining as it grew
    # made a cell of many lines quadratic).
    row: list[Any] | None = None
    after_cell = False

    def open_table() -> Grid:
        nonlocal table
        if table is None:
            table = []
            blocks.append(table)
        return table

    for raw in text.splitlines():
        line = _BOOKMARK.sub("", raw)
        cell = re.match(r"^[ \u3000]*\t(.*)$", line)
        if "\t" in line.strip(" \u3000\t"):  # a whole row on one tab-separated line
            open_table().append([c.strip() for c in line.strip(" \u3000").split("\t")])
            row, after_cell = None, False
        elif cell:
            if row is None:
                row = []
                open_table().append(row)
            row.append([cell.group(1).strip()])
            after_cell = True
        elif not line.strip():
            row, after_cell = None, False
        elif after_cell and row and not _SECTION_HEAD.match(line.strip()) and not _is_note(line.strip()):
            row[-1].append(line.strip())
        else:
            table, row, after_cell = None, None, False
            blocks.append(line)
    blocks = [[[c if isinstance(c, str) else "\n".join(c) for c in r] for r in block]
              if isinstance(block, list) else block for block in blocks]
    # Paragraphs indented with a tab look like one-cell tables: give them back as text.
    blocks = [cell for block in blocks for cell in
              ([r[0] for r in block] if isinstance(block, list) and all(len(r) == 1 for r in block) else [block])]
    return _build_report(blocks, [], agency, year)


def parse_html(html: str | bytes, agency: str | None = None, year: int | None = None) -> Report:
    """Parse an HTML page: tables from their <table> structure, narrative from the blocks."""
    from bs4 import BeautifulSoup  # optional dependency, imported on use

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bs4 warns about odd but harmless markup
        soup = BeautifulSoup(html, "lxml")
    hints = [t.get_text() for t in soup.find_all(["h1", "title"])]
    return _build_report(_html_blocks(soup), hints, agency, year)


_HTML_BLOCK_TAGS = {
    "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "section", "article",
    "main", "body", "html", "center", "blockquote", "header", "footer", "nav", "form", "dl",
    "dt", "dd", "tbody", "thead", "tfoot", "tr", "td", "th", "pre", "address", "aside"}
_HTML_SKIP_TAGS = {"script", "style", "head", "noscript", "template", "iframe", "select"}


def _html_blocks(soup) -> list[Block]:
    """Walk the document in order, emitting paragraphs and data tables."""
    from bs4 import NavigableString, Tag

    blocks: list[Block] = []
    buf: list[str] = []
    # The elements with a <br>, a <table> or a block inside, found in one pass: asking
    # each inline element with find() built a name filter per element (9 of the 15 s a
    # 7 MB page of inline spans took).
    holds_break: set[int] = set()
    holds_table: set[int] = set()
    breaks = {"br", "table", *_HTML_BLOCK_TAGS}
    for tag in (soup.body or soup).descendants:
        if not isinstance(tag, Tag) or tag.name not in breaks:
            continue
        for marks in ((holds_break, holds_table) if tag.name == "table" else (holds_break,)):
            parent = tag.parent
            while parent is not None and id(parent) not in marks:
                marks.add(id(parent))
                parent = parent.parent

    def flush() -> None:
        for piece in "".join(buf).split("\0"):
            if piece.strip():
                blocks.append(piece)
        buf.clear()

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if type(child) is NavigableString:  # skip comments, doctype, CDATA
                    buf.append(re.sub(r"\s+", " ", str(child)))
            elif not isinstance(child, Tag) or child.name in _HTML_SKIP_TAGS:
                continue
            elif child.name == "br":
                buf.append("\0")
            elif child.name == "table":
                flush()
                if id(child) in holds_table:  # a layout table: its cells hold the content
                    walk(child)
                else:
                    blocks.append(_html_grid(child))
            elif child.name in _HTML_BLOCK_TAGS or id(child) in holds_break:
                flush()
                walk(child)
                flush()
            else:
                buf.append(re.sub(r"\s+", " ", child.get_text()))

    walk(soup.body or soup)
    flush()
    return blocks


def _span(tag, name: str) -> int:
    match = re.search(r"\d+", str(tag.get(name) or "1"))
    return max(1, int(match.group())) if match else 1


def _html_grid(table) -> Grid:
    """Read <tr>/<td> into converter-style rows, honouring rowspan and colspan."""
    grid: Grid = []
    pending: dict[int, tuple[int, int]] = {}  # column -> (rows still covered, width)
    for tr in table.find_all("tr"):
        cells = iter([c for c in tr.children if getattr(c, "name", None) in ("td", "th")])
        td = next(cells, None)
        row: list[str] = []
        col = 0
        while True:
            if col in pending:
                left, width = pending.pop(col)
                if left > 1:
                    pending[col] = (left - 1, width)
                row.append("")
                col += width
            elif td is not None:
                rowspan, colspan = _span(td, "rowspan"), _span(td, "colspan")
                row.append(td.get_text("\n").strip())
                if rowspan > 1:
                    pending[col] = (rowspan - 1, colspan)
                col += colspan
                td = next(cells, None)
            elif any(c > col for c in pending):
                col = min(c for c in pending if c > col)
            else:
                break
        grid.append(row)
    return grid


def parse_docx(data: bytes, agency: str | None = None, year: int | None = None) -> Report:
    """Parse a Word .docx file: body paragraphs and tables in document order."""
    import docx  # optional dependency (python-docx), imported on use
    from docx.table import Table, _Cell
    from docx.text.paragraph import Paragraph

    try:
        check_archive(data)  # before anything is inflated
    except ArchiveRefused as exc:
        raise ReportFormatError(str(exc)) from exc
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises several types for broken packages
        raise ReportFormatError("无法打开该 Word 文档，文件可能已损坏或不是 .docx 格式。") from exc
    blocks: list[Block] = []
    for element in document.element.body.iterchildren():
        tag = str(element.tag).rsplit("}", 1)[-1]
        if tag == "p":
            blocks.append(Paragraph(element, document).text)
        elif tag == "tbl":
            table = Table(element, document)
            # One entry per <w:tc>, so a horizontal merge appears once; a vertical
            # continuation is blank, exactly as in the converter's text.
            blocks.append([["" if tc.vMerge == "continue" else _Cell(tc, table).text for tc in tr.tc_lst]
                           for tr in element.tr_lst])
    return _build_report(blocks, [], agency, year)


# --------------------------------------------------------------------------- assembling


def _build_report(blocks: list[Block], title_hints: list[str], agency: str | None,
                  year: int | None) -> Report:
    """Turn the common block model into a :class:`Report`."""
    rows: dict[str, Grid] = {"二": [], "三": [], "四": []}
    sections = dict(TABLE_SECTIONS)
    heading, current = "", None
    paragraphs: list[str] = []
    for block in blocks:
        if isinstance(block, str):
            text = _clean_text(block)
            if not text:
                continue
            paragraphs.append(text)
            if _is_heading(text):
                heading, current = text, _table_of_heading(text)
            continue
        for cells in block:
            current = _table_of_row(cells, current)
            if current:
                if not rows[current] and _table_of_heading(heading) == current:
                    sections[current] = heading
                rows[current].append(cells)

    table2, format_hint = _read_table2(rows["二"], sections["二"])
    table3 = _read_table3(rows["三"], sections["三"])
    if len({f.row_key for f in table3}) < 3:
        raise ReportFormatError(
            "未找到“收到和处理政府信息公开申请情况”统计表，该文件不像政府信息公开工作年度报告。")
    facts = table2 + table3 + _read_table4(rows["四"], sections["四"])

    title_index, title, found_agency, found_year = _find_title(paragraphs, title_hints)
    found_year = found_year or _period_year(paragraphs)
    agency = agency or found_agency
    year = year or found_year
    if not agency:
        raise ReportFormatError("无法从报告标题中识别发布机关名称，请在上传时注明机关名称。")
    if not year:
        raise ReportFormatError("无法从报告中识别报告年度，请在上传时注明年度。")
    if not title:
        title = f"{agency}{year}年政府信息公开工作年度报告"

    if not format_hint:
        keys = {f.row_key for f in table3}
        format_hint = "2021" if {"other_1", "other_2"} & keys else "2019" if year <= 2020 else "2021"
    return Report(agency=agency, year=int(year), title=title, facts=facts,
                  passages=_passages(paragraphs[title_index + 1:]), problems=validate(facts),
                  format=format_hint)


def _is_heading(text: str) -> bool:
    """A top-level section heading such as "三、收到和处理政府信息公开申请情况"."""
    return bool(_SECTION_HEAD.match(text)) and len(text) <= 40 and "。" not in text.rstrip("。")


def _is_note(text: str) -> bool:
    """Table notes ("注：…") and the bookkeeping rule printed on table 三."""
    return bool(re.match(r"^注[:：]", text)) or "勾稽关系" in text


def _table_of_heading(text: str) -> str | None:
    n = _norm(text)
    if not _SECTION_HEAD.match(n):
        return None
    if "主动公开" in n:
        return "二"
    if "收到和处理" in n or "申请情况" in n:
        return "三"
    if "复议" in n or "诉讼" in n:
        return "四"
    return None


def _table_of_row(cells: list[str], current: str | None) -> str | None:
    """Switch tables on unmistakable row content, else stay in the current one."""
    joined = _norm("".join(cells))
    if "第二十条" in joined or "信息内容" in joined:
        return "二"
    if any(m in joined for m in ("申请人情况", "勾稽关系", "本年新收")):
        return "三"
    if "行政复议" in joined or "行政诉讼" in joined:
        return "四"
    return current


# --------------------------------------------------------------------------- table 二

_T2_ROW_PATTERNS = [
    ("rules", ("规章",)), ("normative_docs", ("规范性文件",)), ("licensing", ("行政许可",)),
    ("other_services", ("其他对外管理服务",)), ("punishment", ("行政处罚",)),
    ("enforcement", ("行政强制",)), ("fees", ("事业性收费", "收费")), ("procurement", ("采购",))]
_T2_COL_PATTERNS = [
    ("issued", ("制发",)), ("repealed", ("废止",)), ("in_force", ("现行有效",)),
    ("made", ("新制作",)), ("published", ("新公开",)), ("total_public", ("对外公开总",)),
    ("items", ("采购项目",)), ("previous", ("上一年项目", "上年项目")),
    ("change", ("增/减", "增减", "增(减)")), ("amount", ("金额",)), ("decisions", ("处理决定",))]
_T2_DEFAULT_COLS = {
    "rules": ["issued", "repealed", "in_force"], "normative_docs": ["issued", "repealed", "in_force"],
    "licensing": ["decisions"], "punishment": ["decisions"], "enforcement": ["decisions"],
    "fees": ["amount"], "other_services": ["decisions"], "procurement": ["items", "amount"]}
_FORMAT_2019_COLS = {"made", "published", "total_public", "previous", "change", "items"}


def _match(text: str, patterns: list[tuple[str, tuple[str, ...]]]) -> str | None:
    return next((key for key, words in patterns if any(w in text for w in words)), None)


def _read_table2(rows: Grid, section: str) -> tuple[list[Fact], str | None]:
    """Read the 第二十条 blocks; return the facts and "2019"/"2021" when the header shows it."""
    facts: list[Fact] = []
    seen: set[tuple[str, str]] = set()
    columns: list[tuple[str, str, str]] = []  # (key, label, unit) of the current block
    format_hint: str | None = None
    for cells in rows:
        labels = [c for c in cells if _number(c) is None]
        if not labels:
            continue
        key = _match(_norm(labels[0]), _T2_ROW_PATTERNS)
        values = [x for x in map(_number, cells[cells.index(labels[0]) + 1:]) if x is not None]
        if len(labels) == 1 and key and values:
            cols = columns or [(c, TABLE2_COLS[c], TABLE2_UNITS[c]) for c in _T2_DEFAULT_COLS[key]]
            for (col, col_label, unit), value in zip(cols, values):
                if (key, col) not in seen:
                    seen.add((key, col))
                    facts.append(Fact("二", key, TABLE2_ROWS[key], col, col_label, value, unit, section))
            continue
        header = [(found, cell) for cell in cells if (found := _match(_norm(cell), _T2_COL_PATTERNS))]
        if header:
            columns = [(c, _header_label(cell, c), _header_unit(cell, c)) for c, cell in header]
            if any(c in _FORMAT_2019_COLS for c, _ in header):
                format_hint = "2019"
            elif format_hint is None and any(c in ("issued", "repealed", "in_force") for c, _ in header):
                format_hint = "2021"
    return facts, format_hint


def _header_label(cell: str, col: str) -> str:
    label = re.sub(r"[（(][^）)]*单位[^）)]*[）)]", "", _norm(cell))
    return label or TABLE2_COLS[col]


def _header_unit(cell: str, col: str) -> str:
    unit = re.search(r"(?:单位[:：]|[（(])(万元|亿元|元|件|项|个)", _norm(cell))
    return unit.group(1) if unit else TABLE2_UNITS[col]


# --------------------------------------------------------------------------- table 三

_T3_TOP = [("carried_out", ("结转下年", "继续办理")), ("carried_in", ("上年结转",)), ("new", ("新收",))]
_T3_GROUPS = [("partial", ("部分公开",)), ("withheld", ("不予公开",)), ("disclosed", ("予以公开",)),
              ("unavailable", ("无法提供",)), ("not_processed", ("不予处理",)),
              ("other", ("其他处理",)), ("outcome_total", ("总计", "合计"))]
_T3_ITEMS: dict[str, list[tuple[int, tuple[str, ...]]]] = {
    "withheld": [(1, ("国家秘密",)), (2, ("禁止公开", "法律行政法规")), (3, ("三安全", "一稳定", "危及")),
                 (4, ("第三方",)), (5, ("内部事务",)), (6, ("过程性",)), (7, ("执法案卷",)),
                 (8, ("查询事项", "行政查询"))],
    "unavailable": [(1, ("不掌握",)), (2, ("另行制作", "没有现成")), (3, ("补正后", "不明确"))],
    "not_processed": [(1, ("信访", "举报", "投诉")), (2, ("重复申请",)), (3, ("出版物",)),
                      (4, ("大量反复", "反复申请")), (5, ("重新出具", "确认", "已获取"))],
    "other": [(1, ("不补正",)), (2, ("缴纳费用", "缴费", "收费通知")), (3, ("其他",))],
}
_T3_LEAF_GROUPS = {"disclosed", "partial", "outcome_total"}


def _t3_item(group: str, text: str, number: int | None) -> int | None:
    """Which sub-row of ``group`` a label names: by its words, else by its number."""
    for n, words in _T3_ITEMS[group]:
        if any(w in text for w in words):
            return n
    return number if number and 1 <= number <= len(_T3_ITEMS[group]) else None


def _read_table3(rows: Grid, section: str) -> list[Fact]:
    """Read table 三 rows by their labels; the last seven cells of a row are its values."""
    found: dict[str, tuple[str, list[float]]] = {}
    group: str | None = None
    for cells in rows:
        if len(cells) < 8:
            continue
        parsed = [_number(c) for c in cells[-7:]]
        labels = [n for n in map(_norm, cells[:-7]) if n]
        if None in parsed or not labels:
            continue
        values = [x or 0.0 for x in parsed]
        blanks = [_norm(c) == "" for c in cells[-7:]]
        key = label = None
        for text in labels:
            item = _ITEM.match(text)
            top = None if item else _match(text, _T3_TOP)
            new_group = None if item or top else _match(text, _T3_GROUPS)
            if top:
                key, group = top, None
            elif new_group:
                group = new_group
                if new_group in _T3_LEAF_GROUPS:
                    key, group = new_group, None
                elif new_group == "other":  # 2019 format: "（六）其他处理" has no sub-rows
                    key, label = "other_3", f"{_OUTCOME}·其他处理"
                else:
                    key = new_group
            elif group and group not in _T3_LEAF_GROUPS:
                n = _t3_item(group, item.group(2) if item else text, int(item.group(1)) if item else None)
                if n:
                    key, label = f"{group}_{n}", None
        if key and key not in found:
            found[key] = (label or TABLE3_ROWS.get(key) or TABLE3_GROUP_ROWS[key], values, blanks)
    order = [*TABLE3_ROWS, *TABLE3_GROUP_ROWS]
    return [Fact("三", key, found[key][0], col, col_label, value, "件", section, blank)
            for key in sorted(found, key=order.index)
            for (col, col_label), value, blank in zip(TABLE3_COLS.items(), found[key][1], found[key][2])]


# --------------------------------------------------------------------------- table 四


def _read_table4(rows: Grid, section: str) -> list[Fact]:
    """Read table 四: one row of 15 numbers (复议, 直接起诉, 复议后起诉 × 5 columns) as in
    the national format, or, where a report lays it out so, one labelled row per case type."""
    found: dict[str, list[float]] = {}
    for cells in rows:
        tail: list[float] = []
        for cell in reversed(cells):
            value = _number(cell)
            if value is None:
                break
            tail.insert(0, value)
        if len(tail) >= 15 and not found:
            tail = tail[-15:]
            found = {key: tail[i * 5:i * 5 + 5] for i, key in enumerate(TABLE4_ROWS)}
            break
        label = _norm("".join(cells[:len(cells) - len(tail)]))
        key = ("litigation_after_review" if "复议后" in label else "litigation_direct" if "未经复议" in label
               else "review" if "复议" in label and "诉讼" not in label else None)
        if key and len(tail) >= 5 and key not in found:
            found[key] = tail[-5:]
    return [Fact("四", key, TABLE4_ROWS[key], col, col_label, value, "件", section)
            for key in TABLE4_ROWS if key in found
            for (col, col_label), value in zip(TABLE4_COLS.items(), found[key])]


# --------------------------------------------------------------------------- title, year

_TITLE = re.compile(r"^(?P<a1>.*?)(?P<year>(?:19|20)\d{2}|[〇零一二][〇零一二三四五六七八九]{3})年度?"
                    r"(?P<a2>.*?)政府信息公开.{0,6}?报告")


def _find_title(paragraphs: list[str], hints: list[str]) -> tuple[int, str, str, int | None]:
    """Find the title among the first paragraphs (or HTML <h1>/<title> hints).

    Returns (paragraph index or -1, title, agency, year); agency may be "" and year None.
    """
    limit = next((i for i, p in enumerate(paragraphs) if _is_heading(p)), len(paragraphs))
    candidates = [(i, p) for i, p in enumerate(paragraphs[:min(limit, 30)])]
    candidates += [(-1, _clean_text(h)) for h in hints]
    for index, text in candidates:
        flat = text.replace(" ", "")
        if "政府信息公开" not in flat or "报告" not in flat or len(flat) > 80:
            continue
        match = _TITLE.search(flat)
        if match:
            year = int(match.group("year").translate(_CN_DIGITS))
            agency = _tidy_agency(match.group("a1") or match.group("a2"))
            title = flat[:match.end()]
        else:
            year = None
            agency = _tidy_agency(flat.split("政府信息公开")[0])
            title = flat[:flat.index("报告") + 2]
        if not agency and index > 0 and len(paragraphs[index - 1]) <= 30:
            agency = _tidy_agency(paragraphs[index - 1])  # title split over two lines
        return index, title, agency, year
    return -1, "", "", None


def _tidy_agency(text: str) -> str:
    text = re.sub(r"[《》“”\"\s]", "", text)
    text = re.sub(r"^(关于|[\d〇零一二三四五六七八九]+年度?)|(关于|的)$", "", text)
    return text.strip("，,：:、·-—_ ")


def _period_year(paragraphs: list[str]) -> int | None:
    """The year of the statistics period "自2021年1月1日起至2021年12月31日止"."""
    for text in paragraphs[:40]:
        match = re.search(r"(\d{4})年1月1日.{0,3}至(\d{4})年12月31日", text.replace(" ", ""))
        if match:
            return int(match.group(2))
    return None


# --------------------------------------------------------------------------- narrative


# Chinese numerals with a measure word ("第十二届", "三场") count as figures too.
_CN_FIGURE = re.compile(r"[一二两三四五六七八九十百千]+[届次个项件篇条家所名位场期批亿万]")


def _has_figure(sentence: str) -> bool:
    return bool(re.search(r"\d", sentence) or _CN_FIGURE.search(sentence))


def _is_topic(sentence: str, stop: str) -> bool:
    """A short sentence without figures that names what the next sentences are about.

    Only a sentence closed by a full stop qualifies: a clause ending in "；" is an item of a
    list, not a topic.
    """
    return (stop in ("。", "！", "？", "") and len(sentence) <= 20 and not _has_figure(sentence)
            and not sentence.endswith(("：", ":")))


def _passages(paragraphs: list[str]) -> list[Passage]:
    """Cut the narrative into sentences with their heading chain and topic sentence(s)."""
    passages: list[Passage] = []
    section = sub = ""
    for para in paragraphs:
        if _is_note(para):
            continue
        body = para
        for pattern, is_top in ((_SECTION_HEAD, True), (_SUB_HEAD, False)):
            if not pattern.match(para):
                continue
            head, stop, rest = para.partition("。")
            if not stop and len(para) > 40:  # a long paragraph that merely starts with a number
                head, rest = re.split(r"[，：:]", para, maxsplit=1)[0], para
            if len(head) > 40:
                break
            if is_top:
                section, sub = head, ""
            else:
                sub = head
            body = rest
            break
        chain = " ".join(x for x in (section, sub) if x)
        # Outside the narrative sections (page furniture, preamble, table notes) only
        # sentences with figures are worth keeping.
        keep_plain = bool(section) and not _table_of_heading(section)
        topics: list[str] = []
        last_was_topic = False
        pieces = _SENTENCE_END.split(body)  # sentence, stop, sentence, stop, …, tail
        for sentence, stop in zip(pieces[::2], [*pieces[1::2], ""]):
            sentence = sentence.strip(" ，,、")
            if not sentence:
                continue
            topic = _is_topic(sentence, stop)
            if topic:
                topics = topics + [sentence] if last_was_topic else [sentence]
            if (keep_plain or _has_figure(sentence)) and not is_furniture(sentence):
                passages.append(Passage(chain, "" if topic else "。".join(topics), sentence))
            last_was_topic = topic
    return passages


# A web page's furniture, or a PDF's page marks: never a figure of the report.
_FURNITURE = re.compile(
    r"发布时间|发布日期|浏览次数|访问次数|阅读次数|点击数|字号[【\[（(]|【大|打印本页|打印此页|关闭窗口|关闭本页|"
    r"上一篇|下一篇|主办单位|承办单位|协办单位|备案号|ICP备|ICP证|公网安备|网站标识码|网站地图|联系我们|"
    r"隐私声明|版权所有|技术支持|分辨率|浏览器浏览|扫一扫|分享到|收藏本页|设为首页|加入收藏|当前位置|索引号|"
    r"信息来源[:：]|来源[:：]|无障碍浏览|长者模式|返回顶部|【打印】|【关闭】", re.IGNORECASE)


def is_furniture(sentence: str) -> bool:
    """Page furniture (发布时间, 浏览次数, 打印本页, 上一篇/下一篇, footers) or a page mark (—4—)."""
    if not re.search(r"[\u4e00-\u9fff]{2}", sentence):
        return True
    return _FURNITURE.search(sentence) is not None


# --------------------------------------------------------------------------- validation


def validate(facts: Iterable[Fact]) -> list[str]:
    """Check the arithmetic the national format prescribes; return messages in Chinese.

    Table 三: per column, 新收 + 上年结转 == 办理结果总计 + 结转下年度; per column, the outcome
    rows add up to 办理结果总计; per row, 自然人 and the five 法人或其他组织 columns add up to
    总计.  Table 四: per row, the four result columns add up to 总计.  Rules whose cells are
    missing are skipped.
    """
    facts = list(facts)
    v = {(f.table, f.row_key, f.col_key): f.value for f in facts}
    labels = {(f.table, f.row_key): f.row_label for f in facts}
    problems: list[str] = []

    def values(pairs: Iterable[tuple[str, str]], table: str = "三") -> list[float] | None:
        """The values of these (row, col) cells, or None when one is missing."""
        keys = [(table, row, col) for row, col in pairs]
        return [v[k] for k in keys] if all(k in v for k in keys) else None

    def differ(a: float, b: float) -> bool:
        return abs(a - b) > 1e-6

    for col, col_label in TABLE3_COLS.items():
        balance = values((row, col) for row in ("new", "carried_in", "outcome_total", "carried_out"))
        if balance:
            new, carried_in, total, carried_out = balance
            if differ(new + carried_in, total + carried_out):
                problems.append(
                    f"表三“{col_label}”列：本年新收（{_fmt(new)}）与上年结转（{_fmt(carried_in)}）之和为"
                    f"{_fmt(new + carried_in)}，但本年度办理结果总计（{_fmt(total)}）与结转下年度继续办理"
                    f"（{_fmt(carried_out)}）之和为{_fmt(total + carried_out)}，两者应相等。")
    # A group row counts only when the report gives none of its sub-rows (else it is a subtotal).
    subtotals = {g for g in TABLE3_GROUP_ROWS if any(k.startswith(g + "_") for _, k, _ in v)}
    outcome_rows = [row for row in TABLE3_OUTCOME_ROWS if row not in subtotals]
    for col, col_label in TABLE3_COLS.items():
        total_cell = values([("outcome_total", col)])
        parts = [v[k] for row in outcome_rows if (k := ("三", row, col)) in v]
        if total_cell and parts and differ(sum(parts), total_cell[0]):
            problems.append(f"表三“{TABLE3_ROWS['outcome_total']}”的“{col_label}”列为{_fmt(total_cell[0])}，"
                            f"但各项办理结果相加为{_fmt(sum(parts))}。")
    for row in [*TABLE3_ROWS, *TABLE3_GROUP_ROWS]:
        cells = values((row, col) for col in TABLE3_COLS)
        if cells and differ(sum(cells[:-1]), cells[-1]):
            problems.append(f"表三“{labels['三', row]}”一行：自然人与法人或其他组织各列相加为"
                            f"{_fmt(sum(cells[:-1]))}，但“总计”列为{_fmt(cells[-1])}。")
    for row, row_label in TABLE4_ROWS.items():
        cells = values(((row, col) for col in TABLE4_COLS), "四")
        if cells and differ(sum(cells[:-1]), cells[-1]):
            problems.append(f"表四“{row_label}”一行：结果维持、结果纠正、其他结果、尚未审结相加为"
                            f"{_fmt(sum(cells[:-1]))}，但“总计”为{_fmt(cells[-1])}。")
    return problems


def parse_report(data: bytes | str, filename: str, agency: str | None = None,
                 year: int | None = None) -> Report:
    """Parse a report file (``.txt``, ``.html``/``.htm`` or ``.docx``); see :func:`_parse_report`.

    A file whose structure is too deep to walk (thousands of nested tables) is refused
    like any other non-report.
    """
    try:
        return _parse_report(data, filename, agency=agency, year=year)
    except RecursionError as exc:
        raise ReportFormatError("文件结构嵌套过深，无法识别为政府信息公开工作年度报告。") from exc
