"""The FAQ curation workspace: entries, alternates, archive, the test pane, synonyms and words.

Every change is checked where it matters: in the database, in the audit log, and in what
the chat (``POST /api/ask`` on the same app) answers right after.
"""
from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest

from conftest import csrf_token
from service import faq
from service.knowledge import knowledge_version
from service.storage import connect
from service.text import _base_tokenizer


@pytest.fixture(autouse=True)
def restore_tokenizer():  # type: ignore[no-untyped-def]
    """Words added here go into the process-wide jieba tokenizer: take them out again."""
    tokenizer = _base_tokenizer()
    freq, total = dict(tokenizer.FREQ), tokenizer.total
    yield
    tokenizer.FREQ.clear()
    tokenizer.FREQ.update(freq)
    tokenizer.total = total


@pytest.fixture
def db(app):  # type: ignore[no-untyped-def]
    return connect(app.config["DATABASE"])


class Staff:
    """A logged-in curator's browser: forms are posted with the page's CSRF token."""

    def __init__(self, client):  # type: ignore[no-untyped-def]
        self.client = client
        self.token = csrf_token(client, "/staff/faq")

    def get(self, url: str):  # type: ignore[no-untyped-def]
        return self.client.get(url)

    def post(self, url: str, **data):  # type: ignore[no-untyped-def]
        return self.client.post(url, data={"csrf_token": self.token, **data})

    def text(self, url: str) -> str:
        response = self.client.get(url)
        assert response.status_code == 200, url
        return response.get_data(as_text=True)


@pytest.fixture
def staff(client, auth):  # type: ignore[no-untyped-def]
    auth.login("curator1", "curator")
    return Staff(client)


def ask(client, question: str) -> dict:  # type: ignore[no-untyped-def]
    response = client.post("/api/ask", json={"question": question})
    assert response.status_code == 200
    return response.get_json()


def entry_id(db, key: str) -> int:  # type: ignore[no-untyped-def]
    return db.execute("select id from entries where key = ?", [key]).fetchone()[0]


def audit_rows(db, action: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return list(db.query("select * from audit_log where action = ? order by id", [action]))


def edit_form(db, entry: int, **changes: str) -> dict:  # type: ignore[no-untyped-def]
    """The edit form as the page fills it, with some fields changed."""
    row = next(db.query("select * from entries where id = ?", [entry]))
    form = {k: row[k] or "" for k in ("question", "answer", "category", "source", "status", "version")}
    return {**form, **changes}


# -- list, search and filters -----------------------------------------------------


def test_list_is_paginated_fifty_a_page(staff) -> None:
    page = staff.text("/staff/faq")
    assert "共 62 条" in page and "第 1/2 页" in page and "下一页" in page
    assert len(re.findall(r'<td><a href="/staff/faq/\d+">', page)) == 50
    assert "哪些人可以向国家统计局申请政府信息公开？" in page
    second = staff.text("/staff/faq?page=2")
    assert len(re.findall(r'<td><a href="/staff/faq/\d+">', second)) == 12
    assert "第 2 / 2 页" in second and "哪些人可以向国家统计局申请政府信息公开？" not in second


@pytest.mark.parametrize(("query", "expected", "count"), [
    ("q=申情人需要什么条件", "哪些人可以向国家统计局申请政府信息公开？", 1),  # an alternate only
    ("q=www.stats.gov.cn", "哪些人可以向国家统计局申请政府信息公开？", None),  # answer text
    ("q=100%25", None, 0),  # LIKE wildcards are searched literally
    ("category=费用", "申请政府信息公开要收费吗？", 3),
    ("category=费用&q=超额累进", "信息处理费怎么计算？收费标准是多少？", 1),
    ("status=archived", None, 0),
])
def test_search_and_filters(staff, query: str, expected: str | None, count: int | None) -> None:
    page = staff.text(f"/staff/faq?{query}")
    if expected:
        assert expected in page
    if count is not None:
        assert f"共 {count} 条" in page


def test_list_shows_category_status_alternates_and_updated(staff, db) -> None:
    row = next(db.query("select * from entries where key = 'who-may-apply'"))
    page = staff.text("/staff/faq?q=申情人需要什么条件")
    alternates = db.execute("select count(*) from alternates where entry_id = ?", [row["id"]]).fetchone()[0]
    assert "申请" in page and "发布" in page and f"<td class=\"num\">{alternates}</td>" in page
    assert row["updated"][:10] in page


# -- create -----------------------------------------------------------------------


def test_create_entry_answers_at_once(staff, db, client) -> None:
    version = knowledge_version(db)
    response = staff.post("/staff/faq/new", question="国家统计局机关食堂对外开放吗？",
                          answer="国家统计局机关食堂仅供工作人员就餐，不对外开放。", category="其他",
                          source="", status="published")
    assert response.status_code == 302
    new_id = int(response.headers["Location"].rsplit("/", 1)[1])
    row = next(db.query("select * from entries where id = ?", [new_id]))
    assert row["key"] == f"faq-{new_id}" and row["version"] == 1 and row["status"] == "published"
    assert knowledge_version(db) == version + 1
    [log] = audit_rows(db, "create_entry")
    assert log["target"] == f"entry:{new_id}" and log["username"] == "curator1"
    assert json.loads(log["after"])["question"] == "国家统计局机关食堂对外开放吗？"
    reply = ask(client, "统计局机关食堂对外开放吗")
    assert reply["status"] == "answered" and reply["entry_id"] == new_id
    assert "不对外开放" in reply["answer"]


def test_new_entry_form_offers_existing_categories(staff) -> None:
    page = staff.text("/staff/faq/new")
    assert '<datalist id="category-list">' in page and '<option value="办理与期限">' in page
    assert 'name="csrf_token"' in page


def test_draft_entry_is_not_used_by_the_chat(staff, db, client) -> None:
    staff.post("/staff/faq/new", key="canteen", question="国家统计局机关食堂对外开放吗？",
               answer="不对外开放。", status="draft")
    draft = entry_id(db, "canteen")
    assert ask(client, "统计局机关食堂对外开放吗")["entry_id"] != draft
    assert "共 1 条" in staff.text("/staff/faq?status=draft")
    staff.post(f"/staff/faq/{draft}/restore")  # 发布
    assert ask(client, "统计局机关食堂对外开放吗")["entry_id"] == draft


@pytest.mark.parametrize(("changes", "message"), [
    ({"question": "  "}, "标准问题不能为空"),
    ({"answer": ""}, "答案不能为空"),
    ({"question": "问" * 201}, "标准问题不能超过200个字"),
    ({"answer": "答" * 5001}, "答案不能超过5000个字"),
    ({"category": "类" * 21}, "分类不能超过20个字"),
    ({"status": "online"}, "状态无效"),
    ({"key": "有 空格"}, "编号只能由字母"),
    ({"key": "reply-deadline"}, "已被其他条目使用"),
])
def test_create_refuses_bad_values_with_the_form(staff, db, changes: dict, message: str) -> None:
    count = db.execute("select count(*) from entries").fetchone()[0]
    form = {"question": "新的问题？", "answer": "新的答案。", "category": "其他", "status": "published", **changes}
    response = staff.post("/staff/faq/new", **form)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and message in page
    assert 'name="question"' in page  # the form is shown again with what was typed
    assert db.execute("select count(*) from entries").fetchone()[0] == count
    assert audit_rows(db, "create_entry") == []


# -- edit -------------------------------------------------------------------------


def test_edit_answers_the_chat_at_once(staff, db, client) -> None:
    target = entry_id(db, "reply-deadline")
    assert ask(client, "申请政府信息公开多久答复？")["entry_id"] == target
    page = staff.text(f"/staff/faq/{target}")
    assert 'name="version" value="1"' in page
    new_answer = "自收到申请之日起20个工作日内答复（测试修改后的答案）。"
    response = staff.post(f"/staff/faq/{target}", **edit_form(db, target, answer=new_answer))
    assert response.status_code == 302
    reply = ask(client, "申请政府信息公开多久答复？")
    assert reply["entry_id"] == target and reply["answer"] == new_answer
    row = next(db.query("select * from entries where id = ?", [target]))
    assert row["version"] == 2 and row["updated"] >= row["created"]
    [log] = audit_rows(db, "update_entry")
    assert log["target"] == f"entry:{target}"
    assert json.loads(log["after"])["answer"] == new_answer
    assert json.loads(log["before"])["answer"] != new_answer
    assert "已保存" in staff.text(f"/staff/faq/{target}")


def test_saving_an_unchanged_form_changes_nothing(staff, db) -> None:
    target = entry_id(db, "reply-deadline")
    version = knowledge_version(db)
    staff.post(f"/staff/faq/{target}", **edit_form(db, target))
    assert db.execute("select version from entries where id = ?", [target]).fetchone()[0] == 1
    assert knowledge_version(db) == version and audit_rows(db, "update_entry") == []


def test_stale_edit_is_refused_and_shows_the_current_values(staff, db) -> None:
    target = entry_id(db, "reply-deadline")
    mine = edit_form(db, target, answer="我的修改。")  # opened on version 1
    faq.update_entry(db, {"id": None, "username": "other"}, target, edit_form(db, target, answer="他人先保存的答案。"), 1)
    response = staff.post(f"/staff/faq/{target}", **mine)
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "该条目已被他人修改" in page and "请刷新后重新编辑" in page
    assert "他人先保存的答案。" in page  # the current values, in the form
    assert "我的修改。" in page  # and what was typed, so it is not lost
    assert 'name="version" value="2"' in page
    assert db.execute("select answer, version from entries where id = ?", [target]).fetchone() == ("他人先保存的答案。", 2)


def test_edit_with_bad_values_is_refused(staff, db) -> None:
    target = entry_id(db, "reply-deadline")
    before = next(db.query("select * from entries where id = ?", [target]))
    response = staff.post(f"/staff/faq/{target}", **edit_form(db, target, answer=" ", question=""))
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "答案不能为空" in page and "标准问题不能为空" in page
    assert next(db.query("select * from entries where id = ?", [target])) == before


def test_unknown_entry_is_404(staff) -> None:
    assert staff.get("/staff/faq/9999").status_code == 404
    assert staff.post("/staff/faq/9999/archive").status_code == 404
    assert staff.post("/staff/faq/9999/alternates", text="问").status_code == 404


# -- alternates -------------------------------------------------------------------


def test_adding_an_alternate_answers_an_escalated_question(staff, db, client) -> None:
    target = entry_id(db, "disclosure-office")
    assert ask(client, "统计局里管信息公开的是哪个司局")["status"] != "answered"
    response = staff.post(f"/staff/faq/{target}/alternates", text="统计局里管信息公开的是哪个司局")
    assert response.status_code == 302
    reply = ask(client, "统计局里管信息公开的是哪个司局")
    assert reply["status"] == "answered" and reply["entry_id"] == target
    assert db.execute("select version from entries where id = ?", [target]).fetchone()[0] == 2
    [log] = audit_rows(db, "add_alternate")
    assert log["target"] == f"entry:{target}" and "司局" in log["after"]


def test_removing_an_alternate(staff, db) -> None:
    target = entry_id(db, "who-may-apply")
    alt_id, text = db.execute("select id, text from alternates where entry_id = ? order by id", [target]).fetchone()
    response = staff.post(f"/staff/faq/{target}/alternates/{alt_id}/delete")
    assert response.status_code == 302
    assert db.execute("select 1 from alternates where id = ?", [alt_id]).fetchone() is None
    [log] = audit_rows(db, "remove_alternate")
    assert json.loads(log["before"])["text"] == text
    page = staff.text(f"/staff/faq/{target}")
    assert text not in page.split('id="history"')[0]
    assert f"〔删去：</span>{text}" in page  # the history shows what was removed
    # An alternate of another entry cannot be removed through this one.
    other = db.execute("select id from alternates where entry_id != ? limit 1", [target]).fetchone()[0]
    assert staff.post(f"/staff/faq/{target}/alternates/{other}/delete").status_code == 404


@pytest.mark.parametrize(("text", "message"), [
    ("  ", "相似问法不能为空"),
    ("问" * 201, "不能超过200个字"),
    ("任何人都可以申请吗", "在本条目中重复"),
    ("任何人都可以申请吗？", "在本条目中重复"),  # punctuation aside, the same phrasing
    ("哪些人可以向国家统计局申请政府信息公开", "与标准问题相同"),
])
def test_bad_alternates_are_refused(staff, db, text: str, message: str) -> None:
    target = entry_id(db, "who-may-apply")
    count = db.execute("select count(*) from alternates").fetchone()[0]
    response = staff.post(f"/staff/faq/{target}/alternates", text=text)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert db.execute("select count(*) from alternates").fetchone()[0] == count
    assert audit_rows(db, "add_alternate") == []


def test_alternate_of_another_entry_is_added_with_a_warning(staff, db) -> None:
    target = entry_id(db, "how-to-apply")
    response = staff.post(f"/staff/faq/{target}/alternates", text="任何人都可以申请吗")
    assert response.status_code == 302
    page = staff.text(f"/staff/faq/{target}")
    assert "注意" in page and "who-may-apply" in page
    assert db.execute("select count(*) from alternates where entry_id = ? and text = '任何人都可以申请吗'",
                      [target]).fetchone()[0] == 1


# -- archive and restore ----------------------------------------------------------


def test_archive_and_restore(staff, db, client) -> None:
    target = entry_id(db, "reply-deadline")
    question = "申请政府信息公开多久答复？"
    assert ask(client, question)["entry_id"] == target
    assert staff.post(f"/staff/faq/{target}/archive").status_code == 302
    assert db.execute("select status from entries where id = ?", [target]).fetchone()[0] == "archived"
    assert ask(client, question)["entry_id"] != target
    page = staff.text(f"/staff/faq/{target}")
    assert "已归档" in page and "恢复为发布" in page
    assert staff.post(f"/staff/faq/{target}/restore").status_code == 302
    assert ask(client, question)["entry_id"] == target
    assert [r["action"] for r in db.query("select action from audit_log where target = ? order by id",
                                          [f"entry:{target}"])] == ["archive_entry", "restore_entry"]
    assert db.execute("select version from entries where id = ?", [target]).fetchone()[0] == 3


# -- the test pane ----------------------------------------------------------------


def test_test_pane_shows_how_a_question_is_handled(staff, db) -> None:
    target = entry_id(db, "reply-deadline")
    asks = db.execute("select count(*) from asks").fetchone()[0]
    page = staff.text("/staff/faq/test?q=" + quote("请问申请公开要多久？"))
    assert "规范化后" in page and "<code>申请公开要多久</code>" in page
    assert '<span class="token">申请</span>' in page and '<span class="token">期限</span>' in page
    assert "直接回答" in page and "唯一明确的最佳匹配" in page
    assert f'href="/staff/faq/{target}">提交申请后多久能收到答复？</a>' in page
    assert f"faq:{target}" in page and "覆盖度" in page and "精确度" in page and "字面相似度" in page
    assert re.search(r'<td class="num">0\.\d{3}</td>', page)
    assert db.execute("select count(*) from asks").fetchone()[0] == asks  # testing is not asking


@pytest.mark.parametrize(("question", "expected"), [
    ("统计局的食堂几点开饭", ["转人工", "没有足够接近的知识"]),
    ("2021年国家统计局收到多少申请", ["直接回答", "报告表格行：本年新收政府信息公开申请数量"]),
    ("期限", ["请群众澄清", "澄清选项"]),
])
def test_test_pane_decisions(staff, db, question: str, expected: list[str]) -> None:
    tickets = db.execute("select count(*) from tickets").fetchone()[0]
    page = staff.text("/staff/faq/test?q=" + quote(question))
    for text in expected:
        assert text in page
    assert db.execute("select count(*) from tickets").fetchone()[0] == tickets


def test_entry_page_links_to_the_test_pane(staff, db) -> None:
    target = entry_id(db, "reply-deadline")
    page = staff.text(f"/staff/faq/{target}")
    link = re.search(r'href="(/staff/faq/test\?q=[^"]+)">测试</a>', page)
    assert link
    pane = staff.text(link.group(1).replace("&amp;", "&"))
    assert 'value="提交申请后多久能收到答复？"' in pane and "直接回答" in pane


# -- synonyms and dictionary words ------------------------------------------------


def test_synonym_changes_matching_at_once_and_can_be_removed(staff, db, client) -> None:
    question = "申请公开多久能有个准话"
    assert ask(client, question)["status"] != "answered"
    response = staff.post("/staff/lexicon/synonyms", term="准话", canonical="答复")
    assert response.status_code == 302
    reply = ask(client, question)
    assert reply["status"] == "answered" and reply["entry_id"] == entry_id(db, "reply-deadline")
    assert "准话" in staff.text("/staff/lexicon")
    [log] = audit_rows(db, "add_synonym")
    assert log["target"] == "synonym:准话" and json.loads(log["after"]) == {"term": "准话", "canonical": "答复"}
    assert staff.post("/staff/lexicon/synonyms/delete", term="准话").status_code == 302
    assert db.execute("select 1 from synonyms where term = '准话'").fetchone() is None
    assert ask(client, question)["status"] != "answered"
    assert audit_rows(db, "remove_synonym")[0]["target"] == "synonym:准话"


@pytest.mark.parametrize(("term", "canonical", "message"), [
    ("", "答复", "同义词不能为空"),
    ("准信", " ", "标准词不能为空"),
    ("准 信", "答复", "不能包含空格"),
    ("准" * 21, "答复", "不能超过20个字"),
    ("答复", "答复", "不能映射到自身"),
    ("ABC", "abc", "不能映射到自身"),  # compared as questions are: lower case
    ("行政复议", "复议", "会形成循环"),  # 复议 → 行政复议 exists
    ("准信", "回复", "请直接映射到“答复”"),  # 回复 → 答复: one step only
    ("答复", "准信", "已是其他同义词"),  # 答复 is the canonical term of 回复 ...
    ("回复", "准信", "已映射到“答复”"),
])
def test_bad_synonyms_are_refused(staff, db, term: str, canonical: str, message: str) -> None:
    count = db.execute("select count(*) from synonyms").fetchone()[0]
    version = knowledge_version(db)
    response = staff.post("/staff/lexicon/synonyms", term=term, canonical=canonical)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert db.execute("select count(*) from synonyms").fetchone()[0] == count
    assert knowledge_version(db) == version and audit_rows(db, "add_synonym") == []


def test_dictionary_word_changes_tokens_at_once(staff, db) -> None:
    pane = "/staff/faq/test?q=" + quote("统计小站在哪")
    assert '<span class="token">小站</span>' in staff.text(pane)
    assert staff.post("/staff/lexicon/words", word="统计小站", freq="").status_code == 302
    assert '<span class="token">统计小站</span>' in staff.text(pane)
    assert staff.post("/staff/lexicon/words", word="统计驿站", freq="3000").status_code == 302
    assert db.execute("select freq from lexicon_words where word = '统计驿站'").fetchone()[0] == 3000
    assert [json.loads(r["after"])["word"] for r in audit_rows(db, "add_word")] == ["统计小站", "统计驿站"]
    page = staff.text("/staff/lexicon")
    assert "统计驿站" in page and "直到服务重启" in page  # the honest hint about removal
    assert staff.post("/staff/lexicon/words/delete", word="统计驿站").status_code == 302
    assert db.execute("select 1 from lexicon_words where word = '统计驿站'").fetchone() is None
    assert audit_rows(db, "remove_word")[0]["target"] == "word:统计驿站"


@pytest.mark.parametrize(("word", "freq", "message"), [
    ("", "", "词语不能为空"),
    ("统 计", "", "不能包含空格"),
    ("统" * 21, "", "不能超过20个字"),
    ("统", "", "至少2个字"),
    ("统计小站", "-5", "词频应为"),
    ("统计小站", "abc", "词频应为"),
    ("统计小站", "0", "词频应为"),
    ("政府信息公开", "", "已在词典中"),
])
def test_bad_words_are_refused(staff, db, word: str, freq: str, message: str) -> None:
    count = db.execute("select count(*) from lexicon_words").fetchone()[0]
    response = staff.post("/staff/lexicon/words", word=word, freq=freq)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert db.execute("select count(*) from lexicon_words").fetchone()[0] == count


def test_removing_what_does_not_exist_is_a_400(staff) -> None:
    assert staff.post("/staff/lexicon/synonyms/delete", term="没有这个词").status_code == 400
    assert staff.post("/staff/lexicon/words/delete", word="没有这个词").status_code == 400


# -- access -----------------------------------------------------------------------


def test_reviewers_cannot_curate(client, auth, db) -> None:
    auth.login("reviewer1", "reviewer")
    token = csrf_token(client, "/staff/password")
    target = entry_id(db, "reply-deadline")
    for url in ("/staff/faq", "/staff/faq/new", f"/staff/faq/{target}", "/staff/faq/test", "/staff/lexicon",
                "/staff/faq/export.csv", "/staff/faq/import"):
        assert client.get(url).status_code == 403, url
    response = client.post(f"/staff/faq/{target}/archive", data={"csrf_token": token})
    assert response.status_code == 403
    assert db.execute("select status from entries where id = ?", [target]).fetchone()[0] == "published"


def test_admins_may_curate(client, auth) -> None:
    auth.login("admin1", "admin")
    assert client.get("/staff/faq").status_code == 200


def test_forms_without_csrf_are_refused(client, auth, db) -> None:
    auth.login("curator1", "curator")
    target = entry_id(db, "reply-deadline")
    assert client.post(f"/staff/faq/{target}/archive").status_code == 400
    assert client.post("/staff/lexicon/words", data={"word": "统计小站"}).status_code == 400
    assert db.execute("select status from entries where id = ?", [target]).fetchone()[0] == "published"


# -- paraphrases and the fitted decision in the test pane ---------------------------


def test_a_curator_adds_and_removes_a_paraphrase_and_matching_follows(staff, db, client) -> None:
    question = "申请公开多久能有个准话"
    before = ask(client, question)
    response = staff.post("/staff/lexicon/paraphrases", variant="准话", standard="答复")
    assert response.status_code == 302
    assert "准话" in staff.text("/staff/lexicon")
    pane = staff.text("/staff/faq/test?q=" + quote(question))
    assert "准话 → 答复" in pane
    after = ask(client, question)
    assert after["status"] == "answered" and after["entry_id"] == entry_id(db, "reply-deadline")
    [log] = audit_rows(db, "add_paraphrase")
    assert log["target"] == "paraphrase:准话"
    refused = staff.post("/staff/lexicon/paraphrases", variant="准话", standard="期限")
    assert refused.status_code == 400 and "已改写为" in refused.get_data(as_text=True)
    assert staff.post("/staff/lexicon/paraphrases/delete", variant="准话").status_code == 302
    assert ask(client, question)["status"] == before["status"]


def test_the_test_pane_shows_each_features_part_in_the_decision(staff) -> None:
    page = staff.text("/staff/faq/test?q=" + quote("申请信息公开收费吗"))
    assert "判断依据" in page and "对结论的贡献" in page and "最佳候选得分的构成" in page
    assert "最佳候选领先第二名的幅度" in page and "回答阈值" in page


# -- the same phrasing on another entry: a lookup of stored keys ---------------------


def _shared_ids(db, text: str, entry: int | None = None) -> set[int]:  # type: ignore[no-untyped-def]
    return {o["id"] for o in faq.shared_phrasings(db, text, entry)}


def test_the_same_phrasing_is_found_through_stored_keys_and_follows_edits(db) -> None:
    first = faq.create_entry(db, None, {"question": "食堂菜单在哪里公布？", "answer": "在后勤公告栏。"})
    second = faq.create_entry(db, None, {"question": "澡堂几点开门", "answer": "早上七点。"})
    faq.add_alternate(db, None, second, "員工餐廳開放時間")
    # Punctuation, spaces, traditional characters and full-width letters aside.
    assert _shared_ids(db, "食堂菜单 在哪里公布") == {first}
    assert _shared_ids(db, "员工餐厅开放时间？") == {second}
    assert _shared_ids(db, "员工餐厅开放时间", second) == set()  # the entry itself is not "another"
    # Every phrasing has its key stored once looked up...
    assert db.execute("select count(*) from entries where same_key is null").fetchone()[0] == 0
    assert db.execute("select count(*) from alternates where same_key is null").fetchone()[0] == 0
    # ... and an edit of the text (however it is written) resets it: the old wording is no
    # longer found, the new one is.
    db.execute("update entries set question = ? where id = ?", ["食堂菜谱在哪里看", first])
    db.execute("update alternates set text = ? where entry_id = ?", ["员工餐厅几点开", second])
    db.conn.commit()
    assert _shared_ids(db, "食堂菜单在哪里公布") == set()
    assert _shared_ids(db, "食堂菜谱在哪里看？") == {first}
    assert _shared_ids(db, "员工餐厅开放时间") == set()
    assert _shared_ids(db, "員工餐廳幾點開") == {second}


def test_stored_keys_are_worked_out_again_when_the_key_changes(db, monkeypatch) -> None:
    monkeypatch.setattr(faq, "FILL_CHUNK", 7)  # many short transactions, as at 100,000 entries
    entry = faq.create_entry(db, None, {"question": "档案馆的地址在哪里", "answer": "见官网。"})
    assert _shared_ids(db, "档案馆的地址在哪里？") == {entry}
    # Keys written by an older way of comparing (or an older converter) are not trusted.
    db.execute("update entries set same_key = 'stale'")
    db.execute("update alternates set same_key = 'stale'")
    db.execute("update meta set value = 'older' where key = 'same_key_stamp'")
    db.conn.commit()
    assert _shared_ids(db, "档案馆的地址在哪里") == {entry}
    assert db.execute("select same_key from entries where id = ?", [entry]).fetchone()[0] == "档案馆的地址在哪里"
    for table in ("entries", "alternates"):
        assert db.execute(f"select count(*) from {table} where same_key = 'stale' or same_key is null").fetchone()[0] == 0


def test_a_phrasing_written_after_the_keys_were_filled_is_still_compared(db, monkeypatch) -> None:
    faq.fill_same_keys(db)
    # Written between another save's fill and its lookup: no key yet, compared all the same.
    monkeypatch.setattr(faq, "fill_same_keys", lambda db: 0)
    entry = faq.create_entry(db, None, {"question": "图书室借书要押金吗", "answer": "不需要。"})
    faq.add_alternate(db, None, entry, "借書押金")
    assert db.execute("select count(*) from entries where same_key is null").fetchone()[0] == 1
    assert db.execute("select count(*) from alternates where same_key is null").fetchone()[0] == 1
    assert _shared_ids(db, "图书室借书要押金吗？") == {entry}
    assert _shared_ids(db, "借书押金") == {entry}
    assert _shared_ids(db, "借书要押金吗") == set()


def test_a_very_long_key_is_stored_as_a_digest_and_still_matches(db) -> None:
    text = "ﷺ" * 150  # NFKC makes each of these 18 letters: far beyond an index entry's size
    entry = faq.create_entry(db, None, {"question": text, "answer": "测试。"})
    assert _shared_ids(db, text) == {entry}
    stored = db.execute("select same_key from entries where id = ?", [entry]).fetchone()[0]
    assert stored.startswith("sha256:") and len(stored) <= faq.MAX_STORED_KEY
