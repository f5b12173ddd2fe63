"""The staff analytics page in a real browser: its charts and tables for a logged week, a
refused period, the CSV link; axe-core and the CSP on each state."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from service.analytics import BEIJING, beijing_today
from service.storage import connect
from service.tickets import _ASK_INSERT

from .helpers import ARTIFACTS, blocking, describe, login, run_axe
from .test_accessibility import CSPWatch

pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
from playwright.sync_api import expect  # noqa: E402


@pytest.fixture(scope="module")
def logged_week(live_server):  # type: ignore[no-untyped-def]
    """Seven days of questions (4 a day, one escalated), feedback on some, one replied ticket."""
    db = connect(live_server.db)
    try:
        entry = db.execute("select id from entries where status = 'published' order by id limit 1").fetchone()[0]
        now = datetime.now(timezone.utc).replace(microsecond=0)
        # A few minutes back, but never before Beijing's midnight: just after it, "five
        # minutes ago" is yesterday, and the page's row for today would lack our four.
        midnight = datetime.combine(beijing_today(now), datetime.min.time(), BEIJING)
        back = min(timedelta(minutes=5), now - midnight)
        tag = secrets.token_hex(4)
        rows, votes = [], []
        for day in range(7):
            at = now - timedelta(days=day) - back
            for k, (status, kind, entry_id) in enumerate([("answered", "faq", entry), ("answered", "faq", entry),
                                                          ("clarify", None, None), ("escalated", "handoff", None)]):
                token = f"e2e-{tag}-{day}-{k}"
                rows.append((at.isoformat(), "e2e", "问题", "问题", status, kind, entry_id, None, 0.9, 15.0, None, token))
                if entry_id:
                    votes.append((token, int(k == 0), at.isoformat()))
        db.conn.executemany(_ASK_INSERT, rows)
        db.conn.executemany("insert into feedback (ask_token, helpful, created) values (?, ?, ?)", votes)
        created = (now - timedelta(days=2)).isoformat()
        db["tickets"].insert({"code": f"GKE2E{tag.upper()[:5]}", "question": "统计分析端到端测试工单",
                              "status": "answered", "created": created, "updated": created,
                              "replied_at": (now - timedelta(hours=3)).isoformat(), "kind": "inquiry"})
    finally:
        db.close()
    return len(rows)


def _assert_clean(page, where: str) -> None:  # type: ignore[no-untyped-def]
    found = blocking(run_axe(page))
    assert not found, f"axe on {where}:\n{describe(found)}"


@pytest.mark.parametrize("user", ["rev", "cur"])
def test_the_analytics_page_has_charts_tables_and_no_serious_axe_violations(live_server, new_context, logged_week,
                                                                            user: str) -> None:
    # axe is injected inline, so this context bypasses the CSP; the CSP is checked below.
    page = new_context(bypass_csp=True, viewport={"width": 1280, "height": 900}).new_page()
    login(page, live_server, user)
    page.get_by_role("navigation", name="工作台导航").get_by_role("link", name="统计分析").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("统计分析")
    expect(page.get_by_text("北京时间（UTC+8）")).to_be_visible()
    expect(page.get_by_role("img", name="每日提问数，按处理结果分段")).to_be_visible()
    expect(page.get_by_role("img", name="处理结果占比")).to_be_visible()
    expect(page.get_by_role("img", name="提问最多的条目")).to_be_visible()
    expect(page.get_by_role("img", name="答复最慢的工单（小时）")).to_be_visible()
    today = beijing_today().isoformat()
    per_day = page.get_by_role("table", name="每日提问数（北京时间）")
    row = per_day.get_by_role("row", name=today)
    expect(row).to_be_visible()
    # At least our four today (other tests on the shared server ask too): the count, not a digit.
    assert int(row.get_by_role("cell").first.inner_text().replace(",", "")) >= 4
    total = page.locator(".figures dd").first
    assert int(total.inner_text().replace(",", "")) >= logged_week
    expect(page.get_by_role("link", name="下载 CSV")).to_have_attribute("href", f"/staff/analytics.csv?from="
                                                                        f"{page.get_by_label('开始日期').input_value()}"
                                                                        f"&to={today}")
    _assert_clean(page, f"/staff/analytics as {user}")

    # A period the page refuses: the reason is announced and tied to the fields.
    page.get_by_label("开始日期").fill("2026-01-02")
    page.get_by_label("结束日期").fill("2026-01-01")
    page.get_by_role("button", name="查看").click()
    expect(page.get_by_role("alert")).to_have_text("开始日期不能晚于结束日期。")
    expect(page.get_by_label("开始日期")).to_have_attribute("aria-invalid", "true")
    _assert_clean(page, f"/staff/analytics with a refused period as {user}")


def test_the_analytics_page_keeps_to_the_csp(live_server, new_context, logged_week) -> None:
    page = new_context(viewport={"width": 1280, "height": 900}).new_page()
    watch = CSPWatch(page)
    login(page, live_server, "rev")
    response = page.goto(live_server("/staff/analytics"))
    assert response is not None and response.status == 200
    page.wait_for_load_state("networkidle")
    assert watch.problems() == []
    # The charts are coloured by the stylesheet, which the CSP let through.
    fill = page.locator("svg rect.s-answered").first.evaluate("el => getComputedStyle(el).fill")
    assert fill == "rgb(27, 110, 60)"
    with page.expect_download() as download:
        page.get_by_role("link", name="下载 CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "staff-analytics.png"), full_page=True)
    assert "每日提问（北京时间）" in text and "答复最慢的工单" in text
