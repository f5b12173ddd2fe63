"""The curators' inbox: missed questions grouped, picks of suggestions as suggested phrasings,
and what accepting one does (answered at once, the answered share recorded)."""
from __future__ import annotations

import re
from datetime import date

import pytest
import sqlite_utils

from service import inbox
from service.analytics import Period
from service.migrations import apply_migrations
from service.storage import connect
from service.tickets import _ASK_INSERT

from conftest import AuthActions, csrf_token, make_app

CLARIFIED = "复议怎么申请"  # the desk asks: 申请政府信息公开有哪些方式？ or the 行政复议 entry?
UNANSWERABLE = "贵单位食堂今年的菜谱能公开吗？"


# -- the pure parts ----------------------------------------------------------------------


def _missed(text: str, n: int = 1) -> inbox.Missed:
    return inbox.Missed(text, text, n, n, 0, 0, "2026-05-01T00:00:00+00:00")


def test_groups_join_wordings_that_share_their_rare_words_and_keep_common_words_apart() -> None:
    words = {"复议怎么申请": ["行政复议", "怎么", "申请"], "行政复议怎么提": ["行政复议", "怎么", "提"],
             "怎么申请公开": ["怎么", "申请", "公开"], "食堂菜谱公开吗": ["食堂", "菜谱", "公开"],
             "你们食堂菜谱": ["食堂", "菜谱"]}
    rarity = {"行政复议": 1.0, "食堂": 0.9, "菜谱": 1.0, "怎么": 0.0, "申请": 0.3, "公开": 0.3, "提": 0.1}
    weight = inbox.word_weight(rarity.get)
    groups = inbox.group([_missed(q, n) for q, n in zip(words, [5, 2, 4, 3, 1])], words.__getitem__, weight)
    as_sets = [{m.normalised for m in g.members} for g in groups]
    assert {"复议怎么申请", "行政复议怎么提"} in as_sets
    assert {"食堂菜谱公开吗", "你们食堂菜谱"} in as_sets
    assert {"怎么申请公开"} in as_sets  # shares only everyday words with 复议怎么申请
    assert [g.n for g in groups] == sorted((g.n for g in groups), reverse=True)
    assert groups[0].lead.normalised == "复议怎么申请"  # the most asked names its group


def test_the_desk_weighs_its_own_terms_as_topics_when_grouping(tmp_path) -> None:
    """With the real desk: the knowledge's boosted terms (行政复议) weigh as topics, so the
    appeal wordings group together and apart from a plain question about applying."""
    from service.db import get_desk

    app = make_app(tmp_path)
    with app.app_context():
        desk = get_desk()
        weight = inbox.word_weight(desk.pipeline.topic_rarity)
        asked = ["复议怎么申请", "行政复议怎么提", "怎么申请公开", "贵单位食堂今年的菜谱能公开吗", "你们食堂的菜谱公开吗"]
        questions = [inbox.Missed(desk.pipeline.normalise(q, pinyin=False), q, 10 - i)
                     for i, q in enumerate(asked)]
        groups = [[m.question for m in g.members] for g in inbox.group(questions, desk.tokens, weight)]
    assert ["复议怎么申请", "行政复议怎么提"] in groups
    assert ["怎么申请公开"] in groups
    assert ["贵单位食堂今年的菜谱能公开吗", "你们食堂的菜谱公开吗"] in groups
    assert weight("行政复议") > 0.5 > weight("怎么")


def test_similarity_and_word_weights() -> None:
    weight = inbox.word_weight({"常见": 0.0}.get)
    assert weight("2023") == inbox.NUMBER_WEIGHT
    assert weight("常见") == inbox.MIN_WORD_WEIGHT
    assert weight("没见过的词") == 1.0
    assert inbox.similarity({"a": 1.0}, {"a": 1.0}) == 1.0
    assert inbox.similarity({"a": 1.0}, {"b": 1.0}) == 0.0
    assert inbox.similarity({}, {}) == 0.0


def test_a_pick_is_signed_for_one_answer_and_one_entry() -> None:
    keys = ["current-key", "retired-key"]
    pick = inbox.pick_token("A" * 22, 33, keys)
    assert inbox.read_pick(pick, keys) == ("A" * 22, 33)
    assert inbox.read_pick(inbox.pick_token("A" * 22, 33, ["retired-key"]), keys) == ("A" * 22, 33)
    forged = pick.replace(".33.", ".34.")
    for bad in [forged, "", "x", 42, None, pick + "x", "A" * 22 + ".33." + "B" * 16]:
        with pytest.raises(inbox.InboxError):
            inbox.read_pick(bad, keys)


@pytest.fixture
def db() -> sqlite_utils.Database:
    database = sqlite_utils.Database(memory=True)
    apply_migrations(database)
    database["entries"].insert({"id": 1, "key": "fees", "question": "要收费吗？", "answer": "不收费。",
                                "category": "费用", "status": "published"})
    return database


def _log(db: sqlite_utils.Database, created: str, text: str, status: str, kind: str | None = None,
         token: str | None = None, session: str = "s1") -> None:
    db.conn.executemany(_ASK_INSERT, [(created, session, text, text, status, kind, None, None, 0.3, 5.0,
                                       None, token)])


PERIOD = Period(date(2026, 5, 1), date(2026, 5, 3))


def test_missed_questions_come_from_escalations_clarifications_and_unhelpful_answers(db) -> None:
    _log(db, "2026-05-01T02:00:00+00:00", "食堂菜谱", "escalated")
    _log(db, "2026-05-01T03:00:00+00:00", "食堂菜谱", "escalated")
    _log(db, "2026-05-01T04:00:00+00:00", "复议怎么申请", "clarify")
    _log(db, "2026-05-01T05:00:00+00:00", "收费吗", "answered", "faq", token="t1")
    _log(db, "2026-05-01T06:00:00+00:00", "公租房", "escalated", "referral")
    _log(db, "2026-05-01T07:00:00+00:00", "转人工", "escalated", "handoff")
    _log(db, "2026-05-01T08:00:00+00:00", "你好", "answered", "chitchat", token="t2")  # as the desk logs it
    _log(db, "2026-05-01T09:00:00+00:00", "转人工", "escalated", "handoff", token="t3")
    _log(db, "2026-04-01T08:00:00+00:00", "很久以前", "escalated")  # outside the period
    db.execute("insert into feedback (ask_token, helpful, created) values ('t1', 0, '2026-05-01T05:01:00+00:00')")
    # Small talk and a request for a person rated 没用 are no misses of the knowledge either.
    db.execute("insert into feedback (ask_token, helpful, created) values ('t2', 0, '2026-05-01T08:01:00+00:00')")
    db.execute("insert into feedback (ask_token, helpful, created) values ('t3', 0, '2026-05-01T09:01:00+00:00')")
    listed = inbox.missed(db, PERIOD)
    found = {m.normalised: m for m in listed.questions}
    assert set(found) == {"食堂菜谱", "复议怎么申请", "收费吗"}
    assert (found["食堂菜谱"].n, found["食堂菜谱"].escalated) == (2, 2)
    assert found["复议怎么申请"].clarify == 1
    assert found["收费吗"].unhelpful == 1
    assert listed.questions[0].normalised == "食堂菜谱"  # most asked first
    assert (listed.distinct, listed.asked, listed.truncated) == (3, 4, False)
    top = inbox.missed(db, PERIOD, limit=1)  # only the most asked are listed, the totals are all
    assert [m.normalised for m in top.questions] == ["食堂菜谱"]
    assert (top.distinct, top.asked, top.truncated) == (3, 4, True)


def test_marks_take_questions_out_and_a_phrasing_comes_back_if_missed_again(db) -> None:
    _log(db, "2026-05-01T02:00:00+00:00", "食堂菜谱", "escalated")
    _log(db, "2026-05-01T02:00:00+00:00", "大楼开放日", "escalated")
    inbox.mark(db, ["食堂菜谱"], "dismissed", {"username": "c"})
    inbox.mark(db, ["大楼开放日"], "phrasing", {"username": "c"}, 1)
    assert inbox.missed(db, PERIOD).questions == []
    db.execute("update inbox_marks set marked_at = '2026-05-01T03:00:00+00:00'")
    _log(db, "2026-05-02T02:00:00+00:00", "食堂菜谱", "escalated")
    _log(db, "2026-05-02T02:00:00+00:00", "大楼开放日", "escalated")
    assert [m.normalised for m in inbox.missed(db, PERIOD).questions] == ["大楼开放日"]  # noise stays dismissed
    with pytest.raises(inbox.InboxError):
        inbox.mark(db, ["x"], "delete", None)
    for bad in [[], [""], ["x" * (inbox.MAX_NORMALISED + 1)], [3], ["q%d" % i for i in range(inbox.MAX_MEMBERS + 1)]]:
        with pytest.raises(inbox.InboxError):
            inbox.clean_keys(bad)


def test_replay_counts_the_period_from_the_rollups_and_what_the_desk_answers_now(db) -> None:
    for i in range(6):
        _log(db, f"2026-05-01T0{i}:00:00+00:00", "收费吗", "answered", "faq")
    _log(db, "2026-05-01T02:00:00+00:00", "食堂菜谱", "escalated")
    _log(db, "2026-05-01T03:00:00+00:00", "食堂菜谱", "escalated")
    _log(db, "2026-05-01T04:00:00+00:00", "大楼开放日", "clarify")
    _log(db, "2026-05-01T05:00:00+00:00", "公租房", "escalated", "referral")  # not counted
    before = inbox.replay(db, PERIOD, lambda q: "escalated")
    after = inbox.replay(db, PERIOD, lambda q: "answered" if "食堂" in q else "clarify")
    assert (before.total, before.answered_logged, before.replayed, before.answered_now) == (9, 6, 3, 0)
    assert before.share == pytest.approx(6 / 9) and after.share == pytest.approx(8 / 9)


# -- over HTTP -----------------------------------------------------------------------------


@pytest.fixture
def app(tmp_path):  # type: ignore[no-untyped-def]
    return make_app(tmp_path)


def _clarify(client) -> tuple[dict, dict]:  # type: ignore[no-untyped-def]
    """Ask the clarified question and pick the suggestion for appeals; (clarify reply, pick)."""
    reply = client.post("/api/ask", json={"question": CLARIFIED, "session": "s1"}).get_json()
    assert reply["status"] == "clarify"
    [chosen] = [s for s in reply["suggestions"] if "行政复议" in s["question"]]
    assert isinstance(chosen["pick"], str)
    return reply, chosen


def test_a_pick_is_recorded_once_per_answer_and_a_bad_pick_is_refused(app) -> None:
    client = app.test_client()
    reply, chosen = _clarify(client)
    for _ in range(2):  # a second click on the same suggestion counts once
        second = client.post("/api/ask", json={"question": chosen["question"], "session": "s1", "pick": chosen["pick"]})
        assert second.status_code == 200 and second.get_json()["status"] == "answered"
    db = connect(app.config["DATABASE"])
    assert db.execute("select count(*), min(entry_id) from suggestion_picks").fetchone() == (1, chosen["id"])
    for bad, status in [("bad", 400), (7, 400), ("x" * 500, 400),
                        (chosen["pick"].replace(f".{chosen['id']}.", ".1."), 404)]:
        refused = client.post("/api/ask", json={"question": chosen["question"], "pick": bad})
        assert refused.status_code == status and "建议问题" in refused.get_json()["error"]
    assert db.execute("select count(*) from suggestion_picks").fetchone()[0] == 1
    # Only a clarify reply carries picks.
    answered = client.post("/api/ask", json={"question": "申请政府信息公开要收费吗？"}).get_json()
    assert all("pick" not in s for s in answered["suggestions"])


def test_only_curators_see_the_inbox(app) -> None:
    client = app.test_client()
    assert client.get("/staff/inbox").status_code in (302, 401)
    auth = AuthActions(app, client)
    auth.login("reviewer1", "reviewer")
    assert client.get("/staff/inbox").status_code == 403
    auth.logout()
    auth.login("curator1", "curator")
    assert client.get("/staff/inbox").status_code == 200


def _post(client, url: str, data: dict):  # type: ignore[no-untyped-def]
    return client.post(url, data={"csrf_token": csrf_token(client, "/staff/inbox"), **data}, follow_redirects=True)


def test_accepting_a_suggestion_answers_the_question_at_once_and_records_the_answered_share(app) -> None:
    client = app.test_client()
    _, chosen = _clarify(client)
    client.post("/api/ask", json={"question": chosen["question"], "session": "s1", "pick": chosen["pick"]})
    client.post("/api/ask", json={"question": UNANSWERABLE})
    AuthActions(app, client).login()
    page = client.get("/staff/inbox").get_data(as_text=True)
    section = page[page.index("群众选择的建议问法"):page.index("未能答好的问题")]
    assert CLARIFIED in section and chosen["question"] in section and "1 次（1 个会话）" in section
    key = re.search(r'name="key" value="([^"]+)"', section).group(1)
    done = _post(client, "/staff/inbox/suggestions", {"key": key, "entry_id": chosen["id"], "question": CLARIFIED,
                                                      "decision": "accepted"}).get_data(as_text=True)
    assert "已采纳" in done and "已回答比例" in done
    # The same words are answered now, by the entry the citizen picked.
    again = client.post("/api/ask", json={"question": CLARIFIED}).get_json()
    assert again["status"] == "answered" and again["entry_id"] == chosen["id"]
    db = connect(app.config["DATABASE"])
    assert db.execute("select count(*) from alternates where entry_id = ? and text = ?",
                      [chosen["id"], CLARIFIED]).fetchone()[0] == 1
    change = db.execute("select answered_before, answered_after, total from inbox_changes").fetchone()
    assert change[1] > change[0] and change[2] == 3  # clarified, picked, unanswerable
    # The suggestion is decided, and the change is shown with its shares.
    page = client.get("/staff/inbox").get_data(as_text=True)
    assert "本期没有待审核的建议问法" in page and "采纳后的效果" in page and "→" in page
    actions = [r[0] for r in db.execute("select action from audit_log")]
    assert "add_alternate" in actions


def test_rejecting_a_suggestion_adds_nothing(app) -> None:
    client = app.test_client()
    _, chosen = _clarify(client)
    client.post("/api/ask", json={"question": chosen["question"], "session": "s1", "pick": chosen["pick"]})
    AuthActions(app, client).login()
    page = client.get("/staff/inbox").get_data(as_text=True)
    key = re.search(r'name="key" value="([^"]+)"', page[page.index("群众选择的建议问法"):]).group(1)
    assert "已拒绝" in _post(client, "/staff/inbox/suggestions", {
        "key": key, "entry_id": chosen["id"], "question": CLARIFIED, "decision": "rejected"}).get_data(as_text=True)
    db = connect(app.config["DATABASE"])
    assert db.execute("select count(*) from alternates where text = ?", [CLARIFIED]).fetchone()[0] == 0
    assert client.post("/api/ask", json={"question": CLARIFIED}).get_json()["status"] == "clarify"
    assert "本期没有待审核的建议问法" in client.get("/staff/inbox").get_data(as_text=True)


def _group_keys(page: str, question: str) -> list[str]:
    start = page.index(f">{question}</h3>")
    block = page[start:page.index("</article>", start)]
    return list(dict.fromkeys(re.findall(r'name="key" value="([^"]+)"', block)))  # each of its three forms


def test_a_missed_group_becomes_a_phrasing_a_draft_or_is_dismissed(app) -> None:
    client = app.test_client()
    for q in [UNANSWERABLE, UNANSWERABLE, "你们食堂的菜谱公开吗", "贵单位大楼的开放日是哪天", "公租房怎么申请"]:
        client.post("/api/ask", json={"question": q})
    AuthActions(app, client).login()
    page = client.get("/staff/inbox").get_data(as_text=True)
    assert "公租房" not in page[page.index("未能答好的问题"):]  # referred, not missed
    keys = _group_keys(page, UNANSWERABLE)
    assert len(keys) == 2 and "你们食堂的菜谱公开吗" in page  # two wordings, one group
    assert "共 3 次 · 转人工 3" in page

    # Dismiss the canteen; draft an entry for the open day.
    assert "已忽略 2 个问题" in _post(client, "/staff/inbox/dismiss", {"key": keys}).get_data(as_text=True)
    page = client.get("/staff/inbox").get_data(as_text=True)
    assert UNANSWERABLE not in page
    open_day = _group_keys(page, "贵单位大楼的开放日是哪天")
    form = _post(client, "/staff/inbox/draft", {"key": open_day, "question": "贵单位大楼的开放日是哪天"}).get_data(as_text=True)
    assert "新建条目" in form and 'value="贵单位大楼的开放日是哪天"' in form and 'name="inbox_key"' in form
    created = client.post("/staff/faq/new", data={
        "csrf_token": csrf_token(client, "/staff/faq/new"), "question": "贵单位大楼的开放日是哪天？",
        "answer": "请以本机关公布的安排为准。", "category": "其他", "source": "工作实践", "status": "published",
        "inbox_key": open_day}, follow_redirects=True)
    assert created.status_code == 200
    assert "贵单位大楼的开放日是哪天" not in client.get("/staff/inbox").get_data(as_text=True).split("未能答好的问题")[1]
    db = connect(app.config["DATABASE"])
    assert db.execute("select action from inbox_marks where normalised = ?", [open_day[0]]).fetchone()[0] == "draft"


def test_adding_a_group_as_a_phrasing_answers_it_and_bad_posts_get_a_message(app) -> None:
    client = app.test_client()
    client.post("/api/ask", json={"question": UNANSWERABLE})
    AuthActions(app, client).login()
    page = client.get("/staff/inbox").get_data(as_text=True)
    keys = _group_keys(page, UNANSWERABLE)
    db = connect(app.config["DATABASE"])
    entry_id = db.execute("select id from entries where key = 'is-it-free'").fetchone()[0]
    archived = db.execute("select id from entries where key != 'is-it-free' order by id limit 1").fetchone()[0]
    db.execute("update entries set status = 'archived' where id = ?", [archived])
    # Bad posts: no entry, an entry that does not exist, keys missing or forged.
    for data, message in [({"key": keys, "question": UNANSWERABLE}, "请选择要添加到的条目"),
                          ({"key": keys, "question": UNANSWERABLE, "entry_id": "99999"}, "不存在"),
                          ({"question": UNANSWERABLE, "entry_id": entry_id}, "请选择要处理的问题"),
                          ({"key": ["x" * 600], "question": UNANSWERABLE, "entry_id": entry_id}, "无效"),
                          ({"key": keys, "question": UNANSWERABLE, "entry_id": "²"}, "请选择要添加到的条目"),
                          ({"key": keys, "question": UNANSWERABLE, "entry_id": "¹²"}, "请选择要添加到的条目"),
                          ({"key": keys * 201, "question": UNANSWERABLE, "entry_id": entry_id}, "一次最多处理"),
                          ({"key": keys, "question": UNANSWERABLE, "entry_id": archived}, "尚未发布或已归档")]:
        response = _post(client, "/staff/inbox/phrasing", data)
        assert response.status_code == 200 and message in response.get_data(as_text=True), message
    assert db.execute("select count(*) from alternates where text = ?", [UNANSWERABLE]).fetchone()[0] == 0
    done = _post(client, "/staff/inbox/phrasing", {"key": keys, "question": UNANSWERABLE, "entry_id": entry_id})
    assert "立即生效" in done.get_data(as_text=True)
    reply = client.post("/api/ask", json={"question": UNANSWERABLE}).get_json()
    assert reply["status"] == "answered" and reply["entry_id"] == entry_id
    assert "贵单位食堂今年的菜谱能公开吗？</h3>" not in client.get("/staff/inbox").get_data(as_text=True)


def test_unhelpful_answers_reach_the_inbox(app) -> None:
    client = app.test_client()
    reply = client.post("/api/ask", json={"question": "申请政府信息公开要收费吗？"}).get_json()
    assert reply["status"] == "answered"
    client.post("/api/feedback", json={"ask_id": reply["ask_id"], "helpful": False, "reason_code": "off_topic"})
    AuthActions(app, client).login()
    page = client.get("/staff/inbox").get_data(as_text=True)
    assert "答复没用 1" in page and "申请政府信息公开要收费吗？</h3>" in page
    assert "已能回答" in page  # what the desk does with it now


def test_a_bad_period_is_a_400_with_a_message(app) -> None:
    client = app.test_client()
    AuthActions(app, client).login()
    response = client.get("/staff/inbox?from=2026-13-01")
    assert response.status_code == 400 and "不是有效的日期" in response.get_data(as_text=True)
    for page in ["abc", "²", "١", "9" * 30, "-1", "0"]:  # digits Python's isdigit takes and int refuses
        assert client.get(f"/staff/inbox?page={page}").status_code == 200


def test_a_pair_whose_words_the_entry_already_has_is_accepted_not_stuck(app) -> None:
    client = app.test_client()
    _, chosen = _clarify(client)
    client.post("/api/ask", json={"question": chosen["question"], "session": "s1", "pick": chosen["pick"]})
    from service import faq

    faq.add_alternate(connect(app.config["DATABASE"]), None, chosen["id"], CLARIFIED + "？")  # added meanwhile
    AuthActions(app, client).login()
    page = client.get("/staff/inbox").get_data(as_text=True)
    key = re.search(r'name="key" value="([^"]+)"', page[page.index("群众选择的建议问法"):]).group(1)
    done = _post(client, "/staff/inbox/suggestions", {"key": key, "entry_id": chosen["id"], "question": CLARIFIED,
                                                      "decision": "accepted"}).get_data(as_text=True)
    assert "无需重复添加" in done and "已采纳" in done
    assert "本期没有待审核的建议问法" in client.get("/staff/inbox").get_data(as_text=True)
    db = connect(app.config["DATABASE"])
    assert db.execute("select count(*) from alternates where entry_id = ?", [chosen["id"]]).fetchone()[0] >= 1
    assert db.execute("select decision from suggestion_decisions").fetchone()[0] == "accepted"


def test_a_suggestion_for_an_unpublished_entry_cannot_be_accepted(app) -> None:
    client = app.test_client()
    _, chosen = _clarify(client)
    client.post("/api/ask", json={"question": chosen["question"], "session": "s1", "pick": chosen["pick"]})
    db = connect(app.config["DATABASE"])
    db.execute("update entries set status = 'archived' where id = ?", [chosen["id"]])
    AuthActions(app, client).login()
    page = client.get("/staff/inbox").get_data(as_text=True)
    section = page[page.index("群众选择的建议问法"):page.index("未能答好的问题")]
    assert "条目未发布" in section and ">采纳<" not in section and ">拒绝<" in section
    key = re.search(r'name="key" value="([^"]+)"', section).group(1)
    refused = _post(client, "/staff/inbox/suggestions", {"key": key, "entry_id": chosen["id"], "question": CLARIFIED,
                                                         "decision": "accepted"}).get_data(as_text=True)
    assert "尚未发布或已归档" in refused
    assert db.execute("select count(*) from alternates where text = ?", [CLARIFIED]).fetchone()[0] == 0
