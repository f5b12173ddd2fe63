"""The public knowledge base (/faq): categories, search with the chat's matcher, 热点问题,
stable entry pages with their source, related entries, and 您可能还想了解 in the API."""
from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone

import pytest

from service import faq, related
from service.db import get_desk
from service.knowledge import now
from service.storage import connect
from service.views.public_faq import MAX_SEARCH_CHARS, MonthCounts, first_ask_since, month_start, most_asked

FEE_KEY = "is-it-free"  # knowledge/faq.toml: 申请政府信息公开要收费吗？


def _page(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def _keys(fragment: str) -> list[str]:
    """The entry keys a piece of a page links to, in order."""
    return re.findall(r'href="/faq/([^"#?]+)"', fragment)


def _section(page: str, css_class: str) -> str:
    """The first ``<section>``, ``<nav>`` or list with that class, up to its end tag."""
    match = re.search(rf'<(section|nav|ol|ul) class="(?:[^"]*\s)?{css_class}(?:\s[^"]*)?"[^>]*>(.*?)</\1>', page, re.S)
    assert match, f"no {css_class} on the page"
    return match.group(2)


def _categories(page: str) -> dict[str, list[str]]:
    """Category heading -> the keys listed under it."""
    groups = {}
    for match in re.finditer(r'<section class="faq-group" id="[^"]+"[^>]*>\s*<h2[^>]*>(.*?)</h2>(.*?)</section>',
                             page, re.S):
        groups[html.unescape(match.group(1))] = _keys(match.group(2))
    return groups


def _published(app) -> list[dict]:  # type: ignore[no-untyped-def]
    db = connect(app.config["DATABASE"])
    return list(db.query("select id, key, question, category, source from entries where status = 'published' "
                         "order by id"))


def _results(page: str) -> list[str]:
    match = re.search(r'<ol class="faq-results[^"]*">(.*?)</ol>', page, re.S)
    return _keys(match.group(1)) if match else []


# ---------- the list and its categories ----------

def test_every_published_entry_is_listed_under_its_category(module_app) -> None:
    page = _page(module_app.test_client(), "/faq")
    expected: dict[str, list[str]] = {}
    for entry in _published(module_app):
        expected.setdefault(entry["category"], []).append(entry["key"])
    assert len(expected) >= 5 and sum(map(len, expected.values())) >= 50
    assert _categories(page) == expected
    # Each category is reachable from the list of categories at the top.
    toc = _section(page, "faq-toc")
    for name in expected:
        assert f'href="#category-{name}"' in toc and f'id="category-{name}"' in page


def test_archived_entries_leave_the_list_and_their_page(app, client) -> None:
    page = _page(client, "/faq")
    assert FEE_KEY in _categories(page)["费用"]
    db = connect(app.config["DATABASE"])
    entry_id = db.execute("select id from entries where key = ?", [FEE_KEY]).fetchone()[0]
    faq.set_status(db, None, entry_id, "archived")
    assert FEE_KEY not in sum(_categories(_page(client, "/faq")).values(), [])
    missing = _page(client, f"/faq/{FEE_KEY}", 404)
    assert "未找到该问题" in missing and "已停止公开" in missing
    assert FEE_KEY not in _results(_page(client, "/faq?q=收不收钱"))


def test_empty_search_shows_the_categories(module_app) -> None:
    client = module_app.test_client()
    for url in ("/faq?q=", "/faq?q=%20%20%20"):
        page = _page(client, url)
        assert "搜索结果" not in page and "费用" in _categories(page)


def test_the_navigation_links_to_the_knowledge_base(module_app) -> None:
    nav = re.search(r'<nav class="site-nav".*?</nav>', _page(module_app.test_client(), "/"), re.S)
    assert nav and re.search(r'<a href="/faq">常见问题</a>', nav.group(0))
    assert re.search(r'<a href="/faq" aria-current="page">常见问题</a>', _page(module_app.test_client(), "/faq"))


# ---------- search: the chat's matcher, so a citizen's words find entries ----------

@pytest.mark.parametrize(("words", "key"), [
    ("收不收钱", FEE_KEY),
    ("多久能答复", "reply-deadline"),
    ("我想让律师帮我申请", "agent-application"),
    ("统计年鉴", "yearbook-online"),
])
def test_search_finds_the_entry_for_a_citizens_words_first(module_app, words: str, key: str) -> None:
    page = _page(module_app.test_client(), f"/faq?q={words}")
    found = _results(page)
    assert found and found[0] == key, found
    assert "搜索结果" in page and f"与“{words}”相关" in page
    # The search shows results, not the whole list again.
    assert _categories(page) == {}


def test_search_for_a_topic_lists_its_entries(module_app) -> None:
    assert _results(_page(module_app.test_client(), "/faq?q=费用"))[:3] == [FEE_KEY, "fee-standards",
                                                                           "fee-notice-payment"]


def test_a_search_that_finds_nothing_says_so_and_points_to_the_chat(module_app) -> None:
    page = _page(module_app.test_client(), "/faq?q=xyzzy")
    assert _results(page) == []
    assert "没有找到与“xyzzy”相关的问答" in page and 'href="/"' in page


@pytest.mark.parametrize("text", [
    "<script>alert(1)</script>", "'; drop table entries; --", "%", "_", "\\", "😀😀", "１２３", "收不收钱" * 25,
    "a" * MAX_SEARCH_CHARS, "\u202e收费", "\ufffd", "　收费　",
])
def test_odd_search_text_is_answered_never_a_server_error(module_app, text: str) -> None:
    response = module_app.test_client().get("/faq", query_string={"q": text})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<script>alert" not in page  # shown as text, never as markup
    if "<" in text:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize(("text", "message"), [
    ("收" * (MAX_SEARCH_CHARS + 1), f"搜索内容过长，请控制在{MAX_SEARCH_CHARS}字以内。"),
    ("x" * 5000, f"搜索内容过长，请控制在{MAX_SEARCH_CHARS}字以内。"),
    ("\x00\x01", "搜索内容无法识别，请换个说法再试。"),
])
def test_search_text_too_long_or_unreadable_is_a_400_with_a_message(module_app, text: str, message: str) -> None:
    response = module_app.test_client().get("/faq", query_string={"q": text})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page and 'role="alert"' in page
    assert "费用" in _categories(page)  # the knowledge base is still there to browse


def test_searches_are_rate_limited_like_questions_but_browsing_is_not(tmp_path) -> None:
    from conftest import make_app

    app = make_app(tmp_path, RATELIMIT_ENABLED=True, RATE_LIMIT_EXEMPT_LOOPBACK=False, RATE_LIMIT_ASK="2 per minute")
    client = app.test_client()
    assert [client.get("/faq?q=收费").status_code for _ in range(3)] == [200, 200, 429]
    assert "请求过于频繁" in client.get("/faq?q=收费").get_data(as_text=True)
    assert [client.get(url).status_code for url in ("/faq", "/faq", f"/faq/{FEE_KEY}")] == [200, 200, 200]


# ---------- one entry at its stable address ----------

def test_an_entry_has_its_own_page_with_answer_and_source(module_app) -> None:
    client = module_app.test_client()
    entry = next(e for e in _published(module_app) if e["key"] == FEE_KEY)
    page = _page(client, f"/faq/{FEE_KEY}")
    assert f'<h1 id="entry-title">{entry["question"]}</h1>' in page
    assert "原则上不收费" in page
    assert entry["source"] and f"来源：</span>{html.escape(entry['source'], quote=False)}" in page
    assert 'href="/faq#category-费用"' in page
    # Every listed entry's link works.
    for key in _keys(_page(client, "/faq")):
        assert client.get(f"/faq/{key}").status_code == 200


def test_placeholders_are_filled_on_the_entry_page(module_app) -> None:
    page = _page(module_app.test_client(), "/faq/contact-desk")
    assert "{contact}" not in page and "{website}" not in page


@pytest.mark.parametrize("key", ["no-such-entry", "IS-IT-FREE", "is-it-free.", "x" * 300, "%E6%94%B6%E8%B4%B9"])
def test_an_unknown_key_is_a_404_page_in_chinese(module_app, key: str) -> None:
    page = _page(module_app.test_client(), f"/faq/{key}", 404)
    assert "未找到该问题" in page and 'href="/faq"' in page


def test_an_entry_page_lists_its_related_entries(module_app) -> None:
    page = _page(module_app.test_client(), f"/faq/{FEE_KEY}")
    shown = _keys(_section(page, "faq-related"))
    assert 1 <= len(shown) <= 3 and FEE_KEY not in shown
    assert shown[:2] == ["fee-standards", "fee-notice-payment"]  # the rest of 费用 first


# ---------- related entries ----------

def _tiny() -> related.Related:
    entries = {
        1: {"key": "free", "question": "申请要收费吗", "category": "费用"},
        2: {"key": "fee-standard", "question": "信息处理费怎么算", "category": "费用"},
        3: {"key": "fee-notice", "question": "收到缴费通知怎么办", "category": "费用"},
        4: {"key": "deadline", "question": "答复期限多久", "category": "期限"},
        5: {"key": "extend", "question": "答复期限可以延长吗", "category": "期限"},
        6: {"key": "fee-deadline", "question": "信息处理费的缴费期限", "category": "期限"},
        7: {"key": "apply", "question": "怎么申请", "category": "申请"},
    }
    words = {1: {"申请", "收费"}, 2: {"信息处理费", "计算", "申请"}, 3: {"缴费", "通知", "申请"},
             4: {"答复", "期限", "申请"}, 5: {"答复", "期限", "延长", "申请"},
             6: {"信息处理费", "缴费", "期限", "申请"}, 7: {"申请"}}
    return related.Related(entries, words)


def test_related_entries_are_of_the_same_category_first_then_by_shared_words() -> None:
    rel = _tiny()
    assert rel.of(4) == [5, 6]  # 期限: 延长 shares 答复 and 期限; 6 shares only 期限
    # 费用's others share only 申请 (in every entry, so nothing): still first, by id; then
    # another category's entry sharing the rare 信息处理费.
    assert rel.of(2) == [1, 3, 6]
    assert rel.of(7) == []  # 申请 is in every entry: it says nothing, and 申请 is alone in its category


@pytest.mark.parametrize("entry_id", range(1, 8))
def test_related_entries_never_include_the_entry_and_are_at_most_three(entry_id: int) -> None:
    rel = _tiny()
    found = rel.of(entry_id, limit=10)
    assert entry_id not in found and len(found) <= 3 and len(set(found)) == len(found)
    assert [q["id"] for q in rel.questions(entry_id)] == found
    assert rel.of(entry_id, limit=1) == found[:1]


def test_related_for_an_unknown_entry_is_empty() -> None:
    assert _tiny().of(99) == [] and _tiny().questions(99) == []


def test_related_entries_are_kept_per_knowledge_version(app, client) -> None:
    with app.app_context():
        desk = get_desk()
        first = related.for_desk(desk)
        assert related.for_desk(desk) is first
        entry_id = first.by_key[FEE_KEY]
        db = connect(app.config["DATABASE"])
        faq.set_status(db, None, first.by_key["fee-standards"], "archived")  # a new knowledge version
        newer = related.for_desk(get_desk())
    assert newer is not first
    assert "fee-standards" not in [q["key"] for q in newer.questions(entry_id)]
    assert "fee-standards" not in _keys(_section(_page(client, f"/faq/{FEE_KEY}"), "faq-related"))


@pytest.mark.parametrize("key", ["who-may-apply", "reply-deadline", FEE_KEY, "remedies-overview", "desk-scope"])
def test_every_seeded_entry_has_related_entries_of_its_category(module_app, key: str) -> None:
    with module_app.app_context():
        desk = get_desk()
        rel = related.for_desk(desk)
        entry_id = rel.by_key[key]
        found = rel.of(entry_id)
        assert len(found) == 3 and entry_id not in found
        assert desk.entries[found[0]]["category"] == desk.entries[entry_id]["category"]


# ---------- 热点问题: the month's most asked ----------

def _ask(client, question: str, times: int = 1) -> dict:  # type: ignore[no-untyped-def]
    for _ in range(times):
        body = client.post("/api/ask", json={"question": question}).get_json()
    return body


def _hot(page: str) -> list[str]:
    return _keys(_section(page, "faq-hot-list")) if "faq-hot-list" in page else []


def test_hot_questions_follow_the_answers_logged_this_month(app, client) -> None:
    assert "热点问题" not in _page(client, "/faq")  # nothing asked yet: no list, no error
    assert _ask(client, "答复期限是多久", 3)["key"] == "faq:reply-deadline"
    assert _ask(client, "收不收钱", 2)["key"] == f"faq:{FEE_KEY}"
    _ask(client, "申请", 5)  # a choice, not an answer: not counted
    _ask(client, "社保卡丢了怎么补办", 4)  # escalated: not counted
    page = _page(client, "/faq")
    assert "热点问题" in page and _hot(page) == ["reply-deadline", FEE_KEY]
    _ask(client, "收不收钱", 2)  # counted at the next visit
    assert _hot(_page(client, "/faq")) == [FEE_KEY, "reply-deadline"]


def test_hot_questions_count_this_month_only_and_published_entries_only(app, client) -> None:
    db = connect(app.config["DATABASE"])
    ids = {r["key"]: r["id"] for r in db.query("select id, key from entries")}
    last_month = (datetime.now(timezone.utc).replace(day=1) - timedelta(days=3)).isoformat(timespec="seconds")
    rows = ([{"created": last_month, "status": "answered", "kind": "faq", "entry_id": ids["desk-scope"]}] * 9
            + [{"created": now(), "status": "answered", "kind": "faq", "entry_id": ids["working-day"]}] * 2
            + [{"created": now(), "status": "answered", "kind": "faq", "entry_id": ids["fee-standards"]}] * 3)
    db["asks"].insert_all(rows)
    assert _hot(_page(client, "/faq")) == ["fee-standards", "working-day"]
    faq.set_status(db, None, ids["fee-standards"], "archived")
    assert _hot(_page(client, "/faq")) == ["working-day"]


def test_month_starts_in_beijing_time() -> None:
    # 2024-05-31 17:00 UTC is already 1 June in Beijing.
    assert month_start(datetime(2024, 5, 31, 17, 0, tzinfo=timezone.utc)) == "2024-05-31T16:00:00+00:00"
    assert month_start(datetime(2024, 5, 31, 15, 0, tzinfo=timezone.utc)) == "2024-04-30T16:00:00+00:00"
    assert month_start(datetime(2024, 1, 1, 0, 0, tzinfo=timezone.utc)) == "2023-12-31T16:00:00+00:00"


def test_the_months_first_question_is_found_by_bisecting_the_log(app) -> None:
    db = connect(app.config["DATABASE"])
    assert first_ask_since(db, "2024-05-01T00:00:00+00:00") == 1  # an empty log
    stamps = [f"2024-04-{d:02d}T10:00:00+00:00" for d in range(1, 31)] + \
             [f"2024-05-{d:02d}T10:00:00+00:00" for d in range(1, 20)]
    db["asks"].insert_all({"created": s, "status": "answered"} for s in stamps)
    db.execute("delete from asks where id in (29, 30, 31, 32)")  # gaps around the boundary
    first = first_ask_since(db, "2024-05-01T00:00:00+00:00")
    # Ids 29 to 32 are gone: any of them (or 33) starts May, and no April row is at or after it.
    assert 29 <= first <= 33 and db.execute("select min(id) from asks where id >= ?", [first]).fetchone()[0] == 33
    assert first_ask_since(db, "2024-06-01T00:00:00+00:00") == 50  # none yet this month
    assert first_ask_since(db, "2024-01-01T00:00:00+00:00") == 1


def test_month_counts_add_only_new_rows_and_restart_after_a_restore(app) -> None:
    db = connect(app.config["DATABASE"])
    since = "2024-05-01T00:00:00+00:00"
    db["asks"].insert_all([{"created": "2024-05-02T00:00:00+00:00", "status": "answered", "entry_id": 1}] * 2)
    counts = MonthCounts(since)
    counts.update(db)
    assert counts.counts == {1: 2}
    db["asks"].insert({"created": "2024-05-03T00:00:00+00:00", "status": "answered", "entry_id": 2})
    counts.update(db)
    counts.update(db)
    assert counts.counts == {1: 2, 2: 1} and counts.top({1, 2}) == [(1, 2), (2, 1)] and counts.top({2}) == [(2, 1)]
    db.execute("delete from asks where id >= 2")  # a backup from before the last two questions
    counts.update(db)
    assert counts.counts == {1: 1}
    assert most_asked(db, {1, 2}, since) == [(1, 1)] and most_asked(db, {2}, since) == []


# ---------- 您可能还想了解 in POST /api/ask ----------

def test_an_answered_faq_reply_carries_its_related_entries(module_app) -> None:
    client = module_app.test_client()
    body = _ask(client, "收不收钱")
    assert body["status"] == "answered" and body["kind"] == "faq"
    items = body["related"]
    assert 1 <= len(items) <= 3
    assert all(set(item) == {"id", "key", "question"} for item in items)
    assert body["entry_id"] not in [i["id"] for i in items] and FEE_KEY not in [i["key"] for i in items]
    assert [i["key"] for i in items][:2] == ["fee-standards", "fee-notice-payment"]
    for item in items:  # each one is a published entry, at its own page
        assert item["question"] in _page(client, f"/faq/{item['key']}")


@pytest.mark.parametrize("question", ["申请", "社保卡丢了怎么补办", "你好", "2021年收到多少申请"])
def test_other_replies_carry_no_related_entries(module_app, question: str) -> None:
    body = _ask(module_app.test_client(), question)
    assert not (body["status"] == "answered" and body["kind"] == "faq")
    assert body["related"] == []


def test_a_reply_handed_to_staff_carries_no_related_entries(module_app) -> None:
    body = module_app.test_client().post("/api/ask", json={"question": "收不收钱", "escalate": True}).get_json()
    assert body["status"] == "escalated" and body["related"] == []
