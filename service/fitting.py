"""Fitting the decision model on the tune split of the labelled questions.

Pure Python (no Flask): given a built :class:`~service.desk.Desk` and labelled cases, fit
the candidate model, then the decision model on the candidates it ranks first, then the
thresholds that keep wrong answers within a budget. Holdout cases are never read here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .decision import (CANDIDATE_FEATURES, DECISION_FEATURES, DecisionModel, choose_clarify,
                       choose_joint_thresholds, choose_semantic_route, fit_logistic, now)
from .desk import Analysis, Desk
from .evaluation import hit, split_of

FITTED_EXPECTATIONS = ("answer", "escalate")
SYNTHETIC_WEIGHT = 0.3


@dataclass
class FitReport:
    """What a fit saw and chose, printed by the command."""

    model: DecisionModel
    cases: int
    candidates: int
    answered: int
    right: int
    wrong: int
    calibration: int = 0
    calibration_answered: int = 0
    calibration_wrong: int = 0


def candidate_is_right(desk: Desk, case: dict[str, Any], doc_kind: str, ref: Any, text: str) -> bool:
    """Would answering with this candidate satisfy the case's label?"""
    if case["expect"] != "answer":
        return False
    wanted = [k for k in [case.get("key"), *(case.get("ok_keys") or [])] if k]
    if doc_kind == "faq":
        return f"faq:{desk.entries[ref]['key']}" in wanted
    if doc_kind == "fact":
        rows = {k.split(":", 1)[1].split("/", 1)[0] for k in wanted if k.startswith("fact:")}
        return ref in rows
    if doc_kind == "passage":
        return "passage" in wanted and any(hit(c, text) for c in case.get("any") or [])
    return False


def usable(case: dict[str, Any], split: str = "tune") -> bool:  # noqa: D401
    """Cases the fit learns from: single questions of the tune split (or of the calibration
    split, for the thresholds) that expect an answer with a stable key, or an escalation."""
    if split_of(case) != split or case["expect"] not in FITTED_EXPECTATIONS:
        return False
    if case.get("conv") and int(case.get("turn", 1)) > 1:
        return False  # a follow-up depends on the turn before
    return case["expect"] == "escalate" or bool(case.get("key"))


def _readings(desk: Desk, question: str) -> list[Analysis]:
    """Every reading of a question the desk may choose between (whole and focused parts)."""
    from .clauses import focus_texts, separate_questions
    from .text import clean

    rewritten = desk.pipeline.rewrite(clean(question))
    first = separate_questions(rewritten)[:1]  # the question a two-question message is labelled by
    return [desk._analyse(question), *[desk._analyse(t) for t in first + focus_texts(rewritten)]]


def _skipped(desk: Desk, case: dict[str, Any], a: Analysis) -> bool:
    """Questions decided before the model: small talk, and reports not held."""
    top = a.candidates[0] if a.candidates else None
    return bool(a.missing and top is not None and top.doc.kind != "faq")


def _decision(desk: Desk, case: dict[str, Any]) -> tuple[Analysis, bool] | None:
    """The reading the desk decides a question on, and whether its best candidate is right;
    None for a question decided before the model or with no candidate."""
    whole = desk._analyse(case["q"])
    if _skipped(desk, case, whole):
        return None
    a, _ = desk._focus(case["q"], whole)
    if not a.candidates:
        return None
    top = a.candidates[0]
    text = desk.passages[top.doc.ref]["text"] if top.doc.kind == "passage" else ""
    return a, candidate_is_right(desk, case, top.doc.kind, top.doc.ref, text)


_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?(?:万|亿)?")


def passage_cases(desk: Desk) -> list[dict[str, Any]]:
    """Questions made from the knowledge itself: each figure sentence of a held report asked
    back with its numbers blanked (全年主动公开政府信息多少条), labelled by its first figure."""
    out = []
    for pid, p in desk.passages.items():
        report = desk.reports_by_id.get(p["report_id"])
        if report is None:
            continue
        numbers = [n for n in _NUMBER.findall(p["text"]) if n != str(report.year)]
        if not numbers:
            continue
        question = f"{report.agency}{report.year}年" + (p["context"] or "") + _NUMBER.sub("多少", p["text"])[:40]
        out.append({"id": f"passage-{pid}", "q": question, "expect": "answer", "key": "passage",
                    "any": [numbers[0]], "style": "knowledge"})
    return out


def cell_cases(desk: Desk) -> list[dict[str, Any]]:
    """Questions made from the knowledge itself: each table cell of a held report asked by
    its row and column labels, and by the names citizens use for them (report_terms.toml)."""
    out = []
    rows_alias = desk.terms.get("rows", {})
    cols_alias = desk.terms.get("cols", {})
    for (report_id, row_key), cells in desk.facts.items():
        report = desk.reports_by_id.get(report_id)
        if report is None:
            continue
        for col, cell in cells.items():
            if cell.get("blank"):
                continue
            value = f"{cell['value']:g}"
            col_label = "" if col == "total" else cell["col_label"]
            labels = [(cell["row_label"].replace("·", ""), col_label)]
            if rows_alias.get(row_key):
                labels.append((rows_alias[row_key][0], (cols_alias.get(col) or [col_label])[0] if col != "total" else ""))
            for row_text, col_text in labels:
                out.append({"id": f"cell-{report_id}-{row_key}-{col}-{len(out)}", "style": "knowledge",
                            "q": f"{report.year}年{report.agency}{row_text}{col_text}是多少",
                            "expect": "answer", "key": f"fact:{row_key}/{col}", "any": [value]})
    return out


def fit(desk: Desk, cases: list[dict[str, Any]], max_wrong: float = 0.01, l2: float = 1.0) -> FitReport:
    """Fit both models on the usable tune cases (and on the figure sentences of the held
    reports, asked back), and the thresholds on the tune and calibration cases."""
    chosen = [c for c in cases if usable(c) and desk._chitchat(c["q"]) is None]
    calibration = [c for c in cases if usable(c, "calibration") and desk._chitchat(c["q"]) is None]
    rows, labels, weights = [], [], []
    # The knowledge's own figure sentences teach the candidate model what a passage match
    # looks like; they weigh less than citizens' questions and stay out of the thresholds.
    synthetic = passage_cases(desk) + cell_cases(desk)
    for case in chosen + synthetic:
        readings = _readings(desk, case["q"])
        if _skipped(desk, case, readings[0]):
            continue
        share = (SYNTHETIC_WEIGHT if case.get("style") == "knowledge" else 1.0) / len(readings)
        for a in readings:
            for cand in a.candidates[:8]:
                text = desk.passages[cand.doc.ref]["text"] if cand.doc.kind == "passage" else ""
                rows.append(cand.features)
                labels.append(int(candidate_is_right(desk, case, cand.doc.kind, cand.doc.ref, text)))
                weights.append(share)
    candidate = fit_logistic(rows, labels, CANDIDATE_FEATURES, l2=l2, weights=weights)
    model = DecisionModel(candidate=candidate, decision={"bias": 0.0, "top": 1.0})
    desk.model = model
    desk.clear_cache()
    drows, dlabels, picks = [], [], []
    dcases: list[dict[str, Any]] = []
    dtop3: list[list[tuple[str, Any, str]]] = []
    dweights: list[float] = []
    for case in chosen + synthetic:
        decided = _decision(desk, case)
        if decided is None:
            continue
        a, right = decided
        drows.append(a.features)
        dlabels.append(int(right))
        picks.append(right)
        dweights.append(SYNTHETIC_WEIGHT if case.get("style") == "knowledge" else 1.0)
        dcases.append(case)
        dtop3.append([(c.doc.kind, c.doc.ref, desk.passages[c.doc.ref]["text"] if c.doc.kind == "passage" else "")
                      for c in a.candidates[:3]])
    # The calibration questions are read under the same model as tune's (the reading a long
    # message is decided on depends on it); they only join the thresholds, below.
    calibration_read = [d for d in (_decision(desk, case) for case in calibration) if d is not None]
    # FAQ answers and figures get decision weights of their own (a figure question that finds
    # its row is a different bet from a procedure question in a citizen's own words), and
    # thresholds that share one budget of wrong answers, spent where it buys most.
    for figure in (False, True):
        part = [i for i, f in enumerate(drows) if bool(f.get("top_is_figure")) == figure]
        weights = fit_logistic([drows[i] for i in part], [dlabels[i] for i in part], DECISION_FEATURES,
                               l2=l2, weights=[dweights[i] for i in part])
        if figure:
            model.figure_decision = weights
        else:
            model.decision = weights
    scored, by_kind = [], {"faq": [], "figure": []}
    for feats, right, weight in zip(drows, picks, dweights):
        if weight == 1.0:  # thresholds come from citizens' questions only
            item = (model.confidence(feats), "right" if right else "wrong")
            scored.append(item)
            if DecisionModel.answerable(feats):  # the others are never answered
                by_kind["figure" if feats.get("top_is_figure") else "faq"].append(item)
    # The calibration questions were written after the knowledge and the code had been tuned
    # on the tune split: tune's questions look easier than new ones (their words were added
    # to the knowledge, their failures mended), so the thresholds also answer to questions
    # nobody has tuned against. They teach the weights nothing.
    calibrated = []
    for a, right in calibration_read:
        item = (model.confidence(a.features), "right" if right else "wrong")
        calibrated.append((a.features, item))
        if DecisionModel.answerable(a.features):
            by_kind["figure" if a.features.get("top_is_figure") else "faq"].append(item)
    answer_t, figure_t = choose_joint_thresholds(by_kind["faq"], by_kind["figure"], max_wrong)
    model.answer_threshold, model.figure_threshold = answer_t, figure_t
    model.semantic_route = choose_semantic_route(
        [(f, model.confidence(f), right) for f, right, w in zip(drows, picks, dweights) if w == 1.0]
        + [(f, p, outcome == "right") for f, (p, outcome) in calibrated],
        answer_t, max_wrong)
    # The choice model, on the questions not answered: does a choice of three hold the answer?
    crows, clabels, cweights = [], [], []
    for feats, case, top3, weight in zip(drows, dcases, dtop3, dweights):
        if not model.answers(feats, model.confidence(feats)):
            crows.append(feats)
            clabels.append(int(any(candidate_is_right(desk, case, kind, ref, text) for kind, ref, text in top3)))
            cweights.append(weight)
    model.choice = fit_logistic(crows, clabels, DECISION_FEATURES, l2=l2, weights=cweights)
    clarify_t = choose_clarify([(model.choice_confidence(f), "right" if y else "wrong")
                                for f, y, w in zip(crows, clabels, cweights) if w == 1.0])
    model.clarify_threshold = clarify_t
    answered = [o for (p, o), feats in zip(scored, [f for f, w in zip(drows, dweights) if w == 1.0])
                if model.answers(feats, p)]
    model.meta = {"fitted": now(), "command": "flask --app service fit-decision",
                  "cases": len(chosen), "candidates": len(rows), "max_wrong": max_wrong,
                  "tune_answered": len(answered), "tune_wrong": sum(o == "wrong" for o in answered),
                  "calibration_cases": len(calibration)}
    desk.model = model
    desk.clear_cache()
    answered_calibration = [o for feats, (p, o) in calibrated if model.answers(feats, p)]
    return FitReport(model, len(chosen), len(rows), len(answered),
                     sum(o == "right" for o in answered), sum(o == "wrong" for o in answered),
                     len(calibration), len(answered_calibration),
                     sum(o == "wrong" for o in answered_calibration))
