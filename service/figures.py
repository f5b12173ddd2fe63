"""Answering with a report's figures: one cell, a sum the table implies, the share
disclosed, a narrative sentence, or a plain "not held".

Pure Python (no Flask). A mixin of :class:`service.desk.Desk`, which holds the facts,
passages and reports these methods read.
"""
from __future__ import annotations

import re
from typing import Any

from . import reports as report_format
from .matcher import Candidate, Doc
from .replies import DERIVED_COLS, DERIVED_ROWS, ReportRef, Reply, format_number


class FigureAnswers:
    """Report figures as answers (mixed into the desk)."""

    facts: dict[tuple[int, str], dict[str, dict[str, Any]]]
    passages: dict[int, dict[str, Any]]
    reports: list[ReportRef]
    reports_by_id: dict[int, ReportRef]
    terms: dict[str, Any]
    settings: Any
    index: Any
    _col_aliases: list[tuple[str, str]]

    def _decline_text(self, missing: str) -> str:
        held = "、".join(f"{r.name}" for r in self.reports) or "（暂无）"
        return (f"抱歉，知识库中暂未收录{missing}的政府信息公开工作年度报告，无法提供该数据。"
                f"目前可以查询的年度报告有：{held}。")

    def _answer_fact(self, top: Candidate, target: ReportRef | None, compact: str,
                     base: dict[str, Any]) -> Reply:
        if target is None:
            return Reply("answered", "fact", self._decline_text(self.settings.home_agency),
                         confidence=1.0, ref="decline", reason="没有可用的报告", **base)
        return self._fact_reply(top.doc.ref, target, self._named_column(compact, top.doc), top.score, base)

    def _named_column(self, compact: str, doc: Doc | None) -> str | None:
        """The column a question names, once the row's own words are taken out."""
        rest = compact
        if doc is not None:
            # The row's own words (其他法律行政法规禁止公开) must not be read as a column (其他).
            for phrase in sorted(doc.phrasings, key=len, reverse=True):
                if len(phrase) > 1:
                    rest = rest.replace(phrase.replace(" ", ""), " ")
        named = None
        for alias, col in self._col_aliases:
            if alias and alias in rest:
                if alias == "其他" and re.search(r"其他(?![的呢吗]|$|申请人|组织|类|方面)", rest):
                    continue  # 其他法律行政法规, 其他处理: part of a row's name, not the column
                if col != "total":
                    return col
                named = named or col
        # 合计 / 总计 with a group named (以单位名义提的合计): the group's sum, not the row's.
        return named

    def _fact_reply(self, row_key: str, target: ReportRef, col: str | None, confidence: float,
                    base: dict[str, Any]) -> Reply:
        """The answer for one cell (or a sum the table implies) of a report."""
        cells = self._row_cells(target.id, row_key)
        if not cells:
            label = DERIVED_ROWS[row_key][0] if row_key in DERIVED_ROWS else row_key
            for doc in self.index.docs:
                if doc.kind == "fact" and doc.ref == row_key:
                    label = doc.phrasings[0]
            return Reply("answered", "fact", f"{target.name}的政府信息公开工作年度报告中没有“{label}”这一项数据。",
                         confidence=confidence, ref=f"fact:{target.id}:{row_key}",
                         reason="报告中没有这一行", **base)
        if col is None or not (col in cells or (col in DERIVED_COLS and "total" in cells)):
            col = self._default_column(row_key, cells)
        title = target.title or f"{target.year}年{target.agency}政府信息公开工作年度报告"
        lead = f"根据{target.year}年{target.agency}政府信息公开工作年度报告，"
        if row_key == "disclosure_rate":
            answer, section = self._share_text(target, col)
        else:
            value, label, unit, section = self._cell(cells, col)
            row_label = DERIVED_ROWS[row_key][0] if row_key in DERIVED_ROWS else next(iter(cells.values()))["row_label"]
            col_text = "" if col == "total" or len(cells) == 1 else f"（{label}）"
            if cells.get(col, {}).get("blank"):
                answer = f"{row_label}{col_text}一栏在报告中未填写（空白），报告没有列明具体数字。"
            else:
                answer = f"{row_label}{col_text}为{format_number(value)}{unit}。"
            if col == "total" and len(cells) > 2:
                parts = [f"{c['col_label']}{'未填写' if c.get('blank') else format_number(c['value']) + c['unit']}"
                         for k, c in cells.items() if k != "total"]
                answer += "其中：" + "，".join(parts) + "。"
            if col in DERIVED_COLS:
                answer += f"（{label}为{'、'.join(report_format.TABLE3_COLS[p] for p in DERIVED_COLS[col][1])}五列之和"
                unstated = [report_format.TABLE3_COLS[p] for p in DERIVED_COLS[col][1] if cells.get(p, {}).get("blank")]
                answer += f"；其中{'、'.join(unstated)}一栏未填写，按0计）" if unstated else "。）"
        anchor = {"二": "#table-2", "三": "#table-3", "四": "#table-4"}.get(next(iter(cells.values()))["tbl"], "")
        return Reply("answered", "fact", lead + answer, source=f"《{title}》{section}",
                     source_url=f"/reports/{target.id}{anchor}", confidence=confidence,
                     ref=f"fact:{target.id}:{row_key}:{col}", key=f"fact:{row_key}/{col}",
                     reason="报告表格数据", **base)

    def _share_text(self, target: ReportRef, col: str) -> tuple[str, str]:
        def value(row: str) -> float:
            cells = self.facts.get((target.id, row), {})
            return self._cell(cells, col)[0] if cells else 0.0

        disclosed, partial, total = value("disclosed"), value("partial"), value("outcome_total")
        cells = self.facts.get((target.id, "outcome_total"), {})
        _, label, _, section = self._cell(cells, col)
        who = "" if col == "total" else f"{label}申请中，"
        if total <= 0:
            return f"{who}本年度办理结果总计为0件，无法计算公开比例。", section
        share = (disclosed + partial) / total * 100
        return (f"{who}予以公开{format_number(disclosed)}件、部分公开{format_number(partial)}件，"
                f"合计{format_number(disclosed + partial)}件，占办理结果总计{format_number(total)}件的"
                f"{share:.1f}%。"), section

    def _row_cells(self, report_id: int, row_key: str) -> dict[str, dict[str, Any]]:
        if row_key == "disclosure_rate":
            return self.facts.get((report_id, "outcome_total"), {})
        printed = self.facts.get((report_id, row_key))
        if printed:
            return printed  # a group the report prints as one row
        if row_key in DERIVED_ROWS:
            parts = [self.facts.get((report_id, p), {}) for p in DERIVED_ROWS[row_key][1]]
            if not all(parts):
                return {}
            cells = {}
            for col, cell in parts[0].items():
                cells[col] = dict(cell, value=sum(p[col]["value"] for p in parts if col in p))
            return cells
        return self.facts.get((report_id, row_key), {})

    def _default_column(self, row_key: str, cells: dict[str, dict[str, Any]]) -> str:
        default = self.terms.get("default_col", {}).get(row_key)
        if default in cells:
            return default
        return "total" if "total" in cells else next(iter(cells))

    @staticmethod
    def _cell(cells: dict[str, dict[str, Any]], col: str) -> tuple[float, str, str, str]:
        if col in DERIVED_COLS:
            label, parts = DERIVED_COLS[col]
            any_cell = cells["total"]
            return (sum(cells[p]["value"] for p in parts if p in cells), label, any_cell["unit"],
                    any_cell["section"])
        c = cells[col]
        return c["value"], c["col_label"], c["unit"], c["section"]

    def _answer_passages(self, cands: list[Candidate], base: dict[str, Any]) -> Reply:
        rows = [self.passages[c.doc.ref] for c in cands[:3]]
        report = self.reports_by_id[rows[0]["report_id"]]
        rows = [r for r in rows if r["report_id"] == report.id]
        rows.sort(key=lambda r: r["position"])
        texts = []
        for r in rows:
            text = r["text"].strip().rstrip("。；;")
            if r["context"] and r["context"] not in text and not any(r["context"] in t for t in texts):
                text = f"{r['context'].rstrip('。')}：{text}"
            texts.append(text)
        section = rows[0]["section"]
        title = report.title or f"{report.year}年{report.agency}政府信息公开工作年度报告"
        answer = f"根据{report.year}年{report.agency}政府信息公开工作年度报告（{section}）：" + "；".join(texts) + "。"
        return Reply("answered", "fact", answer, source=f"《{title}》{section}",
                     source_url=f"/reports/{report.id}#narrative", confidence=cands[0].score,
                     ref=f"passage:{rows[0]['id']}", key="passage", reason="报告正文数据", **base)

    def _sum_reply(self, target: ReportRef, pair: list[tuple[str, str | None]], base: dict[str, Any]) -> Reply | None:
        parts = []
        total = 0.0
        unit = ""
        for row_key, col in pair:
            cells = self._row_cells(target.id, row_key)
            if not cells:
                return None
            col = col if col and (col in cells or col in DERIVED_COLS) else self._default_column(row_key, cells)
            value, label, unit, section = self._cell(cells, col)
            row_label = DERIVED_ROWS[row_key][0] if row_key in DERIVED_ROWS else next(iter(cells.values()))["row_label"]
            col_text = "" if col == "total" else f"（{label}）"
            parts.append(f"{row_label}{col_text}{format_number(value)}{unit}")
            total += value
        title = target.title or f"{target.year}年{target.agency}政府信息公开工作年度报告"
        answer = (f"根据{target.year}年{target.agency}政府信息公开工作年度报告，" + "与".join(parts)
                  + f"，合计{format_number(total)}{unit}。")
        row, col = pair[-1]
        return Reply("answered", "fact", answer, source=f"《{title}》", source_url=f"/reports/{target.id}",
                     confidence=0.9, ref=f"fact:{target.id}:{row}:{col or ''}", key=f"fact:sum/{col}",
                     reason="追问合计：上两问数字之和", **base)
