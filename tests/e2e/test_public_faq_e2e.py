"""The public knowledge base in a real browser: /faq by category, a search in a citizen's words,
an entry at its own address with its source and related entries; the same without JavaScript;
axe-core and the CSP on each page; and 您可能还想了解 under a chat answer, which asks on a click."""
from __future__ import annotations

import re

import pytest

from service.storage import connect

from .helpers import ask, blocking, click_for_answer, describe, run_axe
from .test_accessibility import CSPWatch

pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
from playwright.sync_api import expect  # noqa: E402

FEE_QUESTION = "申请政府信息公开要收费吗？"
FEE_STANDARDS = "信息处理费怎么计算？收费标准是多少？"


def _assert_clean(page, where: str) -> None:  # type: ignore[no-untyped-def]
    found = blocking(run_axe(page))
    assert not found, f"axe on {where}:\n{describe(found)}"


def _answer_of(live_server, key: str) -> str:  # type: ignore[no-untyped-def]
    db = connect(live_server.db)
    try:
        return db.execute("select answer from entries where key = ?", [key]).fetchone()[0].strip()
    finally:
        db.close()


def _search_and_open_the_fee_entry(page, live_server) -> None:  # type: ignore[no-untyped-def]
    """From /faq: search 收不收钱, see the fee entry first, open it."""
    page.goto(live_server("/faq"))
    expect(page.get_by_role("heading", level=1)).to_have_text("常见问题")
    expect(page.get_by_role("heading", level=2, name="费用")).to_be_visible()
    box = page.get_by_role("searchbox", name="搜索常见问题")
    box.fill("收不收钱")
    box.press("Enter")
    page.wait_for_url(re.compile(r"/faq\?q="))
    expect(page.locator(".faq-results li").first.get_by_role("link")).to_have_text(FEE_QUESTION)
    expect(page.get_by_role("searchbox", name="搜索常见问题")).to_have_value("收不收钱")


@pytest.mark.parametrize("large_text", [False, True], ids=["normal", "large-text"])
def test_faq_search_and_entry_have_no_serious_axe_violations(live_server, new_context, large_text: bool) -> None:
    viewport = {"width": 390, "height": 844} if large_text else {"width": 1280, "height": 900}
    page = new_context(bypass_csp=True, viewport=viewport).new_page()
    page.goto(live_server("/faq"))
    if large_text:
        page.locator("#font-toggle").click()
        expect(page.locator("html")).to_contain_class("large-text")
    expect(page.get_by_role("navigation", name="主导航").get_by_role("link", name="常见问题")).to_have_attribute(
        "aria-current", "page")
    _assert_clean(page, "/faq" + (" in 大字模式" if large_text else ""))

    _search_and_open_the_fee_entry(page, live_server)
    _assert_clean(page, "/faq?q=收不收钱" + (" in 大字模式" if large_text else ""))

    page.locator(".faq-results li").first.get_by_role("link").click()
    page.wait_for_url(live_server("/faq/is-it-free"))
    expect(page.get_by_role("heading", level=1)).to_have_text(FEE_QUESTION)
    expect(page.locator(".faq-source")).to_contain_text("来源：《中华人民共和国政府信息公开条例》第四十二条")
    related = page.get_by_role("region", name="您可能还想了解").get_by_role("link")
    expect(related).to_have_count(3)
    expect(related.first).to_have_text(FEE_STANDARDS)
    _assert_clean(page, "/faq/is-it-free" + (" in 大字模式" if large_text else ""))

    related.first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(FEE_STANDARDS)
    page.get_by_role("navigation", name="当前位置").get_by_role("link", name="费用").click()
    expect(page.locator("#category-费用")).to_be_in_viewport()

    response = page.goto(live_server("/faq/no-such-entry"))
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("未找到该问题")
    _assert_clean(page, "/faq/no-such-entry")


def test_faq_works_without_javascript(live_server, new_context) -> None:
    page = new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900}).new_page()
    _search_and_open_the_fee_entry(page, live_server)
    page.locator(".faq-results li").first.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(FEE_QUESTION)
    # The answer as stored now (the curation tests may have edited it on the shared server).
    expect(page.locator(".faq-answer")).to_contain_text(_answer_of(live_server, "is-it-free")[:20])
    # Too long a search (typed past the box's limit by hand in the address) is said plainly.
    response = page.goto(live_server("/faq?q=" + "收" * 101))
    assert response is not None and response.status == 400
    expect(page.get_by_role("alert")).to_have_text("搜索内容过长，请控制在100字以内。")


def test_faq_pages_cause_no_csp_violations(live_server, new_context) -> None:
    page = new_context(viewport={"width": 1280, "height": 900}).new_page()
    watch = CSPWatch(page)
    _search_and_open_the_fee_entry(page, live_server)
    page.locator(".faq-results li").first.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(FEE_QUESTION)
    page.locator("#font-toggle").click()
    page.wait_for_load_state("networkidle")
    assert watch.problems() == []


def test_a_chat_answer_offers_related_questions_that_ask_on_a_click(live_server, new_context) -> None:
    page = new_context(bypass_csp=True, viewport={"width": 1280, "height": 900}).new_page()
    page.goto(live_server("/"))
    answer = ask(page, "收不收钱")
    expect(answer).to_have_attribute("data-status", "answered")
    expect(answer.locator(".related .suggestions-title")).to_have_text("您可能还想了解：")
    related = answer.get_by_role("group", name="您可能还想了解：").get_by_role("button")
    expect(related).to_have_count(3)
    expect(related.first).to_have_text(FEE_STANDARDS)
    expect(related.first).to_have_attribute("data-key", "fee-standards")
    _assert_clean(page, "/ with related questions")

    asked = click_for_answer(page, related.first)
    expect(page.locator("#chat-log .msg.user").last).to_contain_text(FEE_STANDARDS)
    expect(asked).to_have_attribute("data-status", "answered")
    expect(asked.locator(".source")).to_be_visible()
    # Its own related questions: never itself.
    again = asked.get_by_role("group", name="您可能还想了解：").get_by_role("button")
    expect(again).not_to_have_count(0)
    expect(again.filter(has_text=FEE_STANDARDS)).to_have_count(0)

    clarify = ask(page, "申请")  # a choice, not an answer: no related questions under it
    expect(clarify).to_have_attribute("data-status", "clarify")
    expect(clarify.locator(".related")).to_have_count(0)


def test_the_navigation_leads_from_the_chat_to_the_knowledge_base(live_server, new_context) -> None:
    page = new_context(viewport={"width": 390, "height": 844}).new_page()
    page.goto(live_server("/"))
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="常见问题").click()
    page.wait_for_url(live_server("/faq"))
    expect(page.get_by_role("heading", level=1)).to_have_text("常见问题")
