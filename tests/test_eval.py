"""The public question set and our own held-out set, run through the app as the scorer does."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SHARED, load_cases, load_scorer

HERE = Path(__file__).resolve().parent


def _run(ask, cases):  # type: ignore[no-untyped-def]
    judge = load_scorer().judge
    failures = []
    for i, case in enumerate(cases):
        reply = ask(case["q"], f"eval-{i}")
        if not judge(case, reply):
            failures.append((case["id"], case["expect"], case["q"], reply["status"], reply["answer"][:60]))
    return failures


@pytest.mark.skipif(not (SHARED / "eval" / "dev_questions.jsonl").exists(), reason="shared/ is not beside the repo")
def test_public_question_set(ask) -> None:
    cases = load_cases(SHARED / "eval" / "dev_questions.jsonl")
    failures = _run(ask, cases)
    assert len(failures) <= len(cases) * 0.05, failures
    # Every out-of-scope question escalates and every missing report is declined.
    assert not [f for f in failures if f[1] in ("escalate", "decline")], failures


def test_held_out_question_set(ask) -> None:
    """Phrasings written without seeing the FAQ: a guard against tuning to one question set."""
    cases = load_cases(HERE / "data" / "heldout_questions.jsonl")
    failures = _run(ask, cases)
    assert len(failures) <= len(cases) * 0.12, failures
    assert not [f for f in failures if f[1] == "decline"], failures
