"""Questions typed in pinyin are read as the Chinese they spell; English stays English."""
from __future__ import annotations

import jieba
import pytest

from service.pinyin_text import PinyinReader


@pytest.fixture(scope="module")
def reader() -> PinyinReader:
    jieba.initialize()
    r = PinyinReader(lambda: jieba.dt.FREQ)
    r.prefer(["复议", "补正", "申请", "申请书", "公开", "部分公开", "信息公开", "受理"])
    return r


@pytest.mark.parametrize(("typed", "read"), [
    ("weishenme zhi gei wo bufen gongkai", "为什么"),
    ("weishenme zhi gei wo bufen gongkai", "部分公开"),
    ("buzheng 要在几天内完成", "补正 要在几天内完成"),
    ("shenqingshu li yao xie shenme neirong", "申请书里要"),
    ("chongfu shenqing 还会受理吗", "重复申请 还会受理吗"),
    ("gong kai", "公开"),
])
def test_pinyin_stretches_become_chinese(reader, typed, read) -> None:
    assert read in reader.convert(typed)


def test_spaces_the_citizen_typed_are_word_boundaries(reader) -> None:
    # fuyi hou is 复议 后, not 副 以后; yao xie is 要 写-ish, never 要挟.
    assert reader.convert("fuyi hou qisu de anjian").startswith("复议后")
    assert "要挟" not in reader.convert("yao xie shenme")


@pytest.mark.parametrize("typed", [
    "can a foreigner request government information",  # English with a word that is no pinyin
    "apply的时候要交fee吗",
    "怎么change我的application",  # a lone token that spells no word of the knowledge (嫦娥)
    "can you help me",  # English words that happen to be pinyin
    "ok谢谢",
])
def test_english_is_left_alone(reader, typed) -> None:
    assert reader.convert(typed) == typed


def test_the_desk_answers_a_question_typed_in_pinyin(ask) -> None:
    reply = ask("shenqingshu li yao xie shenme neirong")
    assert reply["status"] == "answered" and "申请" in reply["answer"], reply
