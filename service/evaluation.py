"""Labelled question sets and how a reply is judged against a label.

Pure Python (no Flask). A case is one JSON line::

    {"id": "A001", "q": "...", "style": "story", "expect": "answer",
     "key": "faq:reply-deadline", "ok_keys": [], "any": [], "also": null}

``key`` names what should answer: an FAQ entry (``faq:<entry key>``), a report cell
(``fact:<row>/<col>``, with the figure as printed in ``any``) or a report passage
(``passage``, figure in ``any``). Other expectations: ``escalate`` (a ticket for staff),
``decline`` (a report not held), ``chat`` (small talk), ``human`` (asks for a person),
``clarify`` (too vague for one topic). Turns of one conversation share ``conv``.

Every case lands in exactly one split, fixed by a hash of its id (of its conversation for
a turn): ``holdout`` is never tuned against; ``tune`` is what weights are fitted on.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

HOLDOUT_SHARE = 30  # percent of cases, by hash
DECLINE_WORDS = ("暂无", "没有", "未收录", "无法", "不掌握", "尚未", "没找到", "未找到", "不包含", "不在")
SUBSTANTIVE = ("faq", "fact")


def split_of(case: dict[str, Any]) -> str:
    """``holdout`` or ``tune``: fixed once by a hash of the case's id (or conversation); or
    ``calibration`` for the questions that say so (written after the knowledge and the code
    had been tuned; the fit sets its answer thresholds on them; their failures are not read
    one by one)."""
    if case.get("split") == "calibration":
        return "calibration"
    ident = case.get("conv") or case["id"]
    digest = hashlib.sha256(str(ident).encode("utf-8")).digest()
    return "holdout" if int.from_bytes(digest[:4], "big") % 100 < HOLDOUT_SHARE else "tune"


def load_cases(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every case of the given JSON-lines files, in file order."""
    cases: list[dict[str, Any]] = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                case = json.loads(line)
                case.setdefault("source", path.stem)
                cases.append(case)
    return cases


def hit(check: str, text: str) -> bool:
    """Whether a text says what a check asks: a bare figure standing alone, a ``re:``
    pattern, or else the words themselves (6.5亿, 87场)."""
    if check.startswith("re:"):
        return re.search(check[3:], text) is not None
    if re.fullmatch(r"[\d.,%]+", check):
        # A figure must stand alone: 15 is not found in 152 or 1.5.
        digits = check.replace(",", "")
        return re.search(rf"(?<![\d.]){re.escape(digits)}(?![\d]|\.\d)", text.replace(",", "")) is not None
    return check in text


@dataclass
class Verdict:
    """How one reply fared: ``correct``, ``wrong`` (an answer that misleads) or ``miss``
    (no answer, a choice, or a ticket where an answer was due: honest, not wrong)."""

    outcome: str
    answered: bool  # a substantive answer (an FAQ entry or a figure) was given
    offered_also: bool = False  # for two questions in one message: the other was offered


def judge(case: dict[str, Any], reply: dict[str, Any]) -> Verdict:
    """Judge one reply (the JSON of ``POST /api/ask``) against one case."""
    status, kind = reply.get("status"), reply.get("kind")
    answer = reply.get("answer") or ""
    key = reply.get("key")
    answered = status == "answered" and kind in SUBSTANTIVE
    expect = case["expect"]
    wanted = [k for k in [case.get("key"), *(case.get("ok_keys") or [])] if k]
    offered = _offered(case.get("also"), reply)
    if expect == "answer":
        if not answered:
            return Verdict("miss", False, offered)
        target = case.get("key") or ""
        checks = case.get("any") or []
        if target.startswith("faq:"):
            ok = key in wanted
        elif target:  # a figure: the right number, from a report
            ok = kind == "fact" and (any(hit(c, answer) for c in checks) if checks else key in wanted)
        else:  # a set labelled by what the answer must say (the public set)
            ok = any(hit(c, answer) for c in checks)
        return Verdict("correct" if ok else "wrong", True, offered)
    if expect == "decline":
        if status != "answered":
            return Verdict("miss", False)
        names = case.get("any") or []  # the year or agency named, in any of the spellings listed
        ok = any(w in answer for w in DECLINE_WORDS) and (not names or any(hit(c, answer) for c in names))
        return Verdict("correct" if ok else "wrong", answered)
    if expect == "escalate":
        if status == "escalated":
            return Verdict("correct", False)
        return Verdict("wrong" if answered else "miss", answered)
    if expect == "chat":
        if kind in ("chitchat", "handoff") and status == "answered":
            return Verdict("correct", False)
        return Verdict("wrong" if answered else "miss", answered)
    if expect == "human":
        if kind == "handoff":
            return Verdict("correct", False)
        return Verdict("wrong" if answered else "miss", answered)
    if expect == "clarify":
        if status == "clarify":
            return Verdict("correct", False)
        if answered:
            return Verdict("correct" if key in wanted else "wrong", True)
        return Verdict("miss", False)
    raise ValueError(f"unknown expectation {expect!r}")


def _offered(also: str | None, reply: dict[str, Any]) -> bool:
    if not also:
        return False
    return any(s.get("key") == also for s in reply.get("suggestions") or [])


@dataclass
class Tally:
    """Counts over a set of verdicts."""

    total: int = 0
    correct: int = 0
    wrong: int = 0
    answered: int = 0
    also: int = 0
    also_offered: int = 0

    def add(self, case: dict[str, Any], verdict: Verdict) -> None:
        self.total += 1
        self.correct += verdict.outcome == "correct"
        self.wrong += verdict.outcome == "wrong"
        self.answered += verdict.answered
        if case.get("also"):
            self.also += 1
            self.also_offered += verdict.offered_also

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def wrong_share(self) -> float:
        """Wrong replies among substantive answers (and other non-misses)."""
        given = self.answered or 0
        return self.wrong / given if given else 0.0

    def line(self) -> str:
        return (f"{self.correct:4d}/{self.total:<4d} {100 * self.accuracy:5.1f}% correct · "
                f"answered {self.answered:4d} · wrong {self.wrong:3d} "
                f"({100 * self.wrong_share:4.1f}% of answers)")


@dataclass
class Report:
    """Verdicts grouped by split, style and expectation."""

    rows: list[tuple[dict[str, Any], dict[str, Any], Verdict]] = field(default_factory=list)

    def tally(self, pred: Any = None) -> Tally:
        t = Tally()
        for case, _, verdict in self.rows:
            if pred is None or pred(case):
                t.add(case, verdict)
        return t

    def by(self, field_name: str, pred: Any = None) -> dict[str, Tally]:
        out: dict[str, Tally] = {}
        for case, _, verdict in self.rows:
            if pred is None or pred(case):
                out.setdefault(str(case.get(field_name) or "-"), Tally()).add(case, verdict)
        return dict(sorted(out.items()))
