"""The semantic view: word vectors read from the ``synonyms`` distribution, sentences as
weighted means, and the route that answers when meaning and the model agree."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.decision import DecisionModel, choose_semantic_route, route_admits
from service.semantic import SentenceEncoder, WordVectors, best_similarity, shared_vectors, vectors_file


def _write_word2vec(path: Path, rows: dict[str, list[float]]) -> None:
    dim = len(next(iter(rows.values())))
    with path.open("wb") as fh:
        fh.write(f"{len(rows)} {dim}\n".encode())
        for word, vec in rows.items():
            fh.write(word.encode() + b" " + np.asarray(vec, dtype=np.float32).tobytes())


def test_a_word2vec_file_is_read_into_unit_vectors(tmp_path: Path) -> None:
    path = tmp_path / "v.bin"
    _write_word2vec(path, {"收费": [3.0, 4.0, 0.0], "费用": [6.0, 8.0, 0.1], "期限": [0.0, 0.0, 2.0]})
    vectors = WordVectors.read(path)
    assert set(vectors.row) == {"收费", "费用", "期限"}
    assert np.allclose(np.linalg.norm(vectors.get("收费")), 1.0, atol=1e-3)
    assert vectors.get("没有") is None


def test_sentences_close_in_meaning_are_closer_than_unrelated_ones(tmp_path: Path) -> None:
    path = tmp_path / "v.bin"
    _write_word2vec(path, {"收费": [1.0, 0.0, 0.0], "掏钱": [0.9, 0.1, 0.0], "期限": [0.0, 0.0, 1.0],
                           "申请": [0.0, 1.0, 0.0], "的": [0.3, 0.3, 0.3], "要": [0.1, 0.1, 0.1]})
    freq = {"的": 1_000_000, "收费": 100, "掏钱": 10, "期限": 100, "申请": 1000, "要": 500_000}
    enc = SentenceEncoder(WordVectors.read(path), lambda w: freq[w] / 2_000_000 if w in freq else None)
    asked = enc.encode(["申请", "要", "掏钱"])
    fee = enc.encode_many([["申请", "收费"]])
    deadline = enc.encode_many([["申请", "期限"]])
    assert best_similarity(asked, fee) > best_similarity(asked, deadline)
    # Unknown words are read through their characters; nothing known gives no vector.
    assert enc.encode(["乙丙"]) is None
    assert best_similarity(None, fee) == 0.0


def test_the_installed_vectors_place_everyday_words_near_the_knowledge_words() -> None:
    assert vectors_file() is not None, "the synonyms distribution (a dependency) ships data/words.vector"
    vectors = shared_vectors()
    assert vectors is not None and vectors.matrix.shape[1] == 100
    near = float(vectors.get("打官司") @ vectors.get("诉讼"))
    far = float(vectors.get("打官司") @ vectors.get("年鉴"))
    assert near > far + 0.2


def _features(semantic: float, agree: bool, lead: float = 0.1, figure: bool = False, words: int = 4) -> dict:
    return {"top_semantic": semantic, "semantic_agree": 1.0 if agree else 0.0, "semantic_lead": lead,
            "top_is_figure": 1.0 if figure else 0.0, "few_words": 1 / (1 + words)}


def test_the_semantic_route_needs_agreement_a_sentence_and_an_faq_answer() -> None:
    route = {"semantic": 0.8, "lead": 0.0, "confidence": 0.7}
    assert route_admits(route, _features(0.9, True), 0.75)
    assert not route_admits(route, _features(0.9, False), 0.75)  # meaning points elsewhere
    assert not route_admits(route, _features(0.7, True), 0.75)  # not close enough
    assert not route_admits(route, _features(0.9, True), 0.6)  # the model too unsure
    assert not route_admits(route, _features(0.9, True, figure=True), 0.75)
    assert not route_admits(route, _features(0.9, True, words=1), 0.75)  # one word is no sentence
    model = DecisionModel(candidate={}, decision={}, answer_threshold=0.9, semantic_route=route)
    assert model.answers(_features(0.9, True), 0.75) and not model.answers(_features(0.5, True), 0.75)
    assert model.answers(_features(0.5, False), 0.95)


def test_the_route_is_fitted_within_the_wrong_answer_budget() -> None:
    # Above the threshold: 20 right answers. Below: agreeing, close questions are mostly right,
    # the rest mostly wrong.
    items = [(_features(0.9, True), 0.95, True)] * 20
    items += [(_features(0.9, True), 0.92, True)] * 10 + [(_features(0.65, True), 0.92, False)] * 5
    items += [(_features(0.9, False), 0.92, False)] * 5
    route = choose_semantic_route(items, threshold=0.94, max_wrong=0.01)
    assert route and route["semantic"] > 0.65 and route["confidence"] <= 0.92
    answered = [ok for f, p, ok in items if p >= 0.94 or route_admits(route, f, p)]
    assert len(answered) == 30 and all(answered)
    # When nothing below the threshold can be taken without wrong answers, there is no route.
    assert choose_semantic_route([(f, p, False) for f, p, _ in items if p < 0.94] + items[:20], 0.94, 0.0) == {}


@pytest.mark.parametrize("question", ["找你们要个文件要不要掏腰包？", "信息公开申请的答复期限是多久"])
def test_the_desk_reports_semantic_features_for_faq_candidates(app, question: str) -> None:
    from service.db import get_desk

    with app.app_context():
        desk = get_desk()
        analysis = desk._analyse(question)
        faq = [c for c in analysis.candidates if c.doc.kind == "faq"]
        assert faq and all(0.0 <= c.features["semantic"] <= 1.0 for c in faq)
        assert sum(c.features["semantic_best"] for c in faq) == 1
        assert all(c.features["semantic"] == 0.0 for c in analysis.candidates if c.doc.kind != "faq")
