"""The text pipeline: normalisation, numerals, tokens, synonyms."""
from __future__ import annotations

from pathlib import Path

import pytest

from service.knowledge import lexicon_from_db, read_language
from service.migrations import apply_migrations
from service.storage import connect
from service.knowledge import seed
from service.text import TextPipeline, chinese_to_int, clean

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):  # type: ignore[no-untyped-def]
    db = connect(tmp_path_factory.mktemp("text") / "t.db")
    apply_migrations(db)
    seed(db, KNOWLEDGE, "国家统计局")
    return TextPipeline(lexicon_from_db(db, read_language(KNOWLEDGE)))


@pytest.mark.parametrize(("raw", "expected"), [
    ("ＡＢＣ１２３", "abc123"),                       # full width to half width, case folded
    ("申請政府資訊公開", "申请政府信息公开"),            # traditional with Taiwan wording
    ("答覆期限", "答复期限"),
    ("二十个工作日", "20个工作日"),
    ("第三十三条", "第33条"),
    ("二〇二一年", "2021年"),
    ("一站式服务", "一站式服务"),                     # no measure word: left alone
    ("三安全一稳定", "三安全一稳定"),
    ("a\u0000b\u200bc", "abc"),                        # control and format characters dropped
])
def test_clean(raw: str, expected: str) -> None:
    assert clean(raw) == expected


@pytest.mark.parametrize(("numeral", "value"), [
    ("十", 10), ("十五", 15), ("二十", 20), ("一百零五", 105), ("两万", 20000),
    ("二〇二一", 2021), ("三千零一十", 3010), ("一亿二千万", 120_000_000), ("十十", None),
])
def test_chinese_to_int(numeral: str, value: int | None) -> None:
    assert chinese_to_int(numeral) == value


@pytest.mark.parametrize(("question", "normalised"), [
    ("请问，怎么申请政府信息公开？", "怎么申请政府信息公开"),
    ("你好，我想知道申请要收费吗", "申请要收费"),
    ("答复期限可以延长吗？？", "答复期限可以延长"),
    ("你好", "你好"),                                  # courtesy alone is kept for small talk
])
def test_normalise_removes_fillers_and_punctuation(pipeline, question: str, normalised: str) -> None:
    assert pipeline.normalise(question) == normalised


def test_tokens_use_domain_dictionary_and_synonyms(pipeline) -> None:
    tokens = pipeline.tokens(pipeline.normalise("微观数据实验室怎么申请"))
    assert "微观数据实验室" in tokens
    # Colloquial words meet their formal synonyms.
    assert pipeline.tokens(pipeline.normalise("申请要交钱吗")) == pipeline.tokens(pipeline.normalise("申请要收费吗"))
    assert "期限" in pipeline.tokens(pipeline.normalise("多长时间答复"))
    assert "答复" in pipeline.tokens(pipeline.normalise("多久回复"))


def test_stop_words_and_amount_words_dropped(pipeline) -> None:
    tokens = pipeline.tokens(pipeline.normalise("现行有效的规章有几件"))
    assert tokens == ["现行有效", "规章"]
    # Words that frame a topic without naming one weigh nothing (方面, 关于, 觉得).
    tokens = pipeline.tokens(pipeline.normalise("我觉得关于信息公开方面的行政诉讼"))
    assert "方面" not in tokens and "关于" not in tokens and "觉得" not in tokens and "行政诉讼" in tokens


def test_word_rarity_orders_common_and_rare_words(pipeline) -> None:
    assert pipeline.word_rarity("发生") < pipeline.word_rarity("居住证")
    assert pipeline.word_rarity("zzzz不是词") is None


def test_removed_dictionary_word_is_cut_apart_again(tmp_path) -> None:
    from service.text import Lexicon

    with_word = TextPipeline(Lexicon(words=[("统计开放日", 20000)]))
    assert "统计开放日" in with_word.tokens("统计开放日在哪天")
    without = TextPipeline(Lexicon(words=[]))
    assert "统计开放日" not in without.tokens("统计开放日在几号")


def test_rebuilding_the_knowledge_leaves_word_weights_and_segmentation_as_they_were(tmp_path) -> None:
    """Each curator's save builds a new pipeline on the process's one jieba tokenizer; the
    corpus total must not grow with every build (jieba's add_word adds without taking off),
    or words would look rarer and segmentation drift the longer a worker runs."""
    db = connect(tmp_path / "rebuild.db")
    apply_migrations(db)
    seed(db, KNOWLEDGE, "国家统计局")
    first = TextPipeline(lexicon_from_db(db, read_language(KNOWLEDGE)))  # after whatever other tests built
    before = (first.tokenizer.total, first.word_rarity("申请"), first.topic_rarity("提"))
    for _ in range(5):
        rebuilt = TextPipeline(lexicon_from_db(db, read_language(KNOWLEDGE)))
    assert (rebuilt.tokenizer.total, rebuilt.word_rarity("申请"), rebuilt.topic_rarity("提")) == before
    assert rebuilt.tokens(rebuilt.normalise("复议怎么申请")) == first.tokens(first.normalise("复议怎么申请"))
