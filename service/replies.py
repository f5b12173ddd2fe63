"""What the desk says and what it remembers: replies, analyses, report references, the
conversation context, and the derived figures of a report's tables.

Pure Python (no Flask); shared by the desk and its figure and conversation parts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .decision import Question
from .matcher import Candidate, QueryTerm
from .reports import TABLE3_GROUPS
from .text import is_number

_DIGIT_RE = re.compile(r"\d")
_PUNCT_RE = re.compile(r"[^\w\u4e00-\u9fff]+|_")
_YEAR_RE = re.compile(r"(?<!\d)((?:19[5-9]|20\d)\d)(?!\d)(?:\s*年度?)?(?![\d件个条元页次万亿人家篇场项])")
# Derived figures: sums the table implies.
DERIVED_COLS = {"legal_persons": ("法人或其他组织", ("business", "research", "public_interest",
                                                  "legal_services", "other"))}
DERIVED_ROWS = {
    "litigation": ("行政诉讼（未经复议直接起诉与复议后起诉合计）",
                   ("litigation_direct", "litigation_after_review")),
    "disclosure_rate": ("公开比例（予以公开与部分公开之和占办理结果总计的比例）",
                        ("disclosed", "partial", "outcome_total")),
}
# What the derived rows are matched by (their labels name their parts, which must not match).
DERIVED_ALIASES = {
    "litigation": ["行政诉讼", "行政诉讼合计", "诉讼案件", "被起诉"],
    "disclosure_rate": ["公开比例", "公开率", "公开的比例", "公开占比", "予以公开比例",
                        "公开的申请占多少", "百分之多少公开"],
}
# Each outcome group of table 三 (不予公开, 无法提供, 不予处理, 其他处理) is the sum of its items,
# which the table prints without a subtotal; a report that prints the group as one row is
# answered from that row.
for _group, (_name, _items) in TABLE3_GROUPS.items():
    DERIVED_ROWS[_group] = (f"本年度办理结果·{_name}（{len(_items)}项之和）",
                            tuple(f"{_group}_{i}" for i in range(1, len(_items) + 1)))
    DERIVED_ALIASES[_group] = [_name, f"{_name}合计", f"{_name}总数", f"{_name}的申请"]
_FOLLOW_UP_RE = re.compile(r"^(其中|那|那么|那个|还有|另外|再问|如果是|换成)|呢$")


@dataclass
class FactContext:
    """The figure the session asked about last, for follow-ups (那2020年呢)."""

    row_key: str
    col: str | None
    agency: str | None
    year: int | None

    @classmethod
    def from_ref(cls, ref: str | None) -> "FactContext | None":
        """Rebuild from a reply's ref: fact:REPORT:ROW:COL is resolved by the caller."""
        if not ref or not ref.startswith("decline:"):
            return None
        _, row, col, year, agency = (ref.split(":", 4) + ["", "", "", ""])[:5]
        return cls(row, col or None, agency or None, int(year) if is_number(year) else None)


@dataclass
class Context:
    """What a conversation said last: the figure asked last and the one before it, or the
    FAQ entry answered last."""

    fact: FactContext | None
    previous: FactContext | None
    entry_id: int | None


# What follows a place name when it names another body of that place (省统计局, 市教育局).
_SUM_RE = re.compile(r"合起来|加起来|加在一起|一共|总共|合计|总计|总和|之和|共计|两项|两个加")
_ANAPHOR_RE = re.compile(r"^(那|那么|还有|另外|如果)|它|这个|这种|那个|这样|此|该|上述|刚才")


@dataclass
class Reply:
    """What the desk says, plus what the service logs and stores with a ticket."""

    status: str  # answered | clarify | escalated
    kind: str | None  # faq | fact | chitchat | None
    answer: str
    source: str | None = None
    source_url: str | None = None
    confidence: float = 0.0
    entry_id: int | None = None
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    ref: str | None = None  # what answered: "faq:12", "fact:3:new:total", "passage:7", ...
    normalised: str = ""
    tokens: list[str] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""  # why this decision, for the curators' test pane
    key: str | None = None  # what answered, stably: faq:<entry key>, fact:<row>/<col>, chitchat:<intent>
    # Worked out when asked without context: whether, after a report figure, this question
    # could be a follow-up of it (a sum, or a change of year, agency, row or column), so
    # that the figure asked before may change the reply. Not shown to the citizen.
    may_follow_a_figure: bool = False

    def __post_init__(self) -> None:
        # Scores carry bonuses and penalties; what a client sees is a probability-like 0..1.
        self.confidence = min(1.0, max(0.0, float(self.confidence)))

    def public(self) -> dict[str, Any]:
        """The JSON body of ``POST /api/ask`` (the ticket is added by the caller)."""
        return {"status": self.status, "kind": self.kind, "answer": self.answer,
                "source": self.source, "source_url": self.source_url,
                "confidence": round(self.confidence, 3), "entry_id": self.entry_id,
                "key": self.key, "suggestions": self.suggestions}


@dataclass
class Analysis:
    """One reading of a question (the whole message or one of its clauses)."""

    text: str
    normalised: str
    compact: str
    scope: "Scope"
    target: "ReportRef | None"
    missing: str | None
    question: Question
    terms: list[QueryTerm]
    candidates: list[Candidate]
    features: dict[str, float]
    confidence: float
    vague: bool
    rewritten: str = ""  # the message cleaned and rewritten by the paraphrase lexicon, punctuation kept

    @property
    def top_key(self) -> str | None:
        return self.candidates[0].doc.key if self.candidates else None


@dataclass
class ReportRef:
    """A report held in the knowledge base."""

    id: int
    agency: str
    year: int
    title: str

    @property
    def name(self) -> str:
        """Short name, e.g. 2021年国家统计局."""
        return f"{self.year}年{self.agency}"


@dataclass
class Scope:
    """The agencies and years a question names."""

    years: list[int]
    agencies: list[str]
    tokens: set[str]  # tokens of those names, neutral for matching
    typed: dict[str, str] = field(default_factory=dict)  # full name -> the name as the citizen wrote it


def format_number(value: float) -> str:
    """152.0 -> "152", 86.39 -> "86.39"."""
    if abs(value - round(value)) < 1e-9:
        return str(int(round(value)))
    return f"{value:.4f}".rstrip("0").rstrip(".")
