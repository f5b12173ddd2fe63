"""Following a conversation: what was asked last, and the short questions that continue it
(那部分公开的呢, 法律服务机构呢, 那2020年呢, 合起来多少, 这个怎么收费).

Pure Python (no Flask). A mixin of :class:`service.desk.Desk`.
"""
from __future__ import annotations

import re
from typing import Any

from .matcher import STRAY_CHAR_WEIGHT, Candidate, QueryTerm
from .replies import (_ANAPHOR_RE, _FOLLOW_UP_RE, _PUNCT_RE, _SUM_RE, _YEAR_RE, Analysis, Context, FactContext,
                      ReportRef, Reply, Scope)
from .text import clean, is_number


# After a figure, a short question whose best FAQ candidate is at least this likely is a
# question of its own, not a follow-up (a candidate's probability, not the answer threshold,
# which the fit moves).
OWN_QUESTION = 0.95
# A word of a follow-up's own weighs at least this share of a word the knowledge never uses
# (需要 and 期限, which many entries share, weigh about a third; 收费 and 标准 half).
OWN_WORD_WEIGHT = 0.4
# A report row a question names covers at least this share of its words.
ROW_COVERAGE = 0.5


def covering_rows(candidates: list[Candidate]) -> list[Candidate]:
    """The report rows among the candidates that cover most of a question's words."""
    return [c for c in candidates if c.doc.kind == "fact" and c.coverage >= ROW_COVERAGE]


class Conversation:
    """Follow-ups (mixed into the desk)."""

    entries: dict[int, dict[str, Any]]
    reports: list[ReportRef]
    reports_by_id: dict[int, ReportRef]
    agencies: dict[str, str]
    settings: Any
    model: Any
    _col_aliases: list[tuple[str, str]]

    def context_from_ref(self, ref: str | None) -> Context | None:
        """The conversation context a session's last replies left (their refs, newest first,
        joined by |): the figure asked last and the one before it, or the FAQ entry answered last."""
        if not ref:
            return None
        parts = ref.split("|")
        entry_id = None
        if parts[0].startswith("faq:"):
            ident = parts[0].split(":", 1)[1]
            entry_id = int(ident) if is_number(ident) and int(ident) in self.entries else None
        facts = [f for f in (self._fact_context(p) for p in parts) if f is not None]
        if entry_id is None and not facts:
            return None
        return Context(facts[0] if facts else None, facts[1] if len(facts) > 1 else None, entry_id)

    def _fact_context(self, ref: str) -> FactContext | None:
        if ref.startswith("fact:"):
            parts = ref.split(":")
            report = self.reports_by_id.get(int(parts[1])) if is_number(parts[1]) else None
            if report and len(parts) >= 3:
                return FactContext(parts[2], parts[3] if len(parts) > 3 else None, report.agency, report.year)
            return None
        return FactContext.from_ref(ref)

    def _about_previous(self, question: str, whole: Analysis, entry_id: int) -> Analysis:
        """A short question that refers back (这个怎么收费, 那最多延多久) is read together with
        the topic answered last: every candidate is scored by its mean log-odds over the
        question alone and the question after the last entry's question. One that another
        entry answers with near certainty on its own words, or as the desk would answer it
        with no conversation before when it names more than one thing of its own, is a new
        question: 那这个收费的标准是多少, but not 那这个需要多长时间 (only 期限 is its own)."""
        if not self.may_refer_back(question) or whole.scope.years:
            return whole
        top = whole.candidates[0] if whole.candidates else None
        if (top is not None and top.doc.kind == "faq" and top.doc.ref != entry_id and len(whole.terms) > 1
                and (top.score >= OWN_QUESTION
                     or (self._own_words(whole.terms) > 1 and self.model.answers(whole.features, whole.confidence)))):
            return whole  # 那寄信可以吗 after 网上申请: a question of its own, about another entry
        joined = self._analyse(self.entries[entry_id]["question"] + "，" + question)
        return self._merge([whole, joined], whole)

    @staticmethod
    def may_refer_back(question: str) -> bool:
        """Whether a question might refer back to the FAQ entry answered last (这个怎么收费):
        a short one with a word that points back. Any other is answered as if asked first,
        whatever came before (see :meth:`_about_previous`)."""
        compact = _PUNCT_RE.sub("", clean(question))
        return len(compact) <= 20 and bool(_ANAPHOR_RE.search(compact))

    def _own_words(self, terms: list[QueryTerm]) -> int:
        """How many words of a question name something: not question words (什么), and not
        words as common in the knowledge as 需要 or 期限 (by their weight, against the weight of
        a word the knowledge never uses)."""
        floor = OWN_WORD_WEIGHT * self.index.unknown_weight
        return sum(t.text not in self.language.question_words and t.weight >= floor for t in terms)

    def _names_row(self, compact: str, candidates: list[Candidate]) -> bool:
        """Does a sum question name a row of its own (那行政诉讼一共多少)?"""
        rest = _SUM_RE.sub("", compact)
        col = self._named_column(rest, None)
        if col is not None:
            for alias, key in self._col_aliases:
                if key == col:
                    rest = rest.replace(alias, "")
        rest = re.sub(r"\d+年度?|[那么的呢是有多少几件个吗啊呀了]", "", rest)
        for name in self.agencies:
            if len(name) >= 2:
                rest = rest.replace(name, "")
        return len(rest) >= 2 and bool(covering_rows(candidates))

    def _sum_follow_up(self, context: Context, base: dict[str, Any]) -> Reply | None:
        """合起来多少: the sum of the last two figures of one report (two rows of one column,
        or two columns of one row); after a single column, the row's total."""
        last, before = context.fact, context.previous
        assert last is not None
        held = [r for r in self.reports if r.agency == last.agency and r.year == last.year]
        if not held:
            return None
        target = held[0]
        if before is not None and (before.agency, before.year) == (last.agency, last.year):
            pair = None
            if before.col == last.col and before.row_key != last.row_key:
                pair = [(before.row_key, last.col), (last.row_key, last.col)]
            elif before.row_key == last.row_key and before.col != last.col:
                pair = [(last.row_key, before.col), (last.row_key, last.col)]
            if pair:
                return self._sum_reply(target, pair, base)
        if last.col not in (None, "total"):
            reply = self._fact_reply(last.row_key, target, "total", 0.9, base)
            reply.reason = "追问合计：该项的总计；" + reply.reason
            return reply
        return None

    def _is_follow_up(self, compact: str, scope: Scope, candidates: list[Candidate],
                      terms: list[QueryTerm]) -> bool:
        """A short question that only changes the year, the agency, a row or a column."""
        if (candidates and candidates[0].doc.kind == "faq" and candidates[0].score >= OWN_QUESTION
                and not any(c.doc.kind == "fact" and c.coverage >= 0.999 for c in candidates)):
            return False  # a question of its own (but 部分公开的呢 names a row of the figure's table)
        if any(not t.known and t.weight > STRAY_CHAR_WEIGHT for t in terms):
            return False  # it names something the knowledge does not hold (那公租房呢)
        changes = (bool(scope.years or scope.agencies) or self._named_column(compact, None) is not None
                   or bool(covering_rows(candidates)))
        if not changes:
            return False  # 那你们的电话呢: nothing of a figure to change
        if len(compact) <= 24 and _FOLLOW_UP_RE.search(compact):
            return True
        rest = _YEAR_RE.sub("", compact)
        for name in self.agencies:
            rest = rest.replace(name, "")
        return bool(scope.years or scope.agencies) and len(rest.strip("的年度呢吗那么")) <= 1

    def _follow_up(self, context: FactContext, scope: Scope, candidates: list[Candidate],
                   compact: str, base: dict[str, Any]) -> Reply:
        agency = scope.agencies[0] if scope.agencies else (context.agency or self.settings.home_agency)
        year = scope.years[-1] if scope.years else context.year
        # The row a follow-up names: one that covers most of its words (a follow-up is too
        # short for the candidate model's score to mean much on its own).
        rows = covering_rows(candidates)
        if not self._names_row(compact, candidates):
            rows = []  # only a column, a year or an agency changes (那法人或其他组织呢)
        row_doc = rows[0].doc if rows else None
        row = row_doc.ref if row_doc else context.row_key
        col = self._named_column(compact, row_doc) or (context.col if row == context.row_key or not rows else None)
        held = [r for r in self.reports if r.agency == agency and (year is None or r.year == year)]
        if not held:
            missing = f"{year}年{agency}" if year else agency
            scope = Scope([year] if year else [], [agency], scope.tokens)
            reply = self._decline(missing, scope, row, col, base)
        else:
            target = max(held, key=lambda r: r.year)
            reply = self._fact_reply(row, target, col, rows[0].score if rows else 0.9, base)
        reply.reason = "追问：沿用上一问的报告、项目或列；" + reply.reason
        return reply
