"""A citizen's questions, from a cited answer to a ticket a reviewer answers, all in a real browser."""
from __future__ import annotations

import re

import pytest

from .helpers import ask, click_for_answer, login

pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
from playwright.sync_api import expect  # noqa: E402

REPLY = "公共租赁住房由住房和城乡建设部门受理，请向您户籍或工作所在地的住房保障部门咨询。"


def test_citizen_asks_clarifies_escalates_and_reads_the_staff_reply(live_server, new_context) -> None:
    citizen = new_context(viewport={"width": 1280, "height": 900}).new_page()
    citizen.goto(live_server("/"))

    # Typed and sent with Enter: an answer with the rule it rests on.
    answer = ask(citizen, "答复期限是多久", typed=True)
    expect(answer).to_have_attribute("data-status", "answered")
    expect(answer.locator(".text")).to_contain_text("20个工作日")
    expect(answer.locator(".source")).to_contain_text("来源：《中华人民共和国政府信息公开条例》第三十三条")
    expect(citizen.locator("#question")).to_be_focused()
    expect(citizen.locator("#question")).to_have_value("")

    # One word is ambiguous: the desk offers what it might mean; a click answers it.
    clarify = ask(citizen, "申请")
    expect(clarify).to_have_attribute("data-status", "clarify")
    choice = clarify.get_by_role("group", name="您是不是想问").get_by_role("button").first
    expect(choice).to_have_text("申请政府信息公开有哪些方式？")
    chosen = click_for_answer(citizen, choice)
    expect(chosen).to_have_attribute("data-status", "answered")
    expect(citizen.locator("#chat-log .msg.user").last).to_contain_text("申请政府信息公开有哪些方式？")
    expect(chosen.locator(".text")).not_to_be_empty()
    expect(chosen.locator(".source")).to_be_visible()

    # Out of scope: a ticket code and a query password to look the reply up with.
    escalated = ask(citizen, "贵单位食堂的菜谱能公开吗")
    expect(escalated).to_have_attribute("data-status", "escalated")
    ticket = escalated.get_by_role("group", name="已为您登记，转人工办理")
    expect(ticket.locator(".ticket-code")).to_have_text(re.compile(r"^GK[0-9A-Z]{2}-[0-9A-Z]{4}-[0-9A-Z]{4}$"))
    expect(ticket.locator(".ticket-password")).to_have_text(re.compile(r"^\d{6}$"))
    code = ticket.locator(".ticket-code").inner_text()
    password = ticket.locator(".ticket-password").inner_text()
    expect(escalated.locator(".text")).to_contain_text(code)

    # A reviewer, in a browser of their own, finds the ticket and answers it.
    reviewer = new_context(viewport={"width": 1280, "height": 900}).new_page()
    login(reviewer, live_server, "rev")
    # Each ticket on its own row (相同问题：逐张列出): other tests of this session asked the
    # same question, and the default view merges them into one row named by another code.
    reviewer.goto(live_server("/staff/tickets"))
    reviewer.get_by_label("相同问题").select_option("0")
    reviewer.get_by_role("button", name="筛选").click()
    row = reviewer.locator("table.ticket-table tr", has=reviewer.get_by_role("link", name=code))
    expect(row).to_contain_text("贵单位食堂的菜谱能公开吗")
    row.get_by_role("link", name=code).click()
    expect(reviewer.get_by_role("heading", level=1)).to_contain_text(code)
    reviewer.get_by_label(re.compile("^答复内容")).fill(REPLY)
    reviewer.get_by_role("button", name="提交答复").click()
    expect(reviewer.get_by_role("status")).to_contain_text("已答复")
    expect(reviewer.locator(".current-reply .reply-text")).to_have_text(REPLY)

    # The citizen follows the link in the ticket box and reads the reply.
    ticket.get_by_role("link", name="办理查询").click()
    citizen.wait_for_url(live_server("/tickets"))
    citizen.get_by_label("工单编号").fill(code)
    citizen.get_by_label("查询密码").fill(password)
    citizen.get_by_role("button", name="查询").click()
    result = citizen.locator(".lookup-result")
    expect(result.locator(".ticket-code")).to_have_text(code)
    expect(result.locator(".lookup-status")).to_have_text("已答复")
    expect(result.locator(".lookup-question")).to_have_text("贵单位食堂的菜谱能公开吗")
    expect(result.locator(".reply-text")).to_have_text(REPLY)
    # Nothing about who answered, and no contact details, reach the citizen's page.
    expect(result).not_to_contain_text("rev")


def test_a_figure_answer_links_to_its_table_in_the_report(live_server, page) -> None:
    page.goto(live_server("/"))
    answer = ask(page, "2021年收到多少申请")
    expect(answer).to_have_attribute("data-kind", "fact")
    expect(answer.locator(".text")).to_contain_text("152件")
    link = answer.locator(".source a")
    expect(link).to_have_attribute("href", "/reports/1#table-3")
    link.click()
    page.wait_for_url(live_server("/reports/1#table-3"))
    expect(page.locator("#table-3")).to_be_visible()
    expect(page.locator("#table-3 caption")).to_contain_text("表三")


def test_another_bodys_business_is_referred_and_can_still_go_to_staff(live_server, new_context) -> None:
    citizen = new_context(viewport={"width": 1280, "height": 900}).new_page()
    citizen.goto(live_server("/"))
    referred = ask(citizen, "怎么申请公租房")
    expect(referred).to_have_attribute("data-kind", "referral")
    expect(referred.locator(".text")).to_contain_text("住房和城乡建设部门")
    expect(referred.locator(".text")).to_contain_text("12345")
    expect(referred.locator(".ticket-code")).to_have_count(0)  # no ticket a reviewer could only forward
    sent = click_for_answer(citizen, referred.get_by_role("button", name="仍然提交给工作人员"))
    expect(sent.locator(".ticket-code")).to_have_text(re.compile(r"^GK[0-9A-Z]{2}-[0-9A-Z]{4}-[0-9A-Z]{4}$"))
