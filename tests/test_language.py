"""The pure language modules: agency names, years, clauses, small talk, paraphrases."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from service.clauses import asking_in_context, asking_part, drop_asides, focus_texts, separate_questions, split_clauses
from service.knowledge import read_agency, read_chitchat
from service.names import agency_aliases, expand_years, relative_years, split_name
from service.smalltalk import SmallTalk
from service.text import Lexicon, TextPipeline, compile_paraphrases

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"


@pytest.mark.parametrize(("full", "names"), [
    ("苏州市人民政府办公室", ["苏州市政府办公室", "苏州市府办", "苏州市政府", "苏州"]),
    ("广东省人民政府办公厅", ["广东省政府办公厅", "广东省府办公厅", "广东省政府", "广东"]),
    ("安吉县人民政府", ["安吉县政府", "安吉县府", "安吉县", "安吉"]),
    ("浙江省湖州市安吉县人民政府", ["安吉县政府", "安吉"]),
    ("上海市统计局", ["上海统计局", "上海"]),
])
def test_an_agency_is_known_by_the_names_people_use(full: str, names: list[str]) -> None:
    aliases = agency_aliases(full)
    assert aliases[0] == full
    for name in names:
        assert name in aliases


def test_a_national_body_has_no_place_and_a_market_regulator_keeps_its_name() -> None:
    assert split_name("国家统计局") == ("", "国家统计局")
    assert split_name("苏州市市场监督管理局") == ("苏州市", "市场监督管理局")
    assert "苏州市市" not in agency_aliases("苏州市市场监督管理局")


@pytest.mark.parametrize(("text", "expanded"), [
    ("21年收到多少申请", "2021年收到多少申请"),
    ("苏州市府办23年度", "苏州市府办2023年度"),
    ("保存20年以上", "保存20年以上"),
    ("20年代", "20年代"),
    ("要过去10年各省的数据", "要过去10年各省的数据"),  # 过去十年: a span of years, not 2010
    ("近20年的公报", "近20年的公报"),
    ("那21年的呢", "那2021年的呢"),
    ("我看了21年的年报", "我看了2021年的年报"),
])
def test_two_digit_years(text: str, expanded: str) -> None:
    assert expand_years(text) == expanded


def test_relative_years_are_not_table_labels() -> None:
    today = date(2026, 3, 1)
    assert relative_years("上年度收到多少申请", today) == [2025]
    assert relative_years("上年结转多少件", today) == []


def test_the_question_inside_a_story() -> None:
    story = ("我是湖南一名退休工人，上个月申请公开一个文件，结果收到你们一张告知书，说我的申请内容不明确，"
             "让我补正。我写得清清楚楚。补正要在多少天内交回去？")
    clauses = split_clauses(story)
    assert any(c.asks for c in clauses) and not all(c.asks for c in clauses)
    parts = focus_texts(story)
    assert any("补正要在多少天内交回去" in p for p in parts)
    assert "退休工人" not in asking_part(story)
    assert asking_in_context(story) == ["我写得清清楚楚。补正要在多少天内交回去？"]
    assert set(asking_in_context(story)) <= set(parts)
    assert focus_texts("多久能答复？") == [] == asking_in_context("多久能答复？")  # short: read whole


def test_two_questions_in_one_message() -> None:
    assert separate_questions("多久能答复？要不要交钱？") == ["多久能答复？", "要不要交钱？"]
    assert separate_questions("我上个月交了申请。多久能答复？") == []


@pytest.fixture(scope="module")
def smalltalk() -> SmallTalk:
    return SmallTalk(read_chitchat(KNOWLEDGE), read_agency(KNOWLEDGE))


@pytest.mark.parametrize(("message", "intent"), [
    ("你好呀", "greeting"), ("在吗在吗", "greeting"), ("谢谢啦🙏", "thanks"), ("Thanks a lot!", "thanks"),
    ("唔該晒", "thanks"), ("晚安", "goodbye"), ("好嘞", "acknowledge"), ("行吧", "acknowledge"),
    ("好的收到", "acknowledge"), ("👍", "acknowledge"), ("你真聪明", "praise"), ("答非所问", "complaint"),
    ("转人工", "handoff"), ("我要找人工客服", "handoff"), ("你好，转人工", "handoff"), ("zhuan rengong", "handoff"),
    ("你是机器人吗", "identity"),
])
def test_small_talk_by_intent(smalltalk: SmallTalk, message: str, intent: str) -> None:
    found = smalltalk.match(message)
    assert found is not None and found.name == intent


@pytest.mark.parametrize("message", ["收费标准是什么", "你好，请问怎么申请", "工作人员什么时候答复", "hi shenqing",
                                     "人工客服电话多少", "谢谢，再问一下复议期限"])
def test_a_question_is_not_small_talk(smalltalk: SmallTalk, message: str) -> None:
    assert smalltalk.match(message) is None


def test_a_request_for_a_person_names_the_known_contact_details_and_invents_none(smalltalk: SmallTalk) -> None:
    reply = smalltalk.by_name["handoff"].reply
    assert "{contact}" not in reply and "描述您的问题" in reply
    assert "北京市西城区月坛南街57号" in reply  # the address the agency publishes
    assert "咨询电话" in reply and "公布的为准" in reply  # no number is made up


def test_paraphrases_rewrite_whole_words_only() -> None:
    rewriter, _ = compile_paraphrases([("fee", "费用"), ("gk", "公开"), ("点样", "怎样"), ("点", "x")])
    assert rewriter is not None
    rewrite = lambda t: " ".join(rewriter.sub(t).split())  # noqa: E731
    assert rewrite("apply的时候要交fee吗") == "apply的时候要交 费用 吗"
    assert rewrite("gk shenqing") == "公开 shenqing"
    assert rewrite("gkxx feedback") == "gkxx feedback"
    assert rewrite("想问下点样申请") == "想问下 怎样 申请"  # the longest variant wins


def test_a_trailing_particle_never_cuts_a_word() -> None:
    pipeline = TextPipeline(Lexicon(particles="吗呢啊呀吧哦嘛么哈啦了"))
    assert pipeline.normalise("收费标准是什么") == "收费标准是什么"
    assert pipeline.normalise("收费吗") == "收费"
    assert pipeline.normalise("怎么办呢") == "怎么办"


def test_a_parenthesised_aside_explains_and_does_not_ask() -> None:
    assert drop_asides("2023年行政诉讼一共多少件（含直接起诉和复议后起诉）？") == "2023年行政诉讼一共多少件？"
    assert drop_asides("disclosure rate是多少(公开加部分公开)") == "disclosure rate是多少"
    assert drop_asides("（申请要多久）") == "（申请要多久）"  # nothing would be left
