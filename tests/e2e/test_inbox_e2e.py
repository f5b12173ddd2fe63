"""The curators' inbox in a real browser, fed by a citizen's real conversation.

A citizen asks a question the desk can only clarify, clicks the "did you mean" suggestion
about 行政复议 (the chat sends its signed ``pick``), and asks about the canteen's menu three
times in two wordings. A curator then finds the pair and the canteen group in 未解答问题,
accepts the pair (the answered share before and after is shown) and dismisses the group;
the citizen's first question is answered directly from then on. The page is checked with
axe-core, against the CSP, and at a phone's width.

The test runs its own server (started like ``live_server``, two workers, the question log
batched as configured): it counts the questions it asked and changes the knowledge, which
the session's shared server must not see (other tests ask about the canteen too).
"""
from __future__ import annotations

import json
import time
from typing import Iterator

import pytest

from .conftest import running_server
from .helpers import LiveServer, ask, blocking, click_for_answer, describe, login, run_axe
from .test_accessibility import CSPWatch

pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
from playwright.sync_api import expect  # noqa: E402

CLARIFIED = "复议怎么申请"
CANTEEN = "贵单位食堂今年的菜谱能公开吗？"
CANTEEN_AGAIN = "你们食堂的菜谱公开吗"
WIDE = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# The question log is written per worker in batches, or after a second of quiet
# (ASK_LOG_MAX_DELAY): the inbox shows a question once its worker has written it.
LOGGED_WITHIN_S = 15


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    """A server and database of its own (other tests ask the shared one about the canteen),
    with a curator."""
    with running_server(tmp_path_factory.mktemp("inbox-e2e"), (("cur", "curator"),)) as started:
        yield started


def _reload_until_logged(page) -> None:  # type: ignore[no-untyped-def]
    """Reload the inbox until every question asked is in it: the pair and the canteen's three."""
    canteen_meta = page.get_by_role("article", name=CANTEEN, exact=True).locator(".meta")
    pair = page.get_by_role("region", name="群众选择的建议问法（待审核）").get_by_role("row").filter(has_text=CLARIFIED)
    deadline = time.monotonic() + LOGGED_WITHIN_S
    while not (pair.count() == 1 and canteen_meta.count() == 1 and "共 3 次" in canteen_meta.inner_text()):
        assert time.monotonic() < deadline, "the inbox did not show the questions asked:\n" + page.inner_text("main")
        page.wait_for_timeout(250)  # the server's log, not the page, is what we wait for
        page.reload()


def _assert_clean(page, where: str) -> None:  # type: ignore[no-untyped-def]
    found = blocking(run_axe(page))
    assert not found, f"axe on {where}:\n{describe(found)}"


def _assert_fits(page) -> None:  # type: ignore[no-untyped-def]
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the inbox scrolls sideways: {widths}"


def _assert_clean_and_fits_a_phone(page, where: str) -> None:  # type: ignore[no-untyped-def]
    """axe at 1280 px and at 390 px, where the body must not scroll sideways (wide tables
    scroll inside their focusable region)."""
    _assert_clean(page, where)
    page.set_viewport_size(PHONE)
    _assert_fits(page)
    _assert_clean(page, f"{where}, 390 px wide")
    page.set_viewport_size(WIDE)


def test_a_curator_accepts_a_citizens_pick_and_dismisses_noise(server, new_context) -> None:
    # The citizen: one question clarified and a suggestion picked, one the desk cannot answer.
    citizen = new_context(viewport=WIDE).new_page()
    citizen.goto(server("/"))
    clarified = ask(citizen, CLARIFIED)
    expect(clarified).to_have_attribute("data-status", "clarify")
    suggestion = clarified.get_by_role("group", name="您是不是想问").get_by_role("button").filter(has_text="行政复议")
    expect(suggestion).to_have_count(1)
    entry_id, entry_question = suggestion.get_attribute("data-id"), suggestion.inner_text()
    with citizen.expect_request(lambda r: r.url == server("/api/ask") and r.method == "POST") as sent:
        picked = click_for_answer(citizen, suggestion)
    body = json.loads(sent.value.post_data or "{}")
    assert body["question"] == entry_question and isinstance(body.get("pick"), str), body
    expect(picked).to_have_attribute("data-status", "answered")
    expect(picked).to_have_attribute("data-entry-id", entry_id)
    for question in [CANTEEN, CANTEEN, CANTEEN_AGAIN]:
        expect(ask(citizen, question)).to_have_attribute("data-status", "escalated")

    # The curator, from the staff navigation (axe is inlined: this context bypasses the CSP).
    staff = new_context(bypass_csp=True, viewport=WIDE).new_page()
    login(staff, server, "cur")
    staff.get_by_role("navigation", name="工作台导航").get_by_role("link", name="未解答问题").click()
    expect(staff.get_by_role("heading", level=1)).to_have_text("未解答问题")
    _reload_until_logged(staff)

    suggested = staff.get_by_role("region", name="群众选择的建议问法（待审核）")
    pair = suggested.get_by_role("row").filter(has_text=CLARIFIED)
    expect(pair).to_contain_text(entry_question)
    expect(pair).to_contain_text("1 次（1 个会话）")
    canteen = staff.get_by_role("article", name=CANTEEN, exact=True)
    expect(canteen.locator(".meta")).to_contain_text("共 3 次 · 转人工 3")
    expect(canteen.locator(".examples li")).to_have_text([CANTEEN, CANTEEN_AGAIN])  # two wordings, one group
    expect(staff.get_by_role("article", name=CANTEEN_AGAIN, exact=True)).to_have_count(0)
    expect(canteen.get_by_label("问法（可修改）")).to_have_value(CANTEEN)
    expect(canteen.get_by_label("添加到条目")).to_be_visible()
    expect(canteen.get_by_role("button", name=f"添加为相似问法：{CANTEEN}")).to_be_visible()
    _assert_clean_and_fits_a_phone(staff, "/staff/inbox with a pair and groups")

    # The same page as served (CSP enforced), on a phone.
    phone = new_context(viewport=PHONE).new_page()
    watch = CSPWatch(phone)
    login(phone, server, "cur")
    phone.goto(server("/staff/inbox"))
    expect(phone.get_by_role("article", name=CANTEEN, exact=True)).to_be_visible()
    phone.wait_for_load_state("networkidle")
    assert watch.problems() == []
    _assert_fits(phone)

    # Accept the pair: its question is a phrasing of the entry now, and the share it gained is shown.
    pair.get_by_role("button", name=f"采纳：{CLARIFIED}").click()
    flash = staff.get_by_role("status")
    expect(flash).to_contain_text("已采纳")
    # Of the five questions asked, the picked one was answered; now the clarified one is too.
    expect(flash).to_contain_text("已回答比例（按现有知识重放本期未答问题估算）：20.0% → 40.0%")
    expect(staff.get_by_text("本期没有待审核的建议问法。")).to_be_visible()
    effect = staff.get_by_role("region", name="采纳后的效果").get_by_role("row").filter(has_text=CLARIFIED)
    expect(effect).to_contain_text(entry_question)
    expect(effect).to_contain_text("20.0% → 40.0%（共 5 个提问）")
    expect(staff.get_by_role("article", name=CLARIFIED, exact=True)).to_have_count(0)  # dealt with
    _assert_clean_and_fits_a_phone(staff, "/staff/inbox after accepting")

    # Dismiss the canteen: both wordings leave the inbox.
    canteen.get_by_role("button", name=f"忽略：{CANTEEN}").click()
    expect(staff.get_by_role("status")).to_contain_text("已忽略 2 个问题")
    expect(canteen).to_have_count(0)
    expect(staff.get_by_text("本期没有未能答好的问题。")).to_be_visible()

    # Back in the chat, the citizen's own words are answered by the entry they picked.
    again = ask(citizen, CLARIFIED)
    expect(again).to_have_attribute("data-status", "answered")
    expect(again).to_have_attribute("data-entry-id", entry_id)
