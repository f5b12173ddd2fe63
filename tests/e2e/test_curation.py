"""A curator's saved answer is what the next citizen reads."""
from __future__ import annotations

import re

import pytest

from .helpers import ask, login

pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
from playwright.sync_api import expect  # noqa: E402

QUESTION = "申请政府信息公开要收费吗？"
NEW_ANSWER = "一般不收费。申请数量、频次明显超过合理范围的，才按规定收取信息处理费，并事先书面通知。（端到端测试修改）"


def test_an_edited_faq_answer_changes_the_chat_answer(live_server, new_context) -> None:
    citizen = new_context(viewport={"width": 1280, "height": 900}).new_page()
    citizen.goto(live_server("/"))
    old = ask(citizen, QUESTION)
    expect(old).to_have_attribute("data-status", "answered")
    expect(old.locator(".text")).to_contain_text("原则上不收费")
    entry_id = old.get_attribute("data-entry-id")

    curator = new_context(viewport={"width": 1280, "height": 900}).new_page()
    login(curator, live_server, "cur")
    curator.goto(live_server("/staff/faq?q=收费"))
    link = curator.locator("table.faq-table").get_by_role("link", name=QUESTION, exact=True)
    expect(link).to_have_attribute("href", f"/staff/faq/{entry_id}")
    link.click()
    curator.wait_for_url(re.compile(rf"/staff/faq/{entry_id}$"))
    expect(curator.get_by_role("heading", level=1)).to_have_text("编辑条目")
    answer_box = curator.get_by_label("答案", exact=True)
    expect(answer_box).to_contain_text("原则上不收费")
    answer_box.fill(NEW_ANSWER)
    curator.get_by_role("button", name="保存修改").click()
    expect(curator.get_by_role("status")).to_contain_text("已保存")
    expect(curator.get_by_label("答案", exact=True)).to_have_value(NEW_ANSWER)

    # Same citizen, same page: the next ask gets the new answer (from whichever worker serves it).
    new = ask(citizen, QUESTION)
    expect(new).to_have_attribute("data-status", "answered")
    expect(new.locator(".text")).to_have_text(NEW_ANSWER)
    expect(new.locator(".source")).to_contain_text("第四十二条")
