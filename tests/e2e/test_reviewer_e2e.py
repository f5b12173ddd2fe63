"""The reviewers' desk in a real browser, at a desktop's width (1,280 px) and a phone's (390 px).

Three citizens ask the same question and a fourth another; a curator keeps a canned reply
(常用答复). The reviewer finds the three as one row of the queue with its count, opens it
(question and conversation on the left, the actions on the right on a desk screen; one
column on a phone), picks the canned reply into the reply box, edits it and answers all
three at once. Every page is checked with axe-core (no serious or critical violations), for
sideways scrolling, and kept as a screenshot under test-artifacts/.
"""
from __future__ import annotations

import json
import urllib.request
from typing import Iterator

import pytest

from .conftest import running_server
from .helpers import ARTIFACTS, LiveServer, blocking, describe, login, run_axe

pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
from playwright.sync_api import expect  # noqa: E402

QUESTION = "廉租房轮候一般要排多久？"
OTHER = "单位食堂的菜谱能不能公开？"
CANNED_TITLE = "转交住房保障部门"
CANNED_BODY = "您好，廉租房的轮候时间由各地住房保障部门规定，请向当地住房保障部门咨询。"
SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    """A server of its own: the test answers tickets, which the shared server's tests must not see."""
    with running_server(tmp_path_factory.mktemp("reviewer-e2e"), (("rev", "reviewer"), ("cur", "curator"))) as started:
        yield started


def _escalate(server: LiveServer, question: str, session: str) -> str:
    request = urllib.request.Request(server("/api/ask"), method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"question": question, "session": session,
                                                      "escalate": True}).encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "escalated", body
    return str(body["ticket"]["code"])


def _check(page, width: int, name: str) -> None:  # type: ignore[no-untyped-def]
    """No sideways scrolling, no serious axe violation; keep a screenshot."""
    page.evaluate("() => document.fonts.ready")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width, name
    found = blocking(run_axe(page))
    assert not found, f"axe on {name}:\n{describe(found)}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"reviewer-{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def tickets(server: LiveServer) -> dict[str, list[str]]:
    return {"same": [_escalate(server, QUESTION, f"e2e-same-{i}") for i in range(3)],
            "other": [_escalate(server, OTHER, "e2e-other")]}


def _shown(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def test_a_curator_keeps_a_canned_reply(server, new_context, tickets) -> None:  # type: ignore[no-untyped-def]
    page = new_context(viewport=SIZES["desktop"], bypass_csp=True).new_page()
    login(page, server, "cur")
    page.get_by_role("link", name="常用答复", exact=True).first.click()
    page.get_by_label("标题").fill(CANNED_TITLE)
    page.get_by_label("内容").fill(CANNED_BODY)
    page.get_by_role("button", name="添加", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("已添加常用答复")
    expect(page.get_by_role("table")).to_contain_text(CANNED_TITLE)
    _check(page, SIZES["desktop"]["width"], "canned-desktop")


@pytest.mark.parametrize("size", list(SIZES))
def test_the_queue_is_one_row_per_question(server, new_context, tickets, size: str) -> None:  # type: ignore[no-untyped-def]
    viewport = SIZES[size]
    page = new_context(viewport=viewport, bypass_csp=True).new_page()
    login(page, server, "rev")
    page.goto(server("/staff/tickets"))
    rows = page.locator(".ticket-table tbody tr")
    expect(rows).to_have_count(2)
    merged = rows.filter(has_text=QUESTION)
    expect(merged).to_contain_text("3 人提问")
    expect(merged.locator(".ticket-code")).to_have_text(_shown(tickets["same"][0]))
    question = merged.locator(".ticket-question")
    if size == "desktop":  # a wide question column: the question on one line, not three characters a line
        assert question.evaluate("n => n.getBoundingClientRect().width") > 300
        line = question.evaluate("n => parseFloat(getComputedStyle(n).lineHeight)")
        assert question.evaluate("n => n.getBoundingClientRect().height") < 2.5 * line + 12
        assert page.locator("main").evaluate("n => n.getBoundingClientRect().width") > 1100  # not capped at 700
    _check(page, viewport["width"], f"queue-{size}")
    page.goto(server("/staff/tickets?merged=0"))
    expect(page.locator(".ticket-table tbody tr")).to_have_count(4)


@pytest.mark.parametrize("size", list(SIZES))
def test_the_ticket_page_beside_its_actions(server, new_context, tickets, size: str) -> None:  # type: ignore[no-untyped-def]
    viewport = SIZES[size]
    page = new_context(viewport=viewport, bypass_csp=True).new_page()
    login(page, server, "rev")
    page.goto(server("/staff/tickets?status=all&merged=0"))
    page.get_by_role("link", name=_shown(tickets["other"][0])).click()
    main = page.locator(".ticket-main").evaluate("n => n.getBoundingClientRect().toJSON()")
    side = page.locator(".ticket-side").evaluate("n => n.getBoundingClientRect().toJSON()")
    if size == "desktop":  # side by side, the question at the top of the left column
        assert side["left"] >= main["right"] and side["top"] == pytest.approx(main["top"], abs=2), (main, side)
    else:  # one column: the question first, then the actions
        assert side["top"] >= main["bottom"] - 1 and side["left"] == pytest.approx(main["left"], abs=2), (main, side)
    expect(page.locator(".ticket-question-full")).to_have_text(OTHER)
    _check(page, viewport["width"], f"ticket-{size}")


def test_a_canned_reply_answers_every_asker(server, new_context, tickets) -> None:  # type: ignore[no-untyped-def]
    width = SIZES["desktop"]["width"]
    page = new_context(viewport=SIZES["desktop"], bypass_csp=True).new_page()
    login(page, server, "rev")
    page.goto(server("/staff/tickets"))
    page.locator(".ticket-table tbody tr").filter(has_text=QUESTION).locator(".ticket-code").click()
    box = page.locator("#reply")
    box.fill("（草稿）")
    page.get_by_label("选用常用答复").select_option(label=CANNED_TITLE)
    page.get_by_role("button", name="填入答复框").click()
    # The script adds it after what was typed, without loading the page again.
    expect(box).to_have_value("（草稿）\n" + CANNED_BODY)
    expect(page.locator("#canned-status")).to_contain_text("已将常用答复添加到答复框已有内容之后")
    assert "canned=" not in page.url
    box.fill(CANNED_BODY)
    group = page.get_by_label("一并答复相同问题的其他 2 张待处理工单", exact=False)
    expect(group).to_be_checked()
    _check(page, width, "canned-picked-desktop")
    box.fill(CANNED_BODY + "如有疑问，可拨打当地12345热线。")
    page.get_by_role("button", name="提交答复").click()
    expect(page.locator("div.notice[role=status]")).to_contain_text("一并答复了 2 张相同问题的工单")
    _check(page, width, "merged-answered-desktop")
    page.goto(server("/staff/tickets"))
    expect(page.locator(".ticket-table tbody tr")).to_have_count(1)  # only the other question waits
    page.set_viewport_size(SIZES["phone"])
    page.goto(server("/staff/tickets?status=answered"))
    expect(page.locator(".ticket-table tbody tr")).to_have_count(3)
    _check(page, SIZES["phone"]["width"], "merged-answered-phone")


def test_without_a_script_the_canned_reply_comes_from_the_server(server, new_context, tickets) -> None:  # type: ignore[no-untyped-def]
    page = new_context(viewport=SIZES["phone"], java_script_enabled=False).new_page()
    login(page, server, "rev")
    page.goto(server("/staff/tickets?status=all&merged=0"))
    page.get_by_role("link", name=_shown(tickets["other"][0])).click()
    page.get_by_label("选用常用答复").select_option(label=CANNED_TITLE)
    page.get_by_role("button", name="填入答复框").click()
    expect(page.locator("#reply")).to_have_value(CANNED_BODY)
    assert "canned=" in page.url
