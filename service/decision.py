"""The desk's decision as one small fitted model over named features.

Pure Python and numpy (no Flask). Two logistic models, both read from
``knowledge/decision.toml`` and fitted by ``flask --app service fit-decision`` on the tune
split of the project's labelled questions:

1. **Candidate model** — how likely one candidate (an FAQ entry, a report row, a report
   passage) is what the question asks, from features of that candidate and of the
   question (coverage, precision, fuzzy similarity, kind, asks for an amount, share of
   unknown words ...). Candidates are ranked by it.
2. **Decision model** — how likely the best candidate is right, from its candidate score
   and its lead over the runner-up. The desk answers above ``answer_threshold``.
3. **Choice model** — for a question not answered, how likely a "did you mean" list of
   the best three candidates holds what was asked (rather than the question being
   another body's business). The desk offers the choice above ``clarify_threshold`` and
   passes the question to staff below.

Every weight has a name, so the curators' test pane can show each feature's part in a
decision.
"""
from __future__ import annotations

import itertools
import math
import tomllib
from operator import mul
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

# Features of one candidate for one question. Descriptions are shown to curators.
CANDIDATE_FEATURES: dict[str, str] = {
    "bias": "常数项",
    "coverage": "问题的词被候选覆盖的比例（按词的信息量加权）",
    "precision": "候选最接近的问法被问题覆盖的比例",
    "agreement": "覆盖率与精确率的调和平均",
    "fuzzy": "与最接近问法的字面相似度",
    "exact": "与某个问法完全相同",
    "chars": "按字和相邻两字计算的与最接近问法的相似度",
    "chars_best": "在所有候选中字面相似度最高",
    "passage_chars": "报告正文句子包含问题中的字和相邻两字的比例",
    "is_fact": "候选是年度报告表格中的一行",
    "is_passage": "候选是年度报告正文中的一句",
    "figure_wanted": "问题在问数量、年份或报告，且候选是报告数据",
    "figure_unwanted": "问题不在问数量，但候选是报告数据",
    "faq_for_amount": "问题在问数量，候选却是常见问题",
    "passage_without_digit": "问题在问数量，候选正文句子里没有数字",
    "passage_coverage": "问题的词被报告正文句子覆盖的比例",
    "semantic": "按词义（词向量）计算的与最接近问法的相似度",
    "semantic_best": "在所有候选中词义相似度最高",
}
# Features of a decision: the best candidate's model score and its lead.
DECISION_FEATURES: dict[str, str] = {
    "bias": "常数项",
    "top": "最佳候选的得分（对数几率）",
    "lead": "最佳候选领先第二名的幅度",
    "few_words": "问题的有效词很少",
    "unknown_words": "问题中知识库从未用过的词所占比重",
    "domain_word": "问题含有本领域的常用词",
    "top_coverage": "最佳候选对问题的覆盖率",
    "top_precision": "最佳候选的问法被问题覆盖的比例",
    "top_is_figure": "最佳候选是报告数据",
    "top_is_passage": "最佳候选是报告正文中的一句",
    "long_message": "长消息，问题取自其中的问句",
    "agree": "最佳候选同时也是字面相似度最高的候选",
    "top_fuzzy": "最佳候选与最接近问法的字面相似度",
    "top_chars": "最佳候选按字和相邻两字计算的相似度",
    "top_both": "最佳候选的覆盖率与精确率之积",
    "top_prob_sq": "最佳候选得分的平方（得分越高越可信）",
    "unknown_max": "问题中最重的一个知识库未用词所占比重",
    "top_semantic": "最佳候选按词义计算的相似度",
    "semantic_agree": "最佳候选同时也是词义相似度最高的候选",
    "semantic_lead": "最佳候选的词义相似度领先其余候选的幅度",
    "semantic_confirms": "最佳候选词义相似度最高时的相似度（否则为0）",
    "asks_amount": "问题在问数量（多少、几件）",
    "report_intent": "问题在问数量、年份、其他机关或报告",
    "foreign_topic": "问题涉及其他部门职责的事项（知识库未涉及）",
    "readings_agree": "长消息的各种读法（整段、各问句）中最佳候选相同的比例",
    "best_reading": "最佳候选在对它最有利的一种读法中的得分（短问题即其得分）",
}


def sigmoid(z: float) -> float:
    """The logistic function, safe for large |z|."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass
class Question:
    """What the features need to know about the question itself."""

    quantity: bool  # asks for an amount (多少, 几件)
    report_intent: bool  # names a year, another agency, a report, or asks an amount
    unknown: float  # weighted share of words the knowledge never uses
    domain_word: bool  # has one of the domain's common words
    n_terms: int
    repaired: bool
    unknown_max: float = 0.0  # the heaviest such word's share (公租房 in 怎么申请公租房)
    foreign: str | None = None  # another body's business it names (低保: 民政部门), if any


def candidate_features(kind: str, coverage: float, precision: float, fuzzy: float, has_digit: bool,
                       q: Question, chars: float = 0.0, chars_best: bool = False,
                       semantic: float = 0.0, semantic_best: bool = False) -> dict[str, float]:
    """The named features of one candidate."""
    agreement = 2 * coverage * precision / (coverage + precision) if coverage + precision else 0.0
    figure = kind in ("fact", "passage")
    return {
        "bias": 1.0,
        "coverage": coverage,
        "precision": precision,
        "agreement": agreement,
        "fuzzy": fuzzy,
        "exact": 1.0 if fuzzy >= 0.999 else 0.0,
        "chars": chars if kind != "passage" else 0.0,
        "chars_best": 1.0 if chars_best and kind != "passage" else 0.0,
        "passage_chars": chars if kind == "passage" else 0.0,
        "is_fact": 1.0 if kind == "fact" else 0.0,
        "is_passage": 1.0 if kind == "passage" else 0.0,
        "figure_wanted": 1.0 if figure and q.report_intent else 0.0,
        "figure_unwanted": 1.0 if figure and not q.report_intent else 0.0,
        "faq_for_amount": 1.0 if kind == "faq" and q.quantity else 0.0,
        "passage_without_digit": 1.0 if kind == "passage" and q.quantity and not has_digit else 0.0,
        "passage_coverage": coverage if kind == "passage" else 0.0,
        "unknown_words": q.unknown,
        "domain_word": 1.0 if q.domain_word else 0.0,
        "few_words": 1.0 / (1 + q.n_terms),
        "repaired": 1.0 if q.repaired else 0.0,
        "semantic": semantic if kind != "passage" else 0.0,
        "semantic_best": 1.0 if semantic_best and kind != "passage" else 0.0,
    }


def decision_features(top: float, second: float | None, q: Question, top_features: dict[str, float],
                      long_message: bool = False, semantic_others: float = 0.0,
                      readings_agree: float = 0.0, best_reading: float | None = None) -> dict[str, float]:
    """The named features of the decision on the best candidate; ``semantic_others`` is the
    highest semantic similarity among the other candidates; ``readings_agree``, for a long
    message, the share of its readings (whole, each asking clause) whose best candidate is
    this one, and ``best_reading`` its log-odds in the reading that likes it best."""
    lead = top - second if second is not None else 6.0
    return {"bias": 1.0, "top": top, "lead": min(lead, 6.0), "few_words": 1.0 / (1 + q.n_terms),
            "unknown_words": q.unknown, "domain_word": 1.0 if q.domain_word else 0.0,
            "top_coverage": top_features.get("coverage", 0.0), "top_precision": top_features.get("precision", 0.0),
            "top_is_figure": top_features.get("is_fact", 0.0) + top_features.get("is_passage", 0.0),
            "top_is_passage": top_features.get("is_passage", 0.0),
            "long_message": 1.0 if long_message else 0.0, "agree": top_features.get("chars_best", 0.0),
            "top_fuzzy": top_features.get("fuzzy", 0.0),
            "top_chars": top_features.get("chars", 0.0) + top_features.get("passage_chars", 0.0),
            "top_both": top_features.get("coverage", 0.0) * top_features.get("precision", 0.0),
            "top_prob_sq": sigmoid(top) ** 2, "unknown_max": q.unknown_max,
            "top_semantic": top_features.get("semantic", 0.0), "semantic_agree": top_features.get("semantic_best", 0.0),
            # (a figure has no semantic similarity: no lead either)
            "semantic_lead": top_features.get("semantic", 0.0) - semantic_others if top_features.get("semantic") else 0.0,
            "semantic_confirms": top_features.get("semantic", 0.0) * top_features.get("semantic_best", 0.0),
            "asks_amount": 1.0 if q.quantity else 0.0, "report_intent": 1.0 if q.report_intent else 0.0,
            "foreign_topic": 1.0 if q.foreign else 0.0, "readings_agree": readings_agree,
            "best_reading": top if best_reading is None else best_reading}


def _weighted_sum(weights: dict[str, float], features: dict[str, float]) -> float:
    """Each feature times its weight (0 when it has none), summed in the features' order:
    the products and the order of a generator's sum, without its frames (this runs for
    every candidate of every question)."""
    return sum(map(mul, map(weights.get, features, itertools.repeat(0.0)), features.values()))


@dataclass
class DecisionModel:
    """Weights and thresholds, as stored in ``knowledge/decision.toml``."""

    candidate: dict[str, float]
    decision: dict[str, float]
    choice: dict[str, float] = field(default_factory=dict)
    answer_threshold: float = 0.8
    clarify_threshold: float = 0.3
    # Answers whose best candidate is a report figure have a threshold of their own, and
    # decision weights of their own when fitted (a figure question that finds its row is a
    # different bet from a procedure question in a citizen's own words).
    figure_threshold: float | None = None
    figure_decision: dict[str, float] = field(default_factory=dict)
    # A suggestion in a "did you mean" list needs at least this candidate probability.
    suggestion_floor: float = 0.15
    # A second way to answer an FAQ question: the best candidate is also the closest in
    # meaning, by at least ``semantic`` similarity and ``lead`` over the others, and the
    # decision probability is at least ``confidence`` (fitted like the thresholds).
    semantic_route: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def candidate_score(self, features: dict[str, float]) -> float:
        """Log-odds that the candidate is what the question asks."""
        return _weighted_sum(self.candidate, features)

    def confidence(self, features: dict[str, float]) -> float:
        """Probability that answering with the best candidate is right."""
        weights = self.decision_weights(features)
        return sigmoid(_weighted_sum(weights, features))

    def decision_weights(self, features: dict[str, float]) -> dict[str, float]:
        """The decision weights for a decision: the figures' own when the best is a figure."""
        if features.get("top_is_figure") and self.figure_decision:
            return self.figure_decision
        return self.decision

    def threshold_for(self, features: dict[str, float]) -> float:
        """The answer threshold for a decision: the figures' own when the best is a figure."""
        if features.get("top_is_figure") and self.figure_threshold is not None:
            return self.figure_threshold
        return self.answer_threshold

    @staticmethod
    def answerable(features: dict[str, float]) -> bool:
        """Whether any confidence could make the best candidate an answer: never a candidate
        that the candidate model itself finds more likely wrong than right (医保报销比例 is not
        公开比例, however far ahead of the others it is), and never a figure for a question
        that asks for none (起诉 alone is no question about the number of lawsuits), nor for a
        question about another body's business that the knowledge does not cover (低保)."""
        if features.get("top", 0.0) < 0.0 or features.get("foreign_topic"):
            return False
        return not (features.get("top_is_figure") and not features.get("report_intent"))

    def answers(self, features: dict[str, float], confidence: float) -> bool:
        """Whether the desk answers with the best candidate (see :meth:`answerable`)."""
        if not self.answerable(features):
            return False
        if confidence >= self.threshold_for(features):
            return True
        return route_admits(self.semantic_route, features, confidence)

    def choice_confidence(self, features: dict[str, float]) -> float:
        """Probability that a choice of the best candidates holds what was asked."""
        weights = self.choice or self.decision
        return sigmoid(_weighted_sum(weights, features))

    def contributions(self, features: dict[str, float], weights: str = "candidate") -> list[dict[str, Any]]:
        """Each feature's part in a score, for the test pane (largest first)."""
        table = {"candidate": self.candidate, "decision": self.decision_weights(features),
                 "choice": self.choice}[weights]
        names = CANDIDATE_FEATURES if weights == "candidate" else DECISION_FEATURES
        rows = [{"name": n, "label": names.get(n, n), "value": round(v, 4), "weight": round(table.get(n, 0.0), 4),
                 "part": round(table.get(n, 0.0) * v, 4)} for n, v in features.items()]
        return sorted(rows, key=lambda r: abs(r["part"]), reverse=True)

    # -- storage ------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> "DecisionModel":
        """Read the model; a missing file gives the untrained defaults (documented below)."""
        if not path.exists():
            return cls.default()
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        th = data.get("thresholds", {})
        return cls(candidate={k: float(v) for k, v in data.get("candidate", {}).items()},
                   decision={k: float(v) for k, v in data.get("decision", {}).items()},
                   figure_decision={k: float(v) for k, v in data.get("figure_decision", {}).items()},
                   choice={k: float(v) for k, v in data.get("choice", {}).items()},
                   answer_threshold=float(th.get("answer", 0.8)), clarify_threshold=float(th.get("clarify", 0.3)),
                   figure_threshold=float(th["figure"]) if "figure" in th else None,
                   suggestion_floor=float(th.get("suggestion", 0.15)),
                   semantic_route={k: float(v) for k, v in data.get("semantic_route", {}).items()},
                   meta=dict(data.get("meta", {})))

    @classmethod
    def default(cls) -> "DecisionModel":
        """Before any fitting: candidates scored by agreement and fuzzy similarity alone."""
        return cls(candidate={"bias": -6.0, "agreement": 8.0, "fuzzy": 2.0, "figure_unwanted": -2.0,
                              "unknown_words": -3.0},
                   decision={"bias": 0.0, "top": 1.0, "lead": 1.0})

    def dump(self) -> str:
        """The model as TOML text, with comments naming each feature."""
        lines = ["# The desk's decision model, fitted by `flask --app service fit-decision` on the tune",
                 "# split of tests/data/eval (never the holdout); the answer thresholds also answer to",
                 "# its calibration split. Edit by refitting, not by hand.", ""]
        lines.append("[meta]")
        for k, v in self.meta.items():
            lines.append(f"{k} = {_toml_value(v)}")
        lines += ["", "[thresholds]",
                  "# answer when the decision probability is at least this; offer a choice above clarify",
                  f"answer = {self.answer_threshold:.4f}",
                  *([f"figure = {self.figure_threshold:.4f}"] if self.figure_threshold is not None else []),
                  f"clarify = {self.clarify_threshold:.4f}",
                  f"suggestion = {self.suggestion_floor:.4f}", ""]
        if self.semantic_route:
            lines += ["# also answer an FAQ question whose best candidate is the closest in meaning:",
                      "# similarity, lead over the other candidates and decision probability at least", "[semantic_route]",
                      *[f"{k} = {v:.4f}" for k, v in self.semantic_route.items()], ""]
        lines += ["[candidate]"]
        for name, label in CANDIDATE_FEATURES.items():
            lines.append(f"{name} = {self.candidate.get(name, 0.0):.4f}  # {label}")
        lines += ["", "[decision]"]
        for name, label in DECISION_FEATURES.items():
            lines.append(f"{name} = {self.decision.get(name, 0.0):.4f}  # {label}")
        if self.figure_decision:
            lines += ["", "# The decision when the best candidate is a report figure", "[figure_decision]"]
            for name, label in DECISION_FEATURES.items():
                lines.append(f"{name} = {self.figure_decision.get(name, 0.0):.4f}  # {label}")
        lines += ["", "# For questions not answered: does a choice of the best three hold the answer?", "[choice]"]
        for name, label in DECISION_FEATURES.items():
            lines.append(f"{name} = {self.choice.get(name, 0.0):.4f}  # {label}")
        return "\n".join(lines) + "\n"


def route_admits(route: dict[str, float], features: dict[str, float], confidence: float) -> bool:
    """Whether the semantic route answers a decision: never a report figure, and never a
    one-word question (a single word's vector is no reading of a sentence)."""
    if not route or features.get("top_is_figure") or features.get("few_words", 1.0) >= 0.5:
        return False
    return (features.get("semantic_agree", 0.0) > 0 and features.get("top_semantic", 0.0) >= route["semantic"]
            and features.get("semantic_lead", 0.0) >= route["lead"] and confidence >= route["confidence"])


def choose_semantic_route(items: Sequence[tuple[dict[str, float], float, bool]], threshold: float,
                          max_wrong: float) -> dict[str, float]:
    """The semantic route (see :class:`DecisionModel`) with the most right answers while the
    wrong ones, with those answered above ``threshold``, stay within ``max_wrong`` of all
    answers; ``items`` are (features, decision probability, right). Empty if none helps."""
    base = [(f, p, ok) for f, p, ok in items if not f.get("top_is_figure")]
    above = [ok for f, p, ok in base if p >= threshold]
    best: dict[str, float] = {}
    best_right = sum(above)
    for semantic in (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9):
        for lead in (0.0, 0.02, 0.05, 0.1):
            for confidence in (0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9):
                if confidence >= threshold:
                    continue
                route = {"semantic": semantic, "lead": lead, "confidence": confidence}
                answered = above + [ok for f, p, ok in base if p < threshold and route_admits(route, f, p)]
                right = sum(answered)
                if right > best_right and len(answered) - right <= max_wrong * len(answered):
                    best, best_right = route, right
    return best


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- fitting ----------------------------------------------------------------------


def fit_logistic(rows: Sequence[dict[str, float]], labels: Sequence[int], names: Iterable[str],
                 l2: float = 1.0, iterations: int = 50,
                 weights: Sequence[float] | None = None) -> dict[str, float]:
    """L2-regularised logistic regression on named features, by Newton's method (numpy).

    ``l2`` is the penalty on the sum of squared weights (not on the bias), in units of
    one case; ``weights`` weigh the rows (default 1 each)."""
    names = list(names)
    x = np.array([[r.get(n, 0.0) for n in names] for r in rows], dtype=np.float64)
    y = np.array(labels, dtype=np.float64)
    sw = np.ones(len(y)) if weights is None else np.array(weights, dtype=np.float64)
    penalty = np.diag([0.0 if n == "bias" else l2 for n in names]) + 1e-9 * np.eye(len(names))
    w = np.zeros(len(names))
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ ((p - y) * sw) + penalty @ w
        hess = (x * (sw * p * (1 - p))[:, None]).T @ x + penalty
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-7:
            break
    return {n: float(v) for n, v in zip(names, w)}


CLARIFY_COST = 3.0


def choose_joint_thresholds(faq: Sequence[tuple[float, str]], figure: Sequence[tuple[float, str]],
                            max_wrong: float) -> tuple[float, float]:
    """The FAQ and figure answer thresholds (see :func:`choose_group_thresholds`)."""
    chosen = choose_group_thresholds({"faq": faq, "figure": figure}, max_wrong)
    return chosen["faq"], chosen["figure"]


def choose_group_thresholds(groups: dict[str, Sequence[tuple[float, str]]], max_wrong: float,
                            most_wrong: int = 15) -> dict[str, float]:
    """An answer threshold per group of decisions (FAQ, figure, story) with the most right
    answers in all while the wrong ones stay within ``max_wrong`` of all answers: one budget
    for the desk's answers, spent where it buys most (each kind alone is too few for a budget
    of a fraction of one answer).

    Each group's best thresholds are found per number of wrong answers it may give (the
    highest threshold with the most right answers for that many wrong ones); the groups'
    counts are then combined, so the search grows with the number of wrong answers, not
    with the product of the groups' sizes."""
    names = list(groups)
    frontiers: list[list[tuple[float, int, int]]] = []
    for name in names:
        right = wrong = 0
        best_for: dict[int, tuple[float, int, int]] = {0: (0.99, 0, 0)}
        for p, outcome in sorted(groups[name], reverse=True):
            right, wrong = right + (outcome == "right"), wrong + (outcome != "right")
            if wrong > most_wrong:
                break
            if wrong not in best_for or right > best_for[wrong][1]:
                best_for[wrong] = (min(p, 0.99), right, wrong)
        # allowing k wrong answers is worth at least what fewer wrong answers are worth
        frontier, best = [], (0.99, 0, 0)
        for k in range(max(best_for) + 1):
            if k in best_for and best_for[k][1] > best[1]:
                best = best_for[k]
            frontier.append(best)
        frontiers.append(frontier)
    chosen, best_right, best_wrong = [f[0] for f in frontiers], -1, 0
    for combo in itertools.product(*frontiers):
        right = sum(c[1] for c in combo)
        wrong = sum(c[2] for c in combo)
        if right + wrong and wrong <= max_wrong * (right + wrong) and (
                right > best_right or (right == best_right and wrong < best_wrong)):
            chosen, best_right, best_wrong = list(combo), right, wrong
    return {name: c[0] for name, c in zip(names, chosen)}


def choose_clarify(scored: Sequence[tuple[float, str]]) -> float:
    """Offer a choice where it helps more than it misleads: the threshold that maximises
    right choices minus CLARIFY_COST times wrong ones (a wrong choice delays the ticket of
    a question nobody here can answer)."""
    ordered = sorted(((p, o == "right") for p, o in scored), reverse=True)
    clarify, gain, best_gain = 1.0, 0.0, 0.0
    for p, ok in ordered:
        gain += 1.0 if ok else -CLARIFY_COST
        if gain > best_gain:
            clarify, best_gain = p, gain
    return clarify


def now() -> str:
    """UTC time stamp for the model's metadata."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
