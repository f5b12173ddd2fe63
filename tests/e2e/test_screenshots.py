"""Screenshots of the chat, with a conversation in it, at a phone's width and a desktop's.

Saved under test-artifacts/ (gitignored) for a person to look at; the test also checks what a
screenshot would show wrong: text wider than the screen, the newest answer under the composer."""
from __future__ import annotations

import struct

import pytest

from .helpers import ARTIFACTS, ask

pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
from playwright.sync_api import expect  # noqa: E402

SIZES = {"phone": (390, 844), "desktop": (1280, 900)}


def _png_size(path) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("name", list(SIZES))
def test_chat_screenshot(live_server, new_context, name: str) -> None:
    width, height = SIZES[name]
    page = new_context(viewport={"width": width, "height": height}, reduced_motion="reduce").new_page()
    page.goto(live_server("/"))
    ask(page, "答复期限是多久")
    expect(ask(page, "申请")).to_have_attribute("data-status", "clarify")
    last = ask(page, "2021年收到多少申请")
    expect(last.locator(".source a")).to_be_visible()
    page.evaluate("() => document.fonts.ready")

    # Nothing wider than the screen (no sideways scrolling on a phone).
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    # The newest answer was scrolled into view above the sticky composer, not under it.
    bottom = last.evaluate("n => n.getBoundingClientRect().bottom")
    composer_top = page.locator(".composer").evaluate("n => n.getBoundingClientRect().top")
    assert 0 < bottom <= composer_top, (bottom, composer_top)

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"chat-{name}.png"
    page.screenshot(path=str(shot))
    full = ARTIFACTS / f"chat-{name}-full.png"
    page.screenshot(path=str(full), full_page=True)
    assert _png_size(shot) == (width, height)
    full_width, full_height = _png_size(full)
    assert full_width == width and full_height > height
