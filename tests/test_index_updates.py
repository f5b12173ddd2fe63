"""Knowledge changes reach the index in place; full builds run in the background; a new
process starts from a validated snapshot (service/index_keeper.py)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from service import faq, knowledge, related
from service.db import get_db, get_desk, keeper
from service.desk import Desk
from service.storage import connect

from conftest import make_app, sqlite_only

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [json.loads(line)["q"] for line in
             (ROOT / "tests" / "data" / "heldout_questions.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip()]


def ask(app, question: str) -> dict:  # type: ignore[no-untyped-def]
    response = app.test_client().post("/api/ask", json={"question": question})
    assert response.status_code == 200
    return response.get_json()


def decisions(desk: Desk) -> list[tuple[str, int | None]]:
    desk.clear_cache()
    return [(r.status, r.entry_id) for r in map(desk.ask, QUESTIONS)]


def test_saving_an_entry_updates_the_index_in_place(app) -> None:
    with app.app_context():
        db = get_db()
        before = get_desk()
        kept = keeper(app)
        full = kept.stats["full"]
        entry = faq.create_entry(db, None, {"question": "食堂的菜单在哪里公布", "answer": "食堂菜单每周一在后勤公告栏公布。"})
        desk = get_desk()
        assert desk is not before and desk.version > before.version
        assert kept.stats["full"] == full and kept.stats["updates"] >= 1
        assert entry in desk.entries and entry not in before.entries  # the old desk was not changed
    assert ask(app, "食堂的菜单在哪里公布")["entry_id"] == entry
    with app.app_context():
        db = get_db()
        faq.add_alternate(db, None, entry, "员工餐厅每周吃什么")
        assert ask(app, "员工餐厅每周吃什么")["entry_id"] == entry
        faq.set_status(db, None, entry, "archived")
        assert kept.stats["full"] == full
    assert ask(app, "食堂的菜单在哪里公布").get("entry_id") != entry


def test_an_update_in_place_decides_as_a_full_build_does(app) -> None:
    with app.app_context():
        db = get_db()
        get_desk()
        ids = [r[0] for r in db.execute("select id from entries where status = 'published' order by id limit 30")]
        for entry_id in ids:  # saved again unchanged: new documents, the old ones dead
            row = next(db.query("select question, answer, category, source, status, version from entries "
                                "where id = ?", [entry_id]))
            faq.update_entry(db, None, entry_id, {**row, "answer": row["answer"] + "。"}, row["version"])
        updated = get_desk()
        assert keeper(app).stats["full"] == 1 and updated.index.dead >= 30
        rebuilt = Desk.build(db, Path(app.config["KNOWLEDGE_DIR"]), updated.settings, updated.version)
    assert decisions(updated) == decisions(rebuilt)


def test_an_update_in_place_counts_character_pairs_as_a_full_build_does(app) -> None:
    """The character-pair statistics and the pinyin of new words, after phrasings added and
    removed, an entry rewritten, one archived and one created, equal a fresh build's."""
    import numpy as np

    with app.app_context():
        db = get_db()
        get_desk()
        ids = [r[0] for r in db.execute("select id from entries where status = 'published' order by id limit 6")]
        faq.add_alternate(db, None, ids[0], "窗口周六开不开门")
        faq.add_alternate(db, None, ids[0], "周末有人上班吗")
        alternate = db.execute("select id from alternates where entry_id = ? order by id limit 1", [ids[1]]).fetchone()
        if alternate:
            faq.remove_alternate(db, None, ids[1], alternate[0])
        row = next(db.query("select question, answer, category, source, status, version from entries where id = ?",
                            [ids[2]]))
        faq.update_entry(db, None, ids[2], {**row, "question": row["question"] + "（含邮寄申请）"}, row["version"])
        faq.set_status(db, None, ids[3], "archived")
        faq.create_entry(db, None, {"question": "档案查阅室的预约电话是多少", "answer": "请拨打档案馆服务电话。"})
        updated = get_desk()
        assert keeper(app).stats["full"] == 1 and keeper(app).stats["updates"] >= 1
        rebuilt = Desk.build(db, Path(app.config["KNOWLEDGE_DIR"]), updated.settings, updated.version)
    mine, theirs = updated.index, rebuilt.index
    assert mine._phrasings == theirs._phrasings
    assert np.array_equal(mine._gram_counts, theirs._gram_counts)
    assert np.array_equal(mine._gram_weights, theirs._gram_weights) and mine.gram_unknown == theirs.gram_unknown
    assert set(theirs._by_pinyin.keys()) <= set(mine._by_pinyin.keys())  # (it keeps the keys of words gone since)


def test_a_synonym_is_applied_in_place(app) -> None:
    with app.app_context():
        db = get_db()
        get_desk()
        assert ask(app, "信息公开申请要交工本费吗")  # warm
        faq.add_synonym(db, None, "工本费", "收费")
        desk = get_desk()
        assert keeper(app).stats["full"] == 1
        assert "工本费" in desk.pipeline.lexicon.synonyms
    reply = ask(app, "申请公开要交工本费吗")
    assert reply["status"] == "answered" and "费" in reply["answer"]


REPORT = ROOT / "tests" / "data" / "reports" / "gd-general-office-2021.txt"


def _report_questions() -> list[str]:
    return [json.loads(line)["q"] for line in REPORT.with_suffix(".questions.jsonl").read_text(
        encoding="utf-8").splitlines() if line.strip()]


def _replies(desk: Desk, questions: list[str]) -> list[tuple[str, int | None, str | None, float]]:
    desk.clear_cache()
    return [(r.status, r.entry_id, r.ref, round(r.confidence, 9)) for r in map(desk.ask, questions)]


def _ranks(desk: Desk) -> dict[str, int]:
    """Each live document's rank among equal scores."""
    index = desk.index
    return {d.key: int(index.ordinal[i]) for i, d in enumerate(index.docs) if index.groups[i] >= 0}


def test_a_report_import_adds_its_documents_in_place(app) -> None:
    """An import adds the report's rows and sentences to the index, and every question is
    answered as a build in full answers it, to the confidence; every document ranks among
    equals as in a build, also when a report of the 2019 format brings rows the others
    lack; importing the same report again replaces its sentences in place too. (Without
    every word weighed again for the documents added, 136 of these answers differed from
    a build's.)"""
    cases = _report_questions()
    questions = QUESTIONS + cases
    with app.app_context():
        db = get_db()
        old = get_desk()
        trial = ROOT / "tests" / "data" / "reports" / "province-stats-2020.txt"  # rows of its own
        knowledge.import_report(db, trial.read_bytes(), trial.name)
        assert len(list(get_desk()._row_docs())) > len(list(old._row_docs()))
        knowledge.import_report(db, REPORT.read_bytes(), REPORT.name)
        desk = get_desk()
        assert keeper(app).stats["full"] == 1 and keeper(app).stats["updates"] >= 2
        assert len(desk.reports) == len(old.reports) + 2 and len(old.index.docs) < len(desk.index.docs)
        assert any("广东" in alias for alias in desk.agencies) and not any("广东" in a for a in old.agencies)
        rebuilt = Desk.build(db, Path(app.config["KNOWLEDGE_DIR"]), desk.settings, desk.version)
        assert _ranks(desk) == _ranks(rebuilt)
        assert _replies(desk, questions) == _replies(rebuilt, questions)
        knowledge.import_report(db, REPORT.read_bytes(), REPORT.name)  # the same again: replaced
        again = get_desk()
        assert keeper(app).stats["full"] == 1 and again.index.dead > desk.index.dead
        assert len(again.reports) == len(desk.reports)
        rebuilt = Desk.build(db, Path(app.config["KNOWLEDGE_DIR"]), again.settings, again.version)
        assert _ranks(again) == _ranks(rebuilt)
        assert _replies(again, questions) == _replies(rebuilt, questions)
    assert sum(ask(app, q)["status"] == "answered" for q in cases) >= len(cases) // 2


def test_a_report_too_large_to_add_in_place_is_built_in_full(app, monkeypatch) -> None:
    from service import desk as desk_module

    with app.app_context():
        db = get_db()
        old = get_desk()
        monkeypatch.setattr(desk_module, "UPDATE_LIMIT", 5)  # the report has more sentences
        knowledge.import_report(db, REPORT.read_bytes(), REPORT.name)
        desk = get_desk()
        assert keeper(app).stats["full"] == 2 and len(desk.reports) == len(old.reports) + 1


def test_lexicon_changes_in_place_decide_as_a_full_build_does(app) -> None:
    with app.app_context():
        db = get_db()
        get_desk()
        faq.add_word(db, None, "公开申请")  # also in texts only once normalised (資訊公開申請)
        faq.add_synonym(db, None, "工本费", "收费")
        faq.add_paraphrase(db, None, "咋个弄", "怎么办理")
        updated = get_desk()
        assert keeper(app).stats["full"] == 1 and keeper(app).stats["updates"] >= 1
        rebuilt = Desk.build(db, Path(app.config["KNOWLEDGE_DIR"]), updated.settings, updated.version)
        pinyin = ["zhengfu xinxi gongkai shenqing zenme tijiao", "shenqing gongkai yao jiaofei ma"]
        assert [updated.pipeline.normalise(q) for q in pinyin] == [rebuilt.pipeline.normalise(q) for q in pinyin]
    assert decisions(updated) == decisions(rebuilt)


def test_a_topic_given_back_by_an_archived_entry_is_passed_on_again(app) -> None:
    with app.app_context():
        db = get_db()
        before = get_desk()
        assert before.foreign_topic("公租房怎么申请")
        entry = faq.create_entry(db, None, {"question": "公租房的申请信息在哪里公开", "answer": "在住房保障栏目公开。"})
        assert get_desk().foreign_topic("公租房怎么申请") is None  # the desk's own topic now
        faq.set_status(db, None, entry, "archived")
        desk = get_desk()
        assert desk.foreign_topic("公租房怎么申请") == before.foreign_topic("公租房怎么申请")
        assert keeper(app).stats["full"] == 1


def test_a_full_build_runs_in_the_background_while_the_old_desk_answers(tmp_path) -> None:
    app = make_app(tmp_path, INDEX_BACKGROUND_AFTER=0, INDEX_MIN_DOCUMENTS=0)
    report = (ROOT / "tests" / "data" / "reports" / "gd-general-office-2021.txt").read_bytes()
    with app.app_context():
        db = get_db()
        old = get_desk()
        knowledge.import_report(db, report, "gd-general-office-2021.txt")
        knowledge.bump_version(db)  # a change the log cannot describe (knowledge files, say)
        started = time.perf_counter()
        during = get_desk()
        assert during is old  # not waited for
        assert time.perf_counter() - started < 0.5
        deadline = time.time() + 60
        while keeper(app).building is not None and time.time() < deadline:
            time.sleep(0.05)
        new = get_desk()
        assert new is not old and new.version == knowledge.knowledge_version(db)
        assert keeper(app).stats["background"] == 1
        assert len(new.reports) == len(old.reports) + 1


def test_a_new_process_starts_from_the_snapshot(tmp_path) -> None:
    config = {"INDEX_SNAPSHOT_AFTER": 0, "INDEX_MIN_DOCUMENTS": 0}
    first = make_app(tmp_path, **config)
    with first.app_context():
        built = get_desk()
        path = next((tmp_path / "instance" / "index").glob("index-*.pickle"))
        faq.create_entry(get_db(), None, {"question": "食堂的菜单在哪里公布", "answer": "每周一在后勤公告栏公布。"})
    second = make_app(tmp_path, **config)  # same database and instance folder: a new worker
    with second.app_context():
        desk = get_desk()
        stats = keeper(second).stats
        assert stats["snapshot_loads"] == 1 and stats["full"] == 0
        assert stats["updates"] == 1  # the entry saved since the snapshot, applied in place
        assert desk.version == built.version + 1
    assert ask(second, "食堂的菜单在哪里公布")["status"] == "answered"
    assert decisions(desk)[:80] == decisions(built)[:80]
    # A snapshot the log cannot bring up to date (a restored backup, say) is not used.
    db = connect(first.config["DATABASE"])
    db.execute("update meta set value = cast(cast(value as integer) + 1 as text) where key = 'kb_version'")
    db.close()
    third = make_app(tmp_path, **config)
    with third.app_context():
        get_desk()
        assert keeper(third).stats["snapshot_loads"] == 0 and keeper(third).stats["full"] == 1
    assert path.exists()


def test_a_snapshot_left_half_written_is_removed_at_the_next_start(tmp_path) -> None:
    """A server stopped while it wrote a snapshot leaves its temporary file: removed once it
    has been left alone a while, never while another process may still be writing it."""
    import os

    config = {"INDEX_SNAPSHOT_AFTER": 0, "INDEX_MIN_DOCUMENTS": 0}
    with make_app(tmp_path, **config).app_context():
        get_desk()
    folder = tmp_path / "instance" / "index"
    stale, fresh = folder / ".index-stopped", folder / ".index-writing"
    stale.write_bytes(b"half a snapshot")
    fresh.write_bytes(b"being written")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    again = make_app(tmp_path, **config)
    with again.app_context():
        get_desk()
        assert keeper(again).stats["snapshot_loads"] == 1
    assert not stale.exists() and fresh.exists()
    assert len(list(folder.glob("index-*.pickle"))) == 1


def test_a_snapshot_keeps_the_related_entries(tmp_path, monkeypatch) -> None:
    """The process that saves a snapshot finds the related entries first and saves them
    with it; a process started from it has them at once, updated for what was saved since,
    as a fresh build finds them."""
    config = {"INDEX_SNAPSHOT_AFTER": 0, "INDEX_MIN_DOCUMENTS": 0}
    first = make_app(tmp_path, **config)
    with first.app_context():
        built = get_desk()
        entry = faq.create_entry(get_db(), None, {"question": "政府信息公开的收费标准在哪里查", "category": "费用",
                                                 "answer": "按页数计算，详见收费标准。"})
    monkeypatch.setattr(related, "BACKGROUND_ABOVE", 0)  # never found on demand in this test
    second = make_app(tmp_path, **config)
    with second.app_context():
        desk = get_desk()
        assert keeper(second).stats["snapshot_loads"] == 1 and keeper(second).stats["updates"] == 1
        found = related.for_desk(desk)
        assert found is not related.NONE  # restored and carried over, not found again
        fresh = related.Related(desk.entries, related.desk_words(desk))
        for entry_id in [*list(built.entries)[:40], entry]:
            assert found.of(entry_id) == fresh.of(entry_id)
        assert found.of(entry)  # the entry saved after the snapshot has relatives


def test_a_snapshot_of_other_files_or_code_is_not_used(tmp_path) -> None:
    first = make_app(tmp_path, INDEX_SNAPSHOT_AFTER=0, INDEX_MIN_DOCUMENTS=0)
    with first.app_context():
        get_desk()
    snapshot = next((tmp_path / "instance" / "index").glob("index-*.pickle"))
    snapshot.write_bytes(b"\x80\x05not a pickle")  # damaged: built again, never an error
    second = make_app(tmp_path, INDEX_SNAPSHOT_AFTER=0, INDEX_MIN_DOCUMENTS=0)
    with second.app_context():
        get_desk()
        assert keeper(second).stats["snapshot_loads"] == 0
    assert ask(second, "申请政府信息公开收费吗")["status"] == "answered"
    keeper(second)._fingerprint = "another build"
    with second.app_context():
        assert keeper(second)._load_snapshot(get_db()) is None


def test_related_entries_follow_an_update_in_place(app) -> None:
    with app.app_context():
        db = get_db()
        related.for_desk(get_desk())
        category = db.execute("select category from entries where status = 'published' limit 1").fetchone()[0]
        entry = faq.create_entry(db, None, {"question": "政府信息公开申请的处理费怎么缴纳",
                                            "answer": "按收费标准缴纳。", "category": category})
        gone = db.execute("select id from entries where status = 'published' and id != ? order by id desc limit 1",
                          [entry]).fetchone()[0]
        faq.set_status(db, None, gone, "archived")
        desk = get_desk()
        carried = related._BY_DESK.get(desk)
        assert carried is not None  # carried over from the previous desk, not built again
        fresh = related.Related(desk.entries, related.desk_words(desk))
        for entry_id in desk.entries:
            assert carried.of(entry_id) == fresh.of(entry_id), entry_id
        assert carried.of(entry) and all(gone not in carried.of(e) for e in desk.entries)


def test_a_large_knowledge_base_is_updated_in_the_background(tmp_path) -> None:
    app = make_app(tmp_path, INDEX_BACKGROUND_AFTER=0, INDEX_MIN_DOCUMENTS=0)  # as if a build took longer than that
    with app.app_context():
        db = get_db()
        old = get_desk()
        entry = faq.create_entry(db, None, {"question": "食堂的菜单在哪里公布", "answer": "每周一在后勤公告栏公布。"})
        assert get_desk() is old or get_desk().version > old.version  # never waited for
        deadline = time.time() + 30
        while get_desk().version == old.version and time.time() < deadline:
            time.sleep(0.02)
        desk = get_desk()
        assert entry in desk.entries and keeper(app).stats["full"] == 1 and keeper(app).stats["background"] == 0


def _refork_server(tmp_path: Path, settle: int):  # type: ignore[no-untyped-def]
    """``run.py`` under gunicorn, two workers, its master following the knowledge and
    forking fresh workers at most every ``settle`` seconds after saves in place; with how to
    ask it (the reply and the pid of the worker that answered)."""
    import os
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db_path = tmp_path / "refork.db"
    env = dict(os.environ, INQUIRY_SHOW_WORKER_PID="1", INQUIRY_INDEX_REFORK="1",
               INQUIRY_INDEX_REFORK_SETTLE=str(settle), INQUIRY_INSTANCE=str(tmp_path / "instance"))
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "run.py", "--port", str(port), "--db", str(db_path), "--workers", "2"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def ask_server(question: str) -> tuple[dict, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/ask", json.dumps({"question": question}).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read()), response.headers["X-Worker-Pid"]

    deadline = time.time() + 60
    while True:  # until it answers
        try:
            ask_server("申请政府信息公开收费吗")
            break
        except OSError:
            if time.time() > deadline:
                proc.terminate()
                raise AssertionError(log.read_text(errors="replace")) from None
            time.sleep(0.1)
    return proc, db_path, log, ask_server


def test_the_master_keeps_the_index_current_and_forks_fresh_workers(tmp_path) -> None:
    """Under gunicorn, a master following the knowledge re-forks its workers from its own
    current desk after a save, so that the workers share it again."""
    import subprocess

    proc, db_path, log, ask_server = _refork_server(tmp_path, 0)

    try:
        _, first_pid = ask_server("申请政府信息公开收费吗")
        pids_before = {ask_server("申请政府信息公开收费吗")[1] for _ in range(20)}
        db = connect(db_path)
        entry = faq.create_entry(db, None, {"question": "食堂的菜单在哪里公布", "answer": "每周一在后勤公告栏公布。"})
        db.close()
        deadline = time.time() + 30
        while True:
            reply, pid = ask_server("食堂的菜单在哪里公布")
            if pid not in pids_before | {first_pid}:
                break  # a worker forked after the save
            assert time.time() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
        assert reply["entry_id"] == entry  # forked with the master's desk, which has the entry
        # Brought in one at a time, each before an old one went: the server ends as it began,
        # two workers, both fresh.
        deadline = time.time() + 30
        while True:
            workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
            if len(workers) == 2 and not set(workers) & (pids_before | {first_pid}):
                break
            assert time.time() < deadline, (workers, log.read_text(errors="replace"))
            time.sleep(0.1)
        assert {ask_server("食堂的菜单在哪里公布")[1] for _ in range(20)} <= set(workers)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_masters_round_builds_what_fresh_workers_inherit(app) -> None:
    """The master's follower builds the pinyin tables and the related entries in the desk it
    forks workers from, so that no fresh worker builds them at its first question."""
    from service.db import master_round

    with app.app_context():
        db = get_db()
        faq.create_entry(db, None, {"question": "档案馆的开放时间", "answer": "工作日九点至五点。"})
        desk, ready = master_round(app, db)
        assert desk is keeper(app).desk and desk.version == knowledge.knowledge_version(db)
        assert ready and related.for_desk(desk) is not related.NONE
        assert desk.pipeline.pinyin._table is not None  # the knowledge's words, by their pinyin
        # The other bodies' topics as an update in place counts them, worked out once and
        # carried by every update after.
        cleaned = desk.__dict__.get("_clean_terms")
        assert cleaned is not None and "_foreign_tokens" in desk.__dict__
        desk.__dict__.pop("_clean_terms")  # as a desk restored from a snapshot
        faq.create_entry(db, None, {"question": "图书馆几点开门", "answer": "九点。"})
        newer = keeper(app).current(db)
        assert newer is not desk and newer.__dict__.get("_clean_terms") == cleaned


def test_a_master_that_follows_the_knowledge_forks_its_first_workers_with_what_it_shares(app, monkeypatch) -> None:
    """Before the first fork, the master of a large knowledge base (or INDEX_REFORK) finds the
    related entries and builds the pinyin tables, which a worker would otherwise build for
    itself (in the background at this size) until the master re-forked it."""
    import gc

    from service.db import warm_before_fork

    monkeypatch.setattr(related, "BACKGROUND_ABOVE", 0)  # related entries in the background, as at 100,000
    with app.app_context():
        assert not warm_before_fork(app)  # a small knowledge base: workers build their own, at once
        desk = get_desk()
        assert desk.pipeline.pinyin._table is None
        app.config["INDEX_REFORK"] = True
        try:
            assert warm_before_fork(app)
        finally:
            gc.unfreeze()
        assert keeper(app).desk is desk
        assert related.for_desk(desk) is not related.NONE
        assert desk.pipeline.pinyin._table is not None


def test_related_entries_found_in_the_background_reach_desks_updated_meanwhile(app, monkeypatch) -> None:
    monkeypatch.setattr(related, "BACKGROUND_ABOVE", 0)  # as at 100,000 entries
    words = related.desk_words

    def slowly(desk):  # type: ignore[no-untyped-def]
        time.sleep(1.0)  # as long as at 100,000 entries
        return words(desk)

    monkeypatch.setattr(related, "desk_words", slowly)
    with app.app_context():
        db = get_db()
        first = get_desk()
        assert related.for_desk(first) is related.NONE  # being found, in the background
        entry = faq.create_entry(db, None, {"question": "政府信息公开申请的处理费怎么缴纳", "answer": "按收费标准缴纳。"})
        second = get_desk()
        assert related.for_desk(second) is related.NONE  # waits for the first: one build at a time
        deadline = time.time() + 30
        while related._BY_DESK.get(second) is None and time.time() < deadline:
            time.sleep(0.02)
        carried = related.for_desk(second)
        assert carried is not related.NONE and entry in carried.entries
        fresh = related.Related(second.entries, words(second))
        assert all(carried.of(e) == fresh.of(e) for e in second.entries)


def test_candidates_scored_from_the_columns_equal_those_scored_from_their_documents(app) -> None:
    """The search reads the documents it was built with from its columns (so that a forked
    worker does not copy the pages of every candidate it scores), and documents added in
    place from their objects: both ways give the same candidates, scores and replies."""
    import copy
    from collections import OrderedDict

    from service.matcher import Index, _Columns

    with app.app_context():
        desk = get_desk()
        assert desk.index._columns.size == len(desk.index.docs) > 0
        by_objects = copy.copy(desk)
        index = Index.__new__(Index)
        index.__dict__.update(desk.index.__dict__)
        columns = _Columns.__new__(_Columns)
        columns.__dict__.update({k: v for k, v in desk.index._columns.__dict__.items()
                                 if k not in ("_phrasings", "_sums")})
        columns.size = 0  # every document through its object
        index._columns = columns
        by_objects.index = index
        by_objects._cache = OrderedDict()  # replies of its own
        desk.clear_cache()
        questions = QUESTIONS + ["申请公开要交费吗", "2023年收到多少申请", "政府信息公开工作年度报告在哪里看"]
        # And the citizens' questions of the test data: precision summed over all the
        # candidates at once must equal, to the last bit, the sums made one by one.
        data = Path(__file__).parent / "data"
        questions += [json.loads(line)["q"] for name in ("public_questions.jsonl", "heldout_questions.jsonl")
                      for line in (data / name).read_text(encoding="utf-8").splitlines() if line.strip()]
        for question in questions:
            mine, theirs = desk._analyse(question), by_objects._analyse(question)
            assert [(c.doc.key, c.score, c.coverage, c.precision, c.fuzzy, c.chars, c.near)
                    for c in mine.candidates] == \
                   [(c.doc.key, c.score, c.coverage, c.precision, c.fuzzy, c.chars, c.near)
                    for c in theirs.candidates], question
            assert desk.ask(question).public() == by_objects.ask(question).public(), question
        # The columns were read, and the copy read none.
        assert desk.index._columns._phrasings and desk.index._columns._sums.any()
        assert not columns.__dict__.get("_phrasings") and columns.__dict__.get("_sums") is None


def test_an_update_in_place_reweighs_the_words_in_the_columns(app) -> None:
    """Saving entries changes the weights of their words; the columns (which score the
    documents the index was built with) must weigh every word as the updated index does."""
    with app.app_context():
        db = get_db()
        before = get_desk().index
        everything = set(range(len(before._columns.vocab)))
        before._columns.closest_many(range(len(before.docs)), everything)  # totals kept, weights before
        assert before._columns._sums.any()
        # A word of one entry's question only: archived, no document uses it any more.
        lonely = next(w for w, (at, weight) in before.postings.items()
                      if len(at) == 1 and float(weight[0]) == 1.0 and w in before._columns.vocab
                      and before.docs[int(at[0])].kind == "faq")
        archived = before.docs[int(before.postings[lonely][0][0])].ref
        assert before._columns.weights[before._columns.vocab[lonely]] > 0
        faq.set_status(db, None, archived, "archived")
        ids = [r[0] for r in db.execute("select id from entries where status = 'published' order by id limit 30")]
        for entry_id in ids:
            row = next(db.query("select question, answer, category, source, status, version from entries "
                                "where id = ?", [entry_id]))
            faq.update_entry(db, None, entry_id, {**row, "question": row["question"] + "呢"}, row["version"])
        faq.create_entry(db, None, {"question": "食堂的菜单在哪里公布", "answer": "每周一在后勤公告栏公布。"})
        index = get_desk().index
        assert keeper(app).stats["full"] == 1 and index.dead >= 30
        columns = index._columns
        assert columns.size == len(before.docs) < len(index.docs)
        changed = 0
        for word, at in columns.vocab.items():
            assert columns.weights[at] == index.idf.get(word, 0.0), word
            changed += columns.weights[at] != before._columns.weights[at]
        assert changed > 0 and lonely not in index.idf and columns.weights[columns.vocab[lonely]] == 0.0
        # What a document's precision is summed from follows the new weights too: the
        # totals kept with the old weights are not carried over.
        assert columns.__dict__.get("_sums") is None
        from service.matcher import _closest
        compared = 0
        for i in range(columns.size):
            doc = index.docs[i]
            if index.groups[i] < 0 or doc.kind == "passage" or not doc.phrasing_tokens[0]:
                continue
            asked = set(doc.phrasing_tokens[0][:2])
            where, parts = index._phrasing_weights(doc)  # through the object, new weights
            expected = _closest({j for t in asked for j in where.get(t, ())}, parts, asked)
            assert columns.closest(i, {columns.vocab[t] for t in asked}) == expected, doc.key
            compared += 1
        assert compared > 50


def test_a_snapshot_scores_the_documents_added_in_place_from_columns(tmp_path) -> None:
    """A snapshot written after updates in place holds columns for every document, so the
    process that restores it reads none of them through their objects, and decides alike."""
    config = {"INDEX_SNAPSHOT_AFTER": 0, "INDEX_MIN_DOCUMENTS": 0}
    first = make_app(tmp_path, **config)
    with first.app_context():
        get_desk()
        faq.create_entry(get_db(), None, {"question": "食堂的菜单在哪里公布", "answer": "每周一在后勤公告栏公布。"})
        updated = get_desk()
        assert updated.index._columns.size < len(updated.index.docs)
        from service.index_keeper import version_stamp

        keeper(first).save(updated, next((tmp_path / "instance" / "index").glob("index-*.pickle")),
                           version_stamp(get_db(), updated.version))
    second = make_app(tmp_path, **config)
    with second.app_context():
        restored = get_desk()
        assert keeper(second).stats["snapshot_loads"] == 1 and restored.version == updated.version
        assert restored.index._columns.size == len(restored.index.docs) == len(updated.index.docs)
    assert decisions(restored) == decisions(updated)
    assert ask(second, "食堂的菜单在哪里公布")["status"] == "answered"


def test_a_master_saves_its_snapshot_and_rebuilds_a_crowded_index_in_its_own_thread(tmp_path, monkeypatch) -> None:
    """A pre-forking master's keeper (``background_after`` infinite: see db.follow_knowledge)
    starts no thread of its own: a thread running at a fork leaves the child a lock no one
    releases. Its snapshot save after updates in place, and the full build of an index
    crowded with replaced documents, run in the thread that asked for the desk."""
    import threading

    from service import index_keeper

    app = make_app(tmp_path, INDEX_SNAPSHOT_AFTER=0, INDEX_MIN_DOCUMENTS=0)
    started: list[str] = []
    real_thread = threading.Thread

    class Recorded(real_thread):  # type: ignore[misc, valid-type]
        def start(self) -> None:
            started.append(self.name)
            super().start()

    with app.app_context():
        db = get_db()
        kept = keeper(app)
        get_desk()
        kept.background_after = float("inf")  # as the master's follower sets it
        monkeypatch.setattr(index_keeper, "SNAPSHOT_EVERY", 1)
        monkeypatch.setattr(index_keeper.threading, "Thread", Recorded)
        snapshot = next((tmp_path / "instance" / "index").glob("index-*.pickle"))
        before = snapshot.stat().st_ino  # a save writes a new file in its place
        entry = faq.create_entry(db, None, {"question": "食堂的菜单在哪里公布", "answer": "每周一在后勤公告栏公布。"})
        desk = get_desk()
        assert entry in desk.entries and kept.stats["full"] == 1 and kept.stats["updates"] == 1
        assert snapshot.stat().st_ino != before  # saved before get_desk returned
        with snapshot.open("rb") as f:
            assert json.loads(f.readline())["version"] == desk.version
        monkeypatch.setattr(index_keeper.IndexKeeper, "_crowded", staticmethod(lambda desk: True))
        faq.add_alternate(db, None, entry, "员工餐厅每周吃什么")
        rebuilt = get_desk()
        assert kept.building is None and kept.stats["full"] == 2  # built in full, here
        assert kept.stats["updates"] == 1 and kept.updates == 0  # the update set aside is not counted
        assert rebuilt.index.dead == 0 and rebuilt.version == knowledge.knowledge_version(db)
        # Its snapshot waits for the master's next round, after the re-fork the workers wait for.
        with snapshot.open("rb") as f:
            assert json.loads(f.readline())["version"] == desk.version
        kept.save_pending()
        with snapshot.open("rb") as f:
            assert json.loads(f.readline())["version"] == rebuilt.version
    assert started == []


def test_a_worker_leaves_a_build_in_full_to_its_master(tmp_path, monkeypatch) -> None:
    """A worker of a master that follows the knowledge (``master_builds``, set at the fork)
    updates its desk in place as before, but leaves a build in full (a change the log cannot
    describe) to the master, which forks fresh workers with it: meanwhile it answers with
    what it has. Only once the master is overdue does it build its own."""
    from service import index_keeper

    app = make_app(tmp_path, INDEX_BACKGROUND_AFTER=0, INDEX_MIN_DOCUMENTS=0)  # large: in the background
    report = (ROOT / "tests" / "data" / "reports" / "gd-general-office-2021.txt").read_bytes()

    def settled(kept) -> None:  # type: ignore[no-untyped-def]
        deadline = time.time() + 60
        while kept.building is not None and time.time() < deadline:
            time.sleep(0.02)

    with app.app_context():
        db = get_db()
        kept = keeper(app)
        old = get_desk()
        kept.master_builds = True
        may_stop = kept.replaceable()  # as run.py asks, in a worker just forked
        assert may_stop()
        knowledge.import_report(db, report, "gd-general-office-2021.txt")
        knowledge.bump_version(db)  # and the knowledge files changed, say: a build in full
        assert get_desk() is old
        settled(kept)
        looks: list[int] = []
        start = kept._start_background
        monkeypatch.setattr(kept, "_start_background", lambda: (looks.append(1), start())[1])
        for _ in range(3):  # asked again and again, it neither builds nor looks again
            assert get_desk() is old
        assert looks == [] and kept.stats["full"] == 1 and kept.stats["background"] == 0
        assert kept.waits_for_master and not may_stop()  # nor does the memory guard stop it (run.py)
        # An entry saved after the import: still the master's to build (the log from this
        # desk's version reaches back over the import).
        faq.create_entry(db, None, {"question": "食堂的菜单在哪里公布", "answer": "每周一在后勤公告栏公布。"})
        get_desk()
        settled(kept)
        assert get_desk() is old and kept.stats["background"] == 0
        # The master is overdue: the worker builds its own.
        monkeypatch.setattr(index_keeper, "MASTER_BUILD_GRACE", 0.0)
        monkeypatch.setattr(index_keeper, "MASTER_BUILD_GRACE_BUILDS", 0)
        time.sleep(0.01)
        get_desk()
        settled(kept)
        built = get_desk()
        assert kept.stats["background"] == 1 and built.version == knowledge.knowledge_version(db)
        assert len(built.reports) == len(old.reports) + 1
        assert kept._left_to_master is None and not kept.waits_for_master
        assert not may_stop()  # it built an index of its own: the master forks after its own


def test_a_worker_whose_master_builds_still_updates_entries_in_place(tmp_path) -> None:
    app = make_app(tmp_path, INDEX_BACKGROUND_AFTER=0, INDEX_MIN_DOCUMENTS=0)
    with app.app_context():
        db = get_db()
        kept = keeper(app)
        old = get_desk()
        kept.master_builds = True
        entry = faq.create_entry(db, None, {"question": "食堂的菜单在哪里公布", "answer": "每周一在后勤公告栏公布。"})
        deadline = time.time() + 30
        while get_desk().version == old.version and time.time() < deadline:
            time.sleep(0.02)
        assert entry in get_desk().entries and kept.stats["updates"] == 1 and kept.stats["background"] == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own priority is Linux's")
def test_the_masters_follower_runs_below_the_workers() -> None:
    """Only the calling thread is lowered (the arbiter's, which forks the workers, is not)."""
    import os
    import threading

    from service.db import FOLLOWER_NICENESS, lower_priority

    main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[tuple[bool, int]] = []

    def follower() -> None:
        done = lower_priority(FOLLOWER_NICENESS)
        seen.append((done, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))

    thread = threading.Thread(target=follower)
    thread.start()
    thread.join()
    assert seen == [(True, max(main, FOLLOWER_NICENESS))]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main


def test_the_master_forks_fresh_workers_at_once_after_a_build_in_full(tmp_path) -> None:
    """Fresh workers are forked at most every INDEX_REFORK_SETTLE seconds after saves in
    place, but at once after the master built in full (after a change the log cannot
    describe): the workers left that build to it."""
    import subprocess

    proc, db_path, log, ask_server = _refork_server(tmp_path, 600)

    def workers() -> set[str]:
        return set(subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split())

    def fresh(than: set[str]) -> set[str]:
        """Two workers, none of them among ``than``: a roll done."""
        deadline = time.time() + 60
        while True:
            now = workers()
            if len(now) == 2 and not now & than:
                return now
            assert time.time() < deadline, (now, log.read_text(errors="replace"))
            time.sleep(0.1)

    try:
        first = workers()
        db = connect(db_path)
        faq.create_entry(db, None, {"question": "食堂的菜单在哪里公布", "answer": "每周一在后勤公告栏公布。"})
        second = fresh(first)  # the first roll: none before it
        report = ROOT / "tests" / "data" / "reports" / "gd-general-office-2021.txt"
        knowledge.import_report(db, report.read_bytes(), report.name)
        # Added in place by each worker: both answer its figure, and no worker is forked
        # (a build in full would have the master fork at once).
        answered: set[str] = set()
        deadline = time.time() + 30
        while answered != second:
            reply, pid = ask_server("广东省政府办公厅2021年本年新收政府信息公开申请多少件？")
            if "1314" in reply["answer"]:
                answered.add(pid)
            assert time.time() < deadline, (answered, second, log.read_text(errors="replace"))
        time.sleep(1)
        assert workers() == second
        knowledge.bump_version(db)  # the knowledge files changed, say: a build in full
        db.close()
        third = fresh(second)  # well within the 600 s
        reply, pid = ask_server("广东省政府办公厅2021年本年新收政府信息公开申请多少件？")
        assert "1314" in reply["answer"] and pid in third
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_build_reads_the_alternates_in_short_statements(app) -> None:
    """All of them, in entry order, whatever the chunk size, and no statement left open
    between two chunks."""
    from service.desk import _alternates_in_chunks

    with app.app_context():
        db = get_db()
        entry = db.execute("select id from entries order by id limit 1").fetchone()[0]
        for n in range(5):  # several phrasings of one entry, to be cut between two chunks
            faq.add_alternate(db, None, entry, f"第{n}种问法：办事大厅在几楼")
        whole = [tuple(r) for r in db.execute("select entry_id, text from alternates order by entry_id, id")]
        assert len(whole) > 10
        for size in (1, 3, 7, len(whole), len(whole) + 1):
            assert list(_alternates_in_chunks(db, size=size)) == whole


@sqlite_only
def test_a_build_lets_the_write_ahead_log_be_copied_back_meanwhile(tmp_path) -> None:
    """A build streaming the alternates holds no read that a checkpoint must wait for: a
    statement open all along let the log grow for the whole build, and the first worker to
    commit afterwards copied it all back, in a citizen's request."""
    import sqlite3

    from service.desk import _alternates_in_chunks

    app = make_app(tmp_path)
    with app.app_context():
        db = get_db()
        rows = _alternates_in_chunks(db, size=5)
        next(rows)  # a build part-way through the phrasings
        other = sqlite3.connect(app.config["DATABASE"], isolation_level=None)
        other.execute("insert into meta (key, value) values ('checkpoint_test', '1')")
        busy, log, copied = other.execute("pragma wal_checkpoint(passive)").fetchone()
        other.close()
        assert busy == 0 and log == copied and log > 0
        assert len(list(rows)) > 5


def test_a_report_replaced_in_place_drops_the_words_only_its_old_sentences_used(app, monkeypatch) -> None:
    """A copy without a paragraph replaces the report: the paragraph's own words are no
    longer the knowledge's (as after a build), even when the other words keep their weights
    (a change too small to weigh every word again)."""
    from service import matcher

    text = REPORT.read_text(encoding="utf-8")
    paragraph = next(line for line in text.splitlines() if "平台建设" in line)
    with app.app_context():
        db = get_db()
        get_desk()
        knowledge.import_report(db, text.encode("utf-8"), REPORT.name)
        first = get_desk()
        monkeypatch.setattr(matcher, "WEIGHT_DRIFT", 1.0)
        knowledge.import_report(db, text.replace(paragraph, "").encode("utf-8"), REPORT.name)
        again = get_desk()
        assert keeper(app).stats["full"] == 1 and len(again.passages) < len(first.passages)
        rebuilt = Desk.build(db, Path(app.config["KNOWLEDGE_DIR"]), again.settings, again.version)
        dropped = set(first.index.idf) - set(rebuilt.index.idf)
        assert dropped and set(again.index.idf) == set(rebuilt.index.idf)


def test_precision_of_a_document_named_twice_is_its_own_each_time(app) -> None:
    with app.app_context():
        columns = get_desk().index._columns

        def words(t: int) -> set[int]:  # the word numbers of word tuple (phrasing) t
            return set(columns.words[columns.word_at[t]:columns.word_at[t + 1]].tolist())

        # Words of a document's first phrasing that none of its others use: one phrasing shares
        # words with the question, so the two namings' runs of shared words meet.
        doc, asked = next((i, own) for i in range(columns.size) if columns.kinds[i] == "faq"
                          for own in [words(columns.tokens_at[i]) - set().union(
                              *(words(t) for t in range(columns.tokens_at[i] + 1, columns.tokens_at[i + 1])))]
                          if own)
        alone = columns.closest(doc, asked)
        assert alone[0] > 0
        assert columns.closest_many([doc, doc, doc + 1, doc], asked) == \
            [alone, alone, columns.closest(doc + 1, asked), alone]
