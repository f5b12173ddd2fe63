"""Synthetic 政府信息公开工作年度报告 for tests: one dict of numbers, three file forms.

A *spec* (see :func:`mof_2022` and :func:`province_stats_2020`) holds the agency, year,
format and every table cell.  :func:`document` lays it out as paragraphs and tables whose
cells carry row/column spans like the national format; :func:`to_text` renders that the way
a docx-to-text converter does (cells behind tabs, split header cells, bare tabs, full-width
digits, dashes for zero, a missing 注), :func:`to_html` as a government web page with a real
<table> using rowspan/colspan, and :func:`to_docx` as a Word file with merged cells.
:func:`expected_cells` gives the values a parser must read back.

Run ``python tests/report_samples.py`` to refresh the copies in ``tests/data/reports/``.
"""

from __future__ import annotations

import copy
import html
import io
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data" / "reports"

COLS3 = ["natural", "business", "research", "public_interest", "legal_services", "other", "total"]
COLS4 = ["upheld", "corrected", "other", "pending", "total"]
ROWS4 = ["review", "litigation_direct", "litigation_after_review"]

# (group key, group label, item labels) in the national format; 2019 has no items for 其他处理.
GROUPS = [
    ("withheld", "（三）不予公开", ["属于国家秘密", "其他法律行政法规禁止公开", "危及“三安全一稳定”",
                                "保护第三方合法权益", "属于三类内部事务信息", "属于四类过程性信息",
                                "属于行政执法案卷", "属于行政查询事项"]),
    ("unavailable", "（四）无法提供", ["本机关不掌握相关政府信息", "没有现成信息需要另行制作",
                                   "补正后申请内容仍不明确"]),
    ("not_processed", "（五）不予处理", ["信访举报投诉类申请", "重复申请", "要求提供公开出版物",
                                     "无正当理由大量反复申请", "要求行政机关确认或重新出具已获取信息"]),
    ("other", "（六）其他处理", ["申请人无正当理由逾期不补正、行政机关不再处理其政府信息公开申请",
                              "申请人逾期未按收费通知要求缴纳费用、行政机关不再处理其政府信息公开申请",
                              "其他"]),
]

Cell = tuple  # (text, rowspan, colspan)


def _c(text: Any, rowspan: int = 1, colspan: int = 1) -> Cell:
    return (text, rowspan, colspan)


# --------------------------------------------------------------------------- specs


def _table3(outcomes: dict[str, list[int]], carried_in: list[int], carried_out: list[int],
            rows: list[str]) -> dict[str, list[float]]:
    """Complete table 三 from the six applicant columns of each outcome row, consistently."""
    table = {row: [float(x) for x in outcomes.get(row, [0] * 6)] for row in rows}
    for values in table.values():
        values.append(sum(values))
    outcome_total = [sum(table[row][i] for row in rows) for i in range(7)]
    carried_in_f = [float(x) for x in carried_in] + [float(sum(carried_in))]
    carried_out_f = [float(x) for x in carried_out] + [float(sum(carried_out))]
    new = [outcome_total[i] + carried_out_f[i] - carried_in_f[i] for i in range(7)]
    return {"new": new, "carried_in": carried_in_f, **table, "outcome_total": outcome_total,
            "carried_out": carried_out_f}


def _outcome_rows(fmt: str, merged: tuple[str, ...] = ()) -> list[str]:
    rows = ["disclosed", "partial"]
    for key, _, items in GROUPS:
        if key in merged:
            rows.append(key)
        elif key == "other" and fmt == "2019":
            rows.append("other_3")
        else:
            rows += [f"{key}_{i}" for i in range(1, len(items) + 1)]
    return rows


def mof_2022() -> dict[str, Any]:
    """财政部 2022, national 2021 format, with large numbers, decimals and zeros."""
    outcomes = {
        "disclosed": [412, 35, 3, 2, 9, 6], "partial": [88, 7, 0, 1, 2, 0],
        "withheld_1": [3, 0, 0, 0, 0, 0], "withheld_2": [5, 1, 0, 0, 0, 0],
        "withheld_3": [1, 0, 0, 0, 0, 0], "withheld_4": [6, 2, 0, 0, 1, 0],
        "withheld_5": [14, 1, 0, 0, 0, 1], "withheld_6": [9, 0, 0, 0, 0, 0],
        "withheld_7": [2, 0, 0, 0, 0, 0], "withheld_8": [4, 0, 0, 0, 0, 0],
        "unavailable_1": [301, 22, 1, 0, 4, 3], "unavailable_2": [40, 3, 0, 0, 0, 0],
        "unavailable_3": [12, 0, 0, 0, 0, 0], "not_processed_1": [57, 2, 0, 0, 0, 1],
        "not_processed_2": [33, 1, 0, 0, 0, 0], "not_processed_3": [18, 0, 1, 0, 0, 0],
        "not_processed_4": [7, 0, 0, 0, 0, 0], "not_processed_5": [3, 0, 0, 0, 0, 0],
        "other_1": [26, 1, 0, 0, 0, 0], "other_3": [11, 0, 0, 0, 1, 0],
    }
    return {
        "agency": "财政部", "year": 2022, "format": "2021",
        "title": "财政部2022年政府信息公开工作年度报告",
        "intro": "本报告所列数据的统计期限自2022年1月1日起至2022年12月31日止。本报告电子版可在财政部门户网站下载。",
        "narrative": {
            "一、总体情况": [
                "2022年，财政部认真贯彻落实《中华人民共和国政府信息公开条例》，全面推进财政信息公开工作。",
                "（一）主动公开。全年通过门户网站主动公开政府信息2356条。加强政策解读。"
                "发布政策解读材料68篇，其中图解类解读21篇；召开新闻发布会１２场。",
                "（二）平台建设。优化门户网站。网站全年访问量达3.2亿人次，较上年增长12%。",
            ],
            "五、存在的主要问题及改进情况": [
                "2022年，财政部政府信息公开工作取得一定成效，但政策解读的针对性仍需提高。",
                "2023年，财政部将进一步完善信息发布机制。",
            ],
            "六、其他需要报告的事项": ["本年度未收取信息处理费。"],
        },
        "table2": {
            ("rules", "issued"): 2, ("rules", "repealed"): 1, ("rules", "in_force"): 98,
            ("normative_docs", "issued"): 35, ("normative_docs", "repealed"): 12,
            ("normative_docs", "in_force"): 1204, ("licensing", "decisions"): 1356,
            ("punishment", "decisions"): 23, ("enforcement", "decisions"): 0,
            ("fees", "amount"): 12345.67,
        },
        "table3": _table3(outcomes, [45, 3, 0, 0, 1, 0], [60, 4, 0, 0, 2, 1], _outcome_rows("2021")),
        "table4": {"review": [10, 2, 1, 3, 16], "litigation_direct": [5, 0, 1, 4, 10],
                   "litigation_after_review": [3, 0, 0, 2, 5]},
        "notes": True,
    }


def province_stats_2020() -> dict[str, Any]:
    """某省统计局 2020, older 2019 trial format; no section 六 and no 注 lines."""
    outcomes = {
        "disclosed": [41, 6, 2, 0, 1, 1], "partial": [5, 1, 0, 0, 0, 0],
        "withheld_1": [1, 0, 0, 0, 0, 0], "withheld_5": [2, 0, 0, 0, 0, 0],
        "withheld_6": [1, 1, 0, 0, 0, 0], "unavailable_1": [17, 2, 0, 0, 0, 1],
        "unavailable_3": [3, 0, 0, 0, 0, 0], "not_processed_2": [4, 0, 0, 0, 0, 0],
        "not_processed_3": [6, 1, 0, 0, 0, 0], "other_3": [2, 0, 0, 0, 0, 0],
    }
    return {
        "agency": "某省统计局", "year": 2020, "format": "2019",
        "title": "某省统计局2020年度政府信息公开工作年度报告",
        "intro": "本年度报告中所列数据的统计期限自2020年1月1日起至2020年12月31日止。",
        "narrative": {
            "一、总体情况": [
                "2020年，某省统计局坚持以公开为常态、不公开为例外，政府信息公开工作稳步推进。",
                "（一）主动公开情况。及时发布统计数据。全年发布统计信息２１５条，召开新闻发布会8场。",
                "（二）依申请公开情况。全年受理政府信息公开申请89件，均在法定期限内答复。",
            ],
            "五、存在的主要问题及改进情况": ["数据解读的深度仍需加强。下一步将丰富解读形式。"],
        },
        "table2": {
            ("rules", "made"): 0, ("rules", "published"): 0, ("rules", "total_public"): 12,
            ("normative_docs", "made"): 5, ("normative_docs", "published"): 5,
            ("normative_docs", "total_public"): 87,
            ("licensing", "previous"): 15, ("licensing", "change"): -2, ("licensing", "decisions"): 356,
            ("other_services", "previous"): 8, ("other_services", "change"): 1,
            ("other_services", "decisions"): 1024,
            ("punishment", "previous"): 6, ("punishment", "change"): 0, ("punishment", "decisions"): 42,
            ("enforcement", "previous"): 2, ("enforcement", "change"): 0, ("enforcement", "decisions"): 0,
            ("fees", "previous"): 3, ("fees", "change"): -1,
            ("procurement", "items"): 27, ("procurement", "amount"): 1389.6,
        },
        "table3": _table3(outcomes, [2, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], _outcome_rows("2019")),
        "table4": {"review": [2, 1, 0, 0, 3], "litigation_direct": [1, 0, 0, 1, 2],
                   "litigation_after_review": [0, 0, 0, 0, 0]},
        "notes": False,
    }


def merge_group(spec: dict[str, Any], group: str) -> dict[str, Any]:
    """A copy of ``spec`` whose ``group`` (e.g. "unavailable") is one row without sub-rows."""
    spec = copy.deepcopy(spec)
    t3 = spec["table3"]
    items = [k for k in list(t3) if k.startswith(group + "_")]
    merged = [sum(t3[k][i] for k in items) for i in range(7)]
    rebuilt: dict[str, list[float]] = {}
    for key, values in t3.items():
        if key == items[0]:
            rebuilt[group] = merged
        elif key not in items:
            rebuilt[key] = values
    spec["table3"] = rebuilt
    return spec


def expected_cells(spec: dict[str, Any]) -> dict[tuple[str, str, str], float]:
    """Every (table, row_key, col_key) -> value a parser must find."""
    cells = {("二", row, col): float(v) for (row, col), v in spec["table2"].items()}
    for row, values in spec["table3"].items():
        cells.update({("三", row, col): float(v) for col, v in zip(COLS3, values)})
    for row, values in spec["table4"].items():
        cells.update({("四", row, col): float(v) for col, v in zip(COLS4, values)})
    return cells


# --------------------------------------------------------------------------- layout


def _table2_rows(spec: dict[str, Any]) -> list[list[Cell]]:
    t2 = spec["table2"]
    if spec["format"] == "2021":
        blocks = [
            ("第二十条第（一）项", ["本年制发件数", "本年废止件数", "现行有效件数"],
             [("规章", "rules"), ("行政规范性文件", "normative_docs")], ["issued", "repealed", "in_force"]),
            ("第二十条第（五）项", ["本年处理决定数量"], [("行政许可", "licensing")], ["decisions"]),
            ("第二十条第（六）项", ["本年处理决定数量"], [("行政处罚", "punishment"), ("行政强制", "enforcement")],
             ["decisions"]),
            ("第二十条第（八）项", ["本年收费金额（单位：万元）"], [("行政事业性收费", "fees")], ["amount"]),
        ]
    else:
        counts = ["上一年项目数量", "本年增/减", "处理决定数量"]
        blocks = [
            ("第二十条第（一）项", ["本年新制作数量", "本年新公开数量", "对外公开总数量"],
             [("规章", "rules"), ("规范性文件", "normative_docs")], ["made", "published", "total_public"]),
            ("第二十条第（五）项", counts, [("行政许可", "licensing"), ("其他对外管理服务事项", "other_services")],
             ["previous", "change", "decisions"]),
            ("第二十条第（六）项", counts, [("行政处罚", "punishment"), ("行政强制", "enforcement")],
             ["previous", "change", "decisions"]),
            ("第二十条第（八）项", ["上一年项目数量", "本年增/减"], [("行政事业性收费", "fees")], ["previous", "change"]),
            ("第二十条第（九）项", ["采购项目数量", "采购总金额"], [("政府集中采购", "procurement")], ["items", "amount"]),
        ]
    rows: list[list[Cell]] = []
    for title, headers, items, cols in blocks:
        last_span = 4 - len(headers)  # the last column absorbs the unused grid columns
        spans = [1] * (len(headers) - 1) + [last_span]
        rows.append([_c(title, 1, 4)])
        rows.append([_c("信息内容")] + [_c(h, 1, s) for h, s in zip(headers, spans)])
        for label, row in items:
            rows.append([_c(label)] + [_c(t2[(row, col)], 1, s) for col, s in zip(cols, spans)])
    return rows


def _table3_rows(spec: dict[str, Any]) -> list[list[Cell]]:
    t3 = spec["table3"]
    rows: list[list[Cell]] = [
        [_c("（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）", 3, 3), _c("申请人情况", 1, 7)],
        [_c("自然人", 2), _c("法人或其他组织", 1, 5), _c("总计", 2)],
        [_c("商业\n企业"), _c("科研\n机构"), _c("社会公益组织"), _c("法律服务机构"), _c("其他")],
        [_c("一、本年新收政府信息公开申请数量", 1, 3), *map(_c, t3["new"])],
        [_c("二、上年结转政府信息公开申请数量", 1, 3), *map(_c, t3["carried_in"])],
    ]
    outcome: list[list[Cell]] = [
        [_c("（一）予以公开", 1, 2), *map(_c, t3["disclosed"])],
        [_c("（二）部分公开（区分处理的，只计这一情形，不计其他情形）", 1, 2), *map(_c, t3["partial"])],
    ]
    for key, label, items in GROUPS:
        present = [(i, item) for i, item in enumerate(items, 1) if f"{key}_{i}" in t3]
        if key in t3 or (key == "other" and spec["format"] == "2019"):
            outcome.append([_c(label, 1, 2), *map(_c, t3[key if key in t3 else "other_3"])])
            continue
        for n, (i, item) in enumerate(present):
            lead = [_c(label, len(present))] if n == 0 else []
            outcome.append([*lead, _c(f"{i}.{item}"), *map(_c, t3[f"{key}_{i}"])])
    outcome.append([_c("（七）总计", 1, 2), *map(_c, t3["outcome_total"])])
    outcome[0].insert(0, _c("三、本年度办理结果", len(outcome)))
    rows += outcome
    rows.append([_c("四、结转下年度继续办理", 1, 3), *map(_c, t3["carried_out"])])
    return rows


def _table4_rows(spec: dict[str, Any]) -> list[list[Cell]]:
    labels = ["结果维持", "结果纠正", "其他结果", "尚未审结", "总计"]
    values = [v for row in ROWS4 for v in spec["table4"][row]]
    return [
        [_c("行政复议", 1, 5), _c("行政诉讼", 1, 10)],
        [*(_c(x, 2) for x in labels), _c("未经复议直接起诉", 1, 5), _c("复议后起诉", 1, 5)],
        [*map(_c, labels * 2)],
        [*map(_c, values)],
    ]


def document(spec: dict[str, Any]) -> list[tuple[str, Any]]:
    """The report as ("title"|"p", text) and ("table", rows of cells), in order."""
    note = "注：本表数据含直属单位。"
    narrative = spec["narrative"]
    blocks: list[tuple[str, Any]] = [("title", spec["title"]), ("p", spec["intro"])]
    blocks += [("p", "一、总体情况")] + [("p", p) for p in narrative["一、总体情况"]]
    for heading, rows in [("二、主动公开政府信息情况", _table2_rows(spec)),
                          ("三、收到和处理政府信息公开申请情况", _table3_rows(spec)),
                          ("四、政府信息公开行政复议、行政诉讼情况", _table4_rows(spec))]:
        blocks += [("p", heading), ("table", rows)]
        if spec["notes"]:
            blocks.append(("p", note))
    for heading in ("五、存在的主要问题及改进情况", "六、其他需要报告的事项"):
        if heading in narrative:
            blocks += [("p", heading)] + [("p", p) for p in narrative[heading]]
    return blocks


def place(rows: list[list[Cell]]) -> tuple[list[tuple[int, int, int, int, Any]], int]:
    """Grid positions (row, col, rowspan, colspan, text) of every cell, and the width."""
    taken: set[tuple[int, int]] = set()
    placed = []
    for r, row in enumerate(rows):
        c = 0
        for text, rowspan, colspan in row:
            while (r, c) in taken:
                c += 1
            placed.append((r, c, rowspan, colspan, text))
            taken.update((r + dr, c + dc) for dr in range(rowspan) for dc in range(colspan))
            c += colspan
    return placed, max(c + cs for _, c, _, cs, _ in placed)


def _number_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:.6f}".rstrip("0").rstrip(".")


def _show(value: Any, form: str, r: int, c: int) -> str:
    """How a cell is written, varying like real reports do (same value, other spelling)."""
    if isinstance(value, str):
        return value
    text = _number_text(value)
    seed = r * 7 + c
    if form == "txt":
        if value == 0:
            return ["", "—", "0", "－", "0"][seed % 5]
        if abs(value) >= 1000:
            whole, _, frac = text.partition(".")
            text = f"{int(whole):,}" + (f".{frac}" if frac else "")
        elif seed % 4 == 0:
            text = text.translate(str.maketrans("0123456789.", "０１２３４５６７８９．"))
        return (" " + text + " ") if seed % 3 == 0 else text
    if form == "html":
        return ["", "0", "-"][seed % 3] if value == 0 else text
    return "" if value == 0 and seed % 2 else text


# --------------------------------------------------------------------------- renderers


def to_text(spec: dict[str, Any]) -> str:
    """Render like the docx converter: cells behind tabs, blank lines between rows."""
    lines: list[str] = []
    for kind, content in document(spec):
        if kind == "table":
            placed, _ = place(content)
            for r in range(len(content)):
                for r0, c, _, _, text in sorted((p for p in placed if p[0] <= r < p[0] + p[2]),
                                                key=lambda p: p[1]):
                    shown = _show(text, "txt", r, c) if r0 == r else ""
                    if r0 == r == len(content) - 1 and c == 0:
                        shown = "[bookmark: _GoBack]" + shown  # stray converter marker
                    lines.append("\t" + shown)
                lines.append("")
            lines.append("")
        elif kind == "title":
            lines += [content, ""]
        else:
            # Sub-headings get a stray leading space, as in converted reports.
            lines.append((" " + content) if content.startswith("（") else content)
    return "\n".join(lines) + "\n"


def to_html(spec: dict[str, Any], charset: str = "utf-8") -> str:
    """Render as a government web page: navigation, <h1>, <p> paragraphs, real tables."""
    out = [f'<!DOCTYPE html><html><head><meta charset="{charset}"><title>{spec["title"]}_门户网站</title>'
           "<style>td{border:1px solid}</style></head><body>",
           '<div class="nav">首页 &gt; 政务公开 &gt; 政府信息公开年报</div>',
           '<div class="article">']
    for kind, content in document(spec):
        if kind == "title":
            out.append(f"<h1>{html.escape(content)}</h1>")
        elif kind == "p":
            tag = "h3" if content[:2] in ("一、", "二、", "三、", "四、", "五、", "六、") else "p"
            out.append(f'<{tag} style="text-indent:2em">{html.escape(content)}</{tag}>')
        else:
            placed, _ = place(content)
            out.append('<table border="1" cellspacing="0"><tbody>')
            for r in range(len(content)):
                out.append("<tr>")
                for _, c, rowspan, colspan, text in (p for p in placed if p[0] == r):
                    attrs = (f' rowspan="{rowspan}"' if rowspan > 1 else "") + (
                        f' colspan="{colspan}"' if colspan > 1 else "")
                    shown = html.escape(_show(text, "html", r, c)).replace("\n", "<br/>")
                    out.append(f"<td{attrs}><p>{shown or '&nbsp;'}</p></td>")
                out.append("</tr>")
            out.append("</tbody></table>")
    out.append("</div></body></html>")
    return "\n".join(out)


def to_docx(spec: dict[str, Any]) -> bytes:
    """Render as a Word file with python-docx, merging header and label cells."""
    import docx

    document_ = docx.Document()
    for kind, content in document(spec):
        if kind == "title":
            document_.add_heading(content, level=1)
        elif kind == "p":
            document_.add_paragraph(content)
        else:
            placed, width = place(content)
            table = document_.add_table(rows=len(content), cols=width)
            for r, c, rowspan, colspan, text in placed:
                cell = table.cell(r, c)
                if rowspan > 1 or colspan > 1:
                    cell = cell.merge(table.cell(r + rowspan - 1, c + colspan - 1))
                cell.text = _show(text, "docx", r, c)
    buffer = io.BytesIO()
    document_.save(buffer)
    return buffer.getvalue()


def write(spec: dict[str, Any], form: str, path: Path) -> Path:
    """Write ``spec`` as ``form`` ("txt", "html" or "docx") to ``path``; return the path."""
    if form == "txt":
        path.write_text(to_text(spec), encoding="utf-8")
    elif form == "html":
        path.write_text(to_html(spec), encoding="utf-8")
    else:
        path.write_bytes(to_docx(spec))
    return path


SAMPLES = {"mof-2022": mof_2022, "province-stats-2020": province_stats_2020}


if __name__ == "__main__":
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    for name, make in SAMPLES.items():
        for form in ("txt", "html", "docx"):
            print(write(make(), form, DATA_DIR / f"{name}.{form}"))
