"""The conversation kept on the citizen's device, in a real browser: a reload shows the questions,
the replies and the ticket slip again (grouped code, query password) without asking the server,
with the same session; 清除本机对话记录 erases all of it; the slip prints on its own and saves as
text; what a citizen typed stays text; and axe-core finds nothing serious on a restored page."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .helpers import ask, blocking, click_for_answer, describe, run_axe
from .test_accessibility import CSPWatch

pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
from playwright.sync_api import expect  # noqa: E402

CHAT_KEY = "zwgk.chat.v1"
ANSWERABLE = "答复期限是多久"
UNANSWERABLE = "贵单位食堂今年的菜谱能公开吗？"
GROUPED = re.compile(r"^GK[0-9A-Z]{2}-[0-9A-Z]{4}-[0-9A-Z]{4}$")
TICKET = "已为您登记，转人工办理"
MARKUP = "<img src=x onerror=alert(1)>"

STORAGE_DUMP = """() => {
  const dump = s => Object.fromEntries(Array.from({length: s.length}, (_, i) => [s.key(i), s.getItem(s.key(i))]));
  return {local: dump(localStorage), session: dump(sessionStorage)};
}"""


def _citizen(new_context, viewport=None):  # type: ignore[no-untyped-def]
    """A page in a fresh browser (axe needs bypass_csp), with every /api/ask body recorded."""
    page = new_context(bypass_csp=True, viewport=viewport or {"width": 1280, "height": 900}).new_page()
    asked: list[dict] = []
    page.on("request", lambda r: asked.append(r.post_data_json) if r.url.endswith("/api/ask") else None)
    page.asked = asked
    return page


def _kept(page) -> dict | None:  # type: ignore[no-untyped-def]
    raw = page.evaluate("key => localStorage.getItem(key)", CHAT_KEY)
    return json.loads(raw) if raw else None


def _assert_clean(page, where: str) -> None:  # type: ignore[no-untyped-def]
    found = blocking(run_axe(page))
    assert not found, f"axe on {where}:\n{describe(found)}"


def _ticket(page):  # type: ignore[no-untyped-def]
    """Ask the unanswerable question; its answer, the slip, the grouped code and the password."""
    answer = ask(page, UNANSWERABLE)
    expect(answer).to_have_attribute("data-status", "escalated")
    slip = answer.get_by_role("group", name=TICKET)
    expect(slip.locator(".ticket-code")).to_have_text(GROUPED)
    expect(slip.locator(".ticket-password")).to_have_text(re.compile(r"^\d{6}$"))
    return answer, slip, slip.locator(".ticket-code").inner_text(), slip.locator(".ticket-password").inner_text()


def test_a_reload_keeps_the_conversation_the_ticket_slip_and_the_session(live_server, new_context) -> None:
    page = _citizen(new_context)
    page.goto(live_server("/"))
    expect(page.locator("#chat-device")).to_contain_text("只保存在本机")
    answered = ask(page, ANSWERABLE)
    expect(answered).to_have_attribute("data-status", "answered")
    answered.get_by_role("button", name="有用").click()
    expect(answered.locator(".feedback-done")).to_have_text("感谢您的反馈！")
    _, slip, code, password = _ticket(page)
    for fact in ("工单编号", "查询密码", "登记时间", "您的问题"):
        expect(slip.locator("dt", has_text=fact)).to_have_count(1)
    expect(slip.locator(".slip-question")).to_have_text(UNANSWERABLE)
    expect(slip.get_by_role("link", name="办理查询")).to_have_attribute("href", "/tickets")
    session = page.asked[0]["session"]
    assert [body["session"] for body in page.asked] == [session, session]

    kept = _kept(page)
    assert kept["v"] == 1 and kept["session"] == session
    assert [e["q"] for e in kept["exchanges"]] == [ANSWERABLE, UNANSWERABLE]
    assert kept["exchanges"][1]["reply"]["ticket"] == {"code": code.replace("-", ""), "password": password}

    page.reload()
    log = page.locator("#chat-log")
    expect(log.locator(".msg.user .text")).to_have_text([ANSWERABLE, UNANSWERABLE])
    replies = log.locator(".msg.bot:not(.welcome)")
    expect(replies).to_have_count(2)
    expect(replies.nth(0)).to_have_attribute("data-status", "answered")
    expect(replies.nth(0).locator(".text")).to_contain_text("20个工作日")
    expect(replies.nth(0).locator(".source")).to_contain_text("第三十三条")
    # The feedback given before the reload is remembered, not offered again.
    expect(replies.nth(0).locator(".feedback-done")).to_have_text("感谢您的反馈！")
    expect(replies.nth(0).get_by_role("button", name="有用")).to_have_count(0)
    slip = replies.nth(1).get_by_role("group", name=TICKET)
    expect(slip.locator(".ticket-code")).to_have_text(code)
    expect(slip.locator(".ticket-password")).to_have_text(password)
    expect(slip.locator(".slip-question")).to_have_text(UNANSWERABLE)
    expect(slip.get_by_role("button", name="打印")).to_be_visible()
    expect(slip.get_by_role("button", name="保存为文本")).to_be_visible()
    assert len(page.asked) == 2  # drawn from the device, not asked again
    _assert_clean(page, "/ with a restored conversation and its ticket slip")

    # The same conversation goes on: the next question carries the same session.
    ask(page, "申请要收费吗")
    assert page.asked[-1]["session"] == session
    expect(log.locator(".msg.user")).to_have_count(3)

    # The grouped code, as shown, opens the ticket on the lookup page.
    page.goto(live_server("/tickets"))
    page.get_by_label("工单编号").fill(code)
    page.get_by_label("查询密码").fill(password)
    page.get_by_role("button", name="查询").click()
    expect(page.locator(".lookup-result .ticket-code")).to_have_text(code)
    expect(page.locator(".lookup-result .lookup-question")).to_have_text(UNANSWERABLE)


def test_erasing_leaves_nothing_on_the_device(live_server, new_context) -> None:
    # Tall enough that nothing scrolls: the confirmation is at the top of the chat, and in a
    # short window the sticky composer would cover whichever button sits at the bottom.
    page = _citizen(new_context, viewport={"width": 1280, "height": 2000})
    page.goto(live_server("/"))
    ask(page, ANSWERABLE)
    _, _, code, password = _ticket(page)
    first_session = page.asked[0]["session"]
    erase = page.get_by_role("button", name="清除本机对话记录")
    expect(erase).to_have_attribute("aria-expanded", "false")

    erase.click()  # it asks first, and says why and what goes
    confirm = page.locator("#erase-confirm")
    expect(erase).to_have_attribute("aria-expanded", "true")
    expect(confirm).to_contain_text("公用电脑")
    expect(confirm).to_contain_text("工单编号、查询密码")
    _assert_clean(page, "/ with the erase confirmation open")
    confirm.get_by_role("button", name="取消").click()
    expect(confirm).to_be_hidden()
    expect(page.locator("#chat-log .msg.user")).to_have_count(2)

    erase.click()
    confirm.get_by_role("button", name="确认清除").click()
    expect(page.locator("#chat-log .msg:not(.welcome)")).to_have_count(0)
    expect(page.locator("#chat-log .welcome")).to_be_visible()
    expect(page.locator("#sr-status")).to_have_text("本机对话记录已清除。")

    def nothing_left() -> None:
        stored = json.dumps(page.evaluate(STORAGE_DUMP), ensure_ascii=False)
        assert CHAT_KEY not in stored and "zwgk.session" not in stored
        for secret in (code, code.replace("-", ""), password, first_session, UNANSWERABLE):
            assert secret not in stored

    nothing_left()
    page.reload()
    expect(page.locator("#chat-log .msg:not(.welcome)")).to_have_count(0)
    nothing_left()
    ask(page, ANSWERABLE)  # a new conversation, under a new session
    assert page.asked[-1]["session"] != first_session


def test_erasing_in_one_tab_clears_the_others(live_server, new_context) -> None:
    context = new_context(viewport={"width": 1280, "height": 900})
    first, second = context.new_page(), context.new_page()
    first.goto(live_server("/"))
    ask(first, ANSWERABLE)
    second.goto(live_server("/"))
    expect(second.locator("#chat-log .msg.user .text")).to_have_text([ANSWERABLE])
    second.get_by_role("button", name="清除本机对话记录").click()
    second.get_by_role("button", name="确认清除").click()
    expect(first.locator("#chat-log .msg:not(.welcome)")).to_have_count(0)


def test_what_a_citizen_typed_is_shown_as_text_after_a_reload(live_server, new_context) -> None:
    page = _citizen(new_context)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(live_server("/"))
    ask(page, MARKUP)
    page.reload()
    expect(page.locator("#chat-log .msg.user .text")).to_have_text([MARKUP])
    expect(page.locator("#chat-log img")).to_have_count(0)
    page.wait_for_load_state("networkidle")
    assert dialogs == []


def test_unreadable_or_refused_storage_leaves_the_chat_working(live_server, new_context) -> None:
    page = new_context(viewport={"width": 1280, "height": 900}).new_page()
    watch = CSPWatch(page)
    page.goto(live_server("/"))
    page.evaluate("key => localStorage.setItem(key, '{not json')", CHAT_KEY)
    page.reload()
    expect(page.locator("#chat-log .msg:not(.welcome)")).to_have_count(0)
    expect(ask(page, ANSWERABLE)).to_have_attribute("data-status", "answered")
    assert _kept(page)["exchanges"][0]["q"] == ANSWERABLE  # the corrupt record was replaced

    # Storage switched off (a private window, a locked-down kiosk): no errors, nothing kept.
    private = new_context(viewport={"width": 1280, "height": 900}).new_page()
    private.add_init_script("""Object.defineProperty(window, 'localStorage', {get() { throw new DOMException('denied'); }});
Object.defineProperty(window, 'sessionStorage', {get() { throw new DOMException('denied'); }});""")
    private_watch = CSPWatch(private)
    private.goto(live_server("/"))
    expect(private.locator("#chat-device")).to_be_hidden()  # nothing is kept, so nothing to erase
    expect(ask(private, ANSWERABLE)).to_have_attribute("data-status", "answered")
    _ticket(private)
    private.reload()
    expect(private.locator("#chat-log .msg:not(.welcome)")).to_have_count(0)
    assert watch.problems() == [] and private_watch.problems() == []


def test_the_slip_saves_as_text_and_prints_alone(live_server, new_context) -> None:
    page = _citizen(new_context)
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url + " " + (r.post_data or "")))
    page.goto(live_server("/"))
    _, slip, code, password = _ticket(page)

    with page.expect_download() as saved:
        slip.get_by_role("button", name="保存为文本").click()
    download = saved.value
    assert download.suggested_filename == f"工单凭条-{code}.txt"
    text = Path(download.path()).read_text(encoding="utf-8")
    assert text.startswith("\ufeff")
    for line in (f"工单编号：{code}", f"查询密码：{password}", f"您的问题：{UNANSWERABLE}", live_server("/tickets")):
        assert line in text

    page.evaluate("() => { window.print = () => { window.printed = (window.printed || 0) + 1; }; }")
    slip.get_by_role("button", name="打印").click()
    assert page.evaluate("() => window.printed") == 1
    page.emulate_media(media="print")
    sheet = page.locator("#print-slip")
    expect(sheet).to_be_visible()
    expect(sheet).to_contain_text(code)
    expect(sheet).to_contain_text(password)
    expect(sheet).to_contain_text(live_server("/tickets"))
    for hidden in ("#chat-log", ".site-header", "#chat-form", "#chat-device"):
        expect(page.locator(hidden)).to_be_hidden()
    page.emulate_media(media="screen")
    expect(sheet).to_be_hidden()
    expect(page.locator("#chat-log")).to_be_visible()

    # The query password went to no URL and to no server.
    assert not [u for u in urls if password in u]


def test_a_clarify_suggestion_sends_its_pick_also_after_a_reload(live_server, new_context) -> None:
    page = _citizen(new_context)
    page.goto(live_server("/"))
    with page.expect_response(lambda r: r.url.endswith("/api/ask")) as replied:
        clarify = ask(page, "申请")
    expect(clarify).to_have_attribute("data-status", "clarify")
    suggestions = replied.value.json()["suggestions"]
    assert suggestions and all(s.get("pick") for s in suggestions)
    assert "pick" not in page.asked[0]

    choice = clarify.get_by_role("group", name="您是不是想问").get_by_role("button").first
    expect(click_for_answer(page, choice)).to_have_attribute("data-status", "answered")
    assert page.asked[-1] == {"question": suggestions[0]["question"], "session": page.asked[0]["session"],
                              "pick": suggestions[0]["pick"]}

    page.reload()
    restored = page.locator("#chat-log .msg.bot[data-status='clarify']")
    choice = restored.get_by_role("group", name="您是不是想问").get_by_role("button").first
    expect(click_for_answer(page, choice)).to_have_attribute("data-status", "answered")
    assert page.asked[-1]["pick"] == suggestions[0]["pick"]


def test_a_repeated_question_gets_its_ticket_back_with_the_password_kept_here(live_server, new_context) -> None:
    page = _citizen(new_context)
    page.goto(live_server("/"))
    _, _, code, password = _ticket(page)
    again = ask(page, UNANSWERABLE)  # the same session, the same day: the same ticket, no new password
    slip = again.get_by_role("group", name=TICKET)
    expect(slip.locator(".ticket-code")).to_have_text(code)
    assert "password" not in _kept(page)["exchanges"][1]["reply"]["ticket"]
    expect(slip.locator(".ticket-password")).to_have_text(password)  # from the first slip, on this device
    page.reload()
    expect(page.locator("#chat-log .ticket .ticket-password")).to_have_text([password, password])


def test_contact_details_once_sent_are_not_asked_for_again_after_a_reload(live_server, new_context) -> None:
    page = _citizen(new_context)
    page.goto(live_server("/"))
    _, slip, _, _ = _ticket(page)
    slip.locator("details.ticket-contact summary").click()
    slip.get_by_label("手机号码或固定电话").fill("13800000000")
    slip.get_by_role("button", name="提交联系方式").click()
    done = slip.locator(".contact-done")
    expect(done).to_be_visible()
    said = done.inner_text()
    page.reload()
    slip = page.get_by_role("group", name=TICKET)
    slip.locator("details.ticket-contact summary").click()
    expect(slip.locator(".contact-done")).to_have_text(said)
    expect(slip.get_by_role("button", name="提交联系方式")).to_have_count(0)
    assert "13800000000" not in json.dumps(page.evaluate(STORAGE_DUMP))  # the number itself is not kept


def test_the_device_keeps_the_question_as_stored_with_personal_numbers_masked(live_server, new_context) -> None:
    page = _citizen(new_context)
    page.goto(live_server("/"))
    ask(page, "我的手机13812345678，申请政府信息公开要收费吗")
    kept = json.dumps(_kept(page), ensure_ascii=False)
    assert "13812345678" not in kept and "138****5678" in kept
    page.reload()
    expect(page.locator("#chat-log .msg.user .text")).to_have_text(["我的手机138****5678，申请政府信息公开要收费吗"])


def test_an_answer_arriving_in_one_tab_keeps_the_ticket_another_tab_got_meanwhile(live_server, new_context) -> None:
    """Tab A waits for an answer; tab B gets a ticket; A's answer must not overwrite B's slip."""
    context = new_context(viewport={"width": 1280, "height": 900})
    first, second = context.new_page(), context.new_page()
    first.goto(live_server("/"))
    second.goto(live_server("/"))
    held = []
    first.route("**/api/ask", lambda route: held.append(route))  # A's question waits here
    first.locator("#question").fill(ANSWERABLE)
    first.locator("#question").press("Enter")
    first.wait_for_function("() => document.getElementById('chat-form').getAttribute('aria-busy') === 'true'")
    for _ in range(50):
        if held:
            break
        first.wait_for_timeout(100)
    _, _, code, password = _ticket(second)
    held[0].continue_()
    expect(first.locator("#chat-log .msg.bot:not(.welcome)")).to_have_count(2)
    questions = [e["q"] for e in _kept(first)["exchanges"]]
    assert sorted(questions) == sorted([ANSWERABLE, UNANSWERABLE])
    tickets = [e["reply"]["ticket"] for e in _kept(first)["exchanges"] if e["reply"]["ticket"]]
    assert tickets == [{"code": code.replace("-", ""), "password": password}]
    expect(first.locator(".ticket-code")).to_have_text([code])  # A shows B's slip too
    expect(second.locator(".ticket-code")).to_have_text([code])


def test_a_conversation_older_than_a_week_is_not_shown_again(live_server, new_context) -> None:
    page = _citizen(new_context)
    page.goto(live_server("/"))
    page.evaluate("""([key, old, recent]) => localStorage.setItem(key, JSON.stringify({v: 1, exchanges: [
        {id: 'a', at: old, q: '八天前的问题', reply: {status: 'answered', answer: '旧答复'}},
        {id: 'b', at: recent, q: '昨天的问题', reply: {status: 'answered', answer: '新答复'}}]}))""",
                  [CHAT_KEY, "2000-01-01T00:00:00.000Z",
                   page.evaluate("() => new Date(Date.now() - 86400000).toISOString()")])
    page.reload()
    expect(page.locator("#chat-log .msg.user .text")).to_have_text(["昨天的问题"])
