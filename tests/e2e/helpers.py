"""What the browser tests share: signing in, asking in the chat, running axe-core."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")


def _axe_js() -> Path:
    """axe-core's script: the copy the axe-playwright-python package ships (a test dependency),
    or one installed from npm into .ci/node."""
    spec = importlib.util.find_spec("axe_playwright_python")
    if spec is not None and spec.origin:
        shipped = Path(spec.origin).parent / "axe.min.js"
        if shipped.exists():
            return shipped
    return ROOT / ".ci" / "node" / "node_modules" / "axe-core" / "axe.min.js"


AXE_JS = _axe_js()
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "e2e-Passw0rd-42"
TIMEOUT_MS = 10_000


@dataclass
class LiveServer:
    """The running server: its base URL and database file."""

    url: str
    db: Path

    def __call__(self, path: str = "/") -> str:
        return self.url + path


def login(page, server: LiveServer, username: str) -> None:  # type: ignore[no-untyped-def]
    """Sign in through the real login form."""
    page.goto(server("/staff/login"))
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(lambda url: "/staff/login" not in url)


def ask(page, question: str, typed: bool = False):  # type: ignore[no-untyped-def]
    """Put a question into the chat (key by key if ``typed``), press Enter, and return the new bot
    message once it has arrived."""
    # The chat ignores a question sent while it is still waiting for the previous answer.
    page.wait_for_function("() => document.getElementById('chat-form').getAttribute('aria-busy') !== 'true'")
    before = page.locator("#chat-log .msg.bot:not(.welcome)").count()
    box = page.locator("#question")
    if typed:
        box.click()
        box.press_sequentially(question)
    else:
        box.fill(question)
    box.press("Enter")
    return last_answer(page, before)


def click_for_answer(page, locator):  # type: ignore[no-untyped-def]
    """Click a suggestion (or example) button and return the answer it brings."""
    before = page.locator("#chat-log .msg.bot:not(.welcome)").count()
    locator.click()
    return last_answer(page, before)


def last_answer(page, before: int):  # type: ignore[no-untyped-def]
    """Wait until there are more than ``before`` bot answers in the log; the one after those."""
    answers = page.locator("#chat-log .msg.bot:not(.welcome)")
    page.wait_for_function(
        "n => document.querySelectorAll('#chat-log .msg.bot:not(.welcome)').length > n", arg=before)
    return answers.nth(before)


# What a page must not have: axe-core's two highest impacts.
BLOCKING = ("serious", "critical")
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa", "best-practice"]


def run_axe(page) -> list[dict]:  # type: ignore[no-untyped-def]
    """axe-core's violations on the page as it is now: the WCAG 2.0, 2.1 and 2.2 A and AA rules
    (2.2's target size included) and axe's best practices.

    The page must come from a context made with ``bypass_csp=True``: ``add_script_tag(path=)`` inlines
    the file, which the site's CSP (script-src 'self') rightly refuses."""
    assert AXE_JS.exists(), f"axe-core is not installed: pip install -e '.[test]' ({AXE_JS})"
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("""async (TAGS) => {
        const r = await axe.run(document, {resultTypes: ['violations'], runOnly: {type: 'tag', values: TAGS}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary}))}));
    }""", AXE_TAGS)
    return list(result)


def blocking(violations: list[dict]) -> list[dict]:
    """The serious and critical ones."""
    return [v for v in violations if v["impact"] in BLOCKING]


def describe(violations: list[dict]) -> str:
    """A readable list for an assertion message."""
    lines = []
    for v in violations:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']}")
        for node in v["nodes"][:5]:
            lines.append(f"    {node['target']}: {(node['summary'] or '').splitlines()[-1].strip()}")
    return "\n".join(lines)
