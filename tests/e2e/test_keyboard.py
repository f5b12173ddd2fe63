"""The chat with the keyboard alone, and what a screen reader is told."""
from __future__ import annotations

import pytest

from .helpers import last_answer

pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
from playwright.sync_api import expect  # noqa: E402

ACTIVE = "() => { const a = document.activeElement; return a ? (a.id || a.className || a.tagName) : null; }"


def _tab_to(page, selector: str, key: str = "Tab", limit: int = 25) -> None:  # type: ignore[no-untyped-def]
    """Press ``key`` until the focused element matches ``selector``."""
    for _ in range(limit):
        page.keyboard.press(key)
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{limit} × {key} never reached {selector}; focus is on {page.evaluate(ACTIVE)}")


def _focus_ring_visible(page) -> bool:  # type: ignore[no-untyped-def]
    return page.evaluate("""() => {
        const s = getComputedStyle(document.activeElement);
        return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
    }""")


def _bot_count(page) -> int:  # type: ignore[no-untyped-def]
    return page.locator("#chat-log .msg.bot:not(.welcome)").count()


def test_ask_and_choose_a_suggestion_with_the_keyboard_only(live_server, page) -> None:
    page.goto(live_server("/"))
    log = page.locator("#chat-log")
    # The answers are announced: the log is a polite live region.
    expect(log).to_have_attribute("role", "log")
    expect(log).to_have_attribute("aria-live", "polite")

    # The first Tab reaches the skip link; Enter on it puts the cursor in the question box.
    page.keyboard.press("Tab")
    skip = page.locator("a.skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    assert _focus_ring_visible(page)
    page.keyboard.press("Enter")
    expect(page.locator("#question")).to_be_focused()

    before = _bot_count(page)
    page.keyboard.type("答复期限是多久")
    page.keyboard.press("Enter")
    answer = last_answer(page, before)
    expect(answer).to_have_attribute("data-status", "answered")
    # The new message lands inside the live region, and focus returns to the question box.
    assert answer.evaluate("(n) => document.getElementById('chat-log').contains(n)")
    expect(log.locator(".msg.user").last).to_contain_text("答复期限是多久")
    expect(page.locator("#question")).to_be_focused()

    before = _bot_count(page)
    page.keyboard.type("申请")
    page.keyboard.press("Enter")
    clarify = last_answer(page, before)
    expect(clarify).to_have_attribute("data-status", "clarify")
    expect(page.locator("#question")).to_be_focused()
    # The suggestions are above the question box: Shift+Tab goes back to them, reaching
    # the last one first.
    _tab_to(page, "#chat-log .msg.bot:last-child button.suggestion", key="Shift+Tab")
    suggestion = clarify.locator("button.suggestion").last
    expect(suggestion).to_be_focused()
    assert _focus_ring_visible(page)
    text = suggestion.inner_text()
    before = _bot_count(page)
    page.keyboard.press("Enter")
    chosen = last_answer(page, before)
    expect(chosen).to_have_attribute("data-status", "answered")
    assert chosen.evaluate("(n) => document.getElementById('chat-log').contains(n)")
    expect(log.locator(".msg.user").last).to_contain_text(text)
    expect(page.locator("#question")).to_be_focused()


def test_large_text_mode_by_keyboard_is_remembered(live_server, page) -> None:
    page.goto(live_server("/"))
    html = page.locator("html")
    toggle = page.locator("#font-toggle")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(html).not_to_contain_class("large-text")
    size = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('.welcome-lead')).fontSize)")

    _tab_to(page, "#font-toggle")
    assert _focus_ring_visible(page)
    page.keyboard.press("Enter")
    expect(html).to_contain_class("large-text")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    larger = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('.welcome-lead')).fontSize)")
    assert larger > size
    assert page.evaluate("() => localStorage.getItem('zwgk.largeText')") == "1"

    # Remembered after a reload, and on the other pages of the site.
    page.reload()
    expect(html).to_contain_class("large-text")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    page.goto(live_server("/reports"))
    expect(html).to_contain_class("large-text")
    expect(page.locator("#font-toggle")).to_have_attribute("aria-pressed", "true")

    # Space turns it off again, and that is remembered too.
    _tab_to(page, "#font-toggle")
    page.keyboard.press("Space")
    expect(html).not_to_contain_class("large-text")
    expect(page.locator("#font-toggle")).to_have_attribute("aria-pressed", "false")
    page.reload()
    expect(html).not_to_contain_class("large-text")
    assert page.evaluate("() => localStorage.getItem('zwgk.largeText')") == "0"
