"""The fitted decision: the model's maths, its stored form, and the command that fits it."""
from __future__ import annotations

import random
from pathlib import Path

from service.decision import (CANDIDATE_FEATURES, DECISION_FEATURES, DecisionModel, choose_thresholds,
                              fit_logistic, sigmoid)

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"


def test_logistic_regression_recovers_a_rule() -> None:
    rng = random.Random(7)
    rows, labels = [], []
    for _ in range(600):
        x = rng.random()
        rows.append({"bias": 1.0, "x": x, "noise": rng.random()})
        labels.append(int(rng.random() < sigmoid(8 * x - 4)))
    w = fit_logistic(rows, labels, ["bias", "x", "noise"], l2=0.1)
    assert 5 < w["x"] < 11 and -6 < w["bias"] < -2 and abs(w["noise"]) < 1.5


def test_the_answer_threshold_keeps_wrong_answers_within_the_budget() -> None:
    scored = [(0.99, "right")] * 50 + [(0.97, "wrong")] + [(0.95, "right")] * 40 + [(0.9, "wrong")] * 5
    answer, clarify = choose_thresholds(scored, max_wrong=0.01)
    answered = [o for p, o in scored if p >= answer]
    assert sum(o == "wrong" for o in answered) <= 0.01 * len(answered)
    assert answer == 0.99 and clarify <= answer
    answer, _ = choose_thresholds(scored, max_wrong=0.02)
    assert answer == 0.95  # 1 wrong in 91 answers is within 2%


def test_the_shipped_model_names_every_feature_and_dumps_to_what_it_loads(tmp_path: Path) -> None:
    model = DecisionModel.load(KNOWLEDGE / "decision.toml")
    assert set(model.candidate) == set(CANDIDATE_FEATURES)
    assert set(model.decision) == set(DECISION_FEATURES)
    assert 0 < model.clarify_threshold <= model.answer_threshold < 1
    assert model.meta.get("command") == "flask --app service fit-decision"
    path = tmp_path / "decision.toml"
    path.write_text(model.dump(), encoding="utf-8")
    again = DecisionModel.load(path)
    assert again.candidate == {k: round(v, 4) for k, v in model.candidate.items()}
    assert again.answer_threshold == round(model.answer_threshold, 4)


def test_contributions_add_up_to_the_score() -> None:
    model = DecisionModel.load(KNOWLEDGE / "decision.toml")
    features = {name: 0.5 for name in CANDIDATE_FEATURES}
    parts = model.contributions(features)
    assert abs(sum(p["part"] for p in parts) - model.candidate_score(features)) < 0.01
    assert all(p["label"] for p in parts)


def test_the_fit_command_reads_only_the_tune_split_and_writes_a_model(runner, tmp_path: Path) -> None:
    out = tmp_path / "decision.toml"
    result = runner.invoke(args=["fit-decision", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "已拟合" in result.output and out.exists()
    model = DecisionModel.load(out)
    assert model.meta["cases"] > 400 and model.meta["tune_wrong"] <= 0.01 * model.meta["tune_answered"] + 1
