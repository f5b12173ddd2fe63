"""Feedback in a real browser: 有用 / 没用 under an answer, the reasons, the way from 没用 to a
ticket, and rating a ticket's reply on the lookup page; axe-core and the CSP on each state."""
from __future__ import annotations

import re
import secrets

import pytest

from service import tickets
from service.storage import connect

from .helpers import ask, blocking, click_for_answer, describe, run_axe
from .test_accessibility import CSPWatch

pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
from playwright.sync_api import expect  # noqa: E402


def _assert_clean(page, where: str) -> None:  # type: ignore[no-untyped-def]
    found = blocking(run_axe(page))
    assert not found, f"axe on {where}:\n{describe(found)}"


def _feedback_rows(live_server, note: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    db = connect(live_server.db)
    try:
        return db.execute("select helpful, reason_code, reason from feedback where reason = ?", [note]).fetchall()
    finally:
        db.close()


@pytest.mark.parametrize("large_text", [False, True], ids=["normal", "large-text"])
def test_not_helpful_with_a_reason_then_a_ticket(live_server, new_context, large_text: bool) -> None:
    # axe needs bypass_csp (it is injected inline); 大字模式 on a phone is the tightest layout.
    viewport = {"width": 390, "height": 844} if large_text else {"width": 1280, "height": 900}
    page = new_context(bypass_csp=True, viewport=viewport).new_page()
    page.goto(live_server("/"))
    if large_text:
        page.locator("#font-toggle").click()
        expect(page.locator("html")).to_contain_class("large-text")

    answer = ask(page, "答复期限是多久")
    expect(answer).to_have_attribute("data-status", "answered")
    box = answer.get_by_role("group", name="这条回答对您有帮助吗？")
    not_helpful = box.get_by_role("button", name="没用")
    expect(box.get_by_role("button", name="有用")).to_be_visible()
    expect(not_helpful).to_have_attribute("aria-expanded", "false")

    not_helpful.click()
    expect(not_helpful).to_have_attribute("aria-expanded", "true")
    reasons = box.get_by_role("group", name="哪里没有帮到您？（选填）")
    expect(reasons.get_by_role("radio")).to_have_count(4)
    for label in ("答非所问", "内容过时", "看不懂", "其他"):
        expect(reasons.get_by_label(label)).to_be_visible()
    hand_over = box.get_by_role("button", name="转人工办理")
    expect(hand_over).to_be_visible()
    _assert_clean(page, "an answer with its reasons open" + (" in 大字模式" if large_text else ""))

    note = f"<b>没说清楚</b> {secrets.token_hex(4)}"
    reasons.get_by_label("答非所问").check()
    box.get_by_label(re.compile("^补充说明")).fill(note)
    box.get_by_role("button", name="提交反馈").click()
    thanks = answer.locator(".feedback-done")
    expect(thanks).to_have_text("感谢您的反馈，我们会据此改进答复。")
    expect(box.get_by_role("button", name="有用")).to_have_count(0)
    expect(hand_over).to_be_visible()  # the way to a person stays
    # Stored once, by whichever worker took it (the question's log row may still be buffered).
    assert _feedback_rows(live_server, note) == [(0, "off_topic", note)]
    _assert_clean(page, "an answer after feedback" + (" in 大字模式" if large_text else ""))

    ticket_answer = click_for_answer(page, hand_over)
    expect(ticket_answer).to_have_attribute("data-status", "escalated")
    expect(page.locator("#chat-log .msg.user").last).to_have_text(re.compile("请转人工办理：答复期限是多久$"))
    ticket = ticket_answer.get_by_role("group", name="已为您登记，转人工办理")
    expect(ticket.locator(".ticket-code")).to_have_text(re.compile(r"^GK[0-9A-Z]{2}-[0-9A-Z]{4}-[0-9A-Z]{4}$"))
    expect(ticket.locator(".ticket-password")).to_have_text(re.compile(r"^\d{6}$"))
    expect(ticket_answer.locator(".feedback")).to_have_count(0)  # no 有用 / 没用 under a ticket
    _assert_clean(page, "the ticket given after 没用" + (" in 大字模式" if large_text else ""))


def test_helpful_is_one_click_and_small_talk_offers_no_ticket(live_server, new_context) -> None:
    page = new_context(bypass_csp=True, viewport={"width": 1280, "height": 900}).new_page()
    page.goto(live_server("/"))
    answer = ask(page, "申请要收费吗")
    answer.get_by_role("button", name="有用").click()
    expect(answer.locator(".feedback-done")).to_have_text("感谢您的反馈！")
    expect(answer.get_by_role("button", name="没用")).to_have_count(0)

    chat = ask(page, "谢谢")
    expect(chat).to_have_attribute("data-kind", "chitchat")
    chat.get_by_role("button", name="没用").click()
    expect(chat.get_by_role("button", name="提交反馈")).to_be_visible()
    expect(chat.get_by_role("button", name="转人工办理")).to_have_count(0)
    _assert_clean(page, "small talk with its reasons open")


def test_feedback_causes_no_csp_violations(live_server, new_context) -> None:
    page = new_context(viewport={"width": 1280, "height": 900}).new_page()
    watch = CSPWatch(page)
    page.goto(live_server("/"))
    answer = ask(page, "答复期限是多久")
    answer.get_by_role("button", name="没用").click()
    answer.get_by_label("看不懂").check()
    answer.get_by_role("button", name="提交反馈").click()
    expect(answer.locator(".feedback-done")).to_be_visible()
    click_for_answer(page, answer.get_by_role("button", name="转人工办理"))
    page.wait_for_load_state("networkidle")
    assert watch.problems() == []


def test_a_citizen_rates_the_reply_to_their_ticket_once(live_server, new_context) -> None:
    page = new_context(bypass_csp=True, viewport={"width": 1280, "height": 900}).new_page()
    page.goto(live_server("/"))
    escalated = ask(page, "贵单位食堂的菜谱能公开吗")
    expect(escalated).to_have_attribute("data-status", "escalated")
    code = escalated.locator(".ticket-code").inner_text()
    password = escalated.locator(".ticket-password").inner_text()

    def look_up() -> None:
        page.goto(live_server("/tickets"))
        page.get_by_label("工单编号").fill(code)
        page.get_by_label("查询密码").fill(password)
        page.get_by_role("button", name="查询").click()
        expect(page.locator(".lookup-result .ticket-code")).to_have_text(code)

    look_up()
    expect(page.get_by_role("group", name="您对这次答复满意吗？")).to_have_count(0)  # nothing to rate yet

    db = connect(live_server.db)  # a reviewer answers (the reviewers' screens have tests of their own)
    try:
        reviewer = dict(next(db.query("select id, username from users where username = 'rev'")))
        ticket_id = db.execute("select id from tickets where code = ?", [code.replace("-", "")]).fetchone()[0]
        tickets.reply(db, ticket_id, reviewer, "请向当地住房保障部门咨询。")
    finally:
        db.close()

    look_up()
    rating = page.get_by_role("group", name="您对这次答复满意吗？")
    for label in ("满意", "基本满意", "不满意"):
        expect(rating.get_by_role("radio", name=label, exact=True)).to_be_visible()
    _assert_clean(page, "/tickets with a reply to rate")
    rating.get_by_role("radio", name="基本满意").check()
    page.get_by_role("button", name="提交评价").click()
    expect(page.locator(".rating-done")).to_have_text("感谢您的评价！")
    expect(page.locator(".rating-given")).to_have_text("您的评价：基本满意")
    expect(page.get_by_role("button", name="提交评价")).to_have_count(0)
    _assert_clean(page, "/tickets after rating")

    look_up()  # later visits show the rating, with no form to give another
    expect(page.locator(".rating-given")).to_have_text("您的评价：基本满意")
    expect(page.get_by_role("radio")).to_have_count(0)
