"""Disclosure applications in the database: conversion, clock events, outcome, history, table."""
from __future__ import annotations

from datetime import date

import pytest

from service import applications as apps
from service.deadlines import WorkCalendar
from service.storage import connect
from service.tickets import open_ticket

USER = {"id": 1, "username": "reviewer1"}
CAL = WorkCalendar()


@pytest.fixture
def db(app):  # type: ignore[no-untyped-def]
    return connect(app.config["DATABASE"])


def _ticket(db, question: str = "我想申请公开某统计调查的审批文件") -> int:  # type: ignore[no-untyped-def]
    return open_ticket(db, question=question, normalised=question, session=None, candidates=[])["id"]


def _row(db, ticket_id: int) -> dict:  # type: ignore[no-untyped-def]
    return next(db.query("select * from tickets where id = ?", [ticket_id]))


def test_convert_then_deadline_with_supplement_extension_and_pause(db) -> None:
    tid = _ticket(db)
    apps.convert(db, tid, USER, applicant_type="business", channel="post", received_on="2026-02-06")
    assert apps.deadline_of(db, CAL, _row(db, tid)).due == date(2026, 3, 12)
    apps.request_supplement(db, tid, USER, "2026-02-10", "请明确所需文件名称")
    assert apps.deadline_of(db, CAL, _row(db, tid)).state == "waiting_supplement"
    assert _row(db, tid)["status"] == "waiting"
    apps.supplement_received(db, tid, USER, "2026-03-16")
    assert apps.deadline_of(db, CAL, _row(db, tid)).due == date(2026, 4, 14)
    apps.extend(db, tid, USER, 5, "需要调取历史档案")
    with pytest.raises(apps.ApplicationError, match="只能延长一次"):
        apps.extend(db, tid, USER, 5, "再延长")
    apps.start_pause(db, tid, USER, "third_party", "2026-03-20", "涉及企业商业秘密")
    assert apps.deadline_of(db, CAL, _row(db, tid)).state == "paused"
    apps.end_pause(db, tid, USER, "2026-03-27")
    due = apps.deadline_of(db, CAL, _row(db, tid)).due
    # 20 + 5 working days from 16 Mar, with 23-27 Mar (5 working days) paused and Qingming off.
    assert due == date(2026, 4, 28)
    actions = [r[0] for r in db.execute("select action from ticket_events where ticket_id = ? order by id", [tid])]
    assert actions[-6:] == ["convert", "supplement_requested", "supplement_received", "extend", "pause", "resume"]


def test_close_with_exactly_one_outcome(db) -> None:
    tid = _ticket(db)
    with pytest.raises(apps.ApplicationError, match="不是政府信息公开申请"):
        apps.close(db, tid, USER, "disclosed", "2026-03-01")
    apps.convert(db, tid, USER, applicant_type="natural", channel="online", received_on="2026-03-02")
    with pytest.raises(apps.ApplicationError, match="办理结果"):
        apps.close(db, tid, USER, "somewhere", "2026-03-10")
    with pytest.raises(apps.ApplicationError, match="早于"):
        apps.close(db, tid, USER, "disclosed", "2026-03-01")
    apps.close(db, tid, USER, "withheld_1", "2026-03-10")
    row = _row(db, tid)
    assert (row["outcome"], row["outcome_on"], row["status"]) == ("withheld_1", "2026-03-10", "closed")
    with pytest.raises(apps.ApplicationError, match="已办结"):
        apps.close(db, tid, USER, "disclosed", "2026-03-11")


def test_closing_from_the_desk_stores_the_reply_the_applicant_reads(db) -> None:
    tid = _ticket(db)
    apps.convert(db, tid, USER, applicant_type="natural", channel="online", received_on="2026-03-02")
    for empty in ("", "  \n ", "\t"):
        with pytest.raises(apps.ApplicationError, match="请填写给申请人的答复"):
            apps.close(db, tid, USER, "disclosed", "2026-03-10", reply=empty)
    with pytest.raises(apps.ApplicationError, match="不能超过2000字"):
        apps.close(db, tid, USER, "disclosed", "2026-03-10", reply="答" * 2001)
    assert _row(db, tid)["outcome"] is None
    apps.close(db, tid, USER, "disclosed", "2026-03-10", reply="  您申请的信息予以公开，见附件。 ")
    row = _row(db, tid)
    assert (row["outcome"], row["reply"], row["replied_by"]) == ("disclosed", "您申请的信息予以公开，见附件。", 1)
    detail = db.execute("select detail from ticket_events where ticket_id = ? and action = 'close_application'",
                        [tid]).fetchone()[0]
    assert "答复：您申请的信息予以公开" in detail


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"applicant_type": "alien", "channel": "post", "received_on": "2026-01-05"}, "申请人类型"),
    ({"applicant_type": "natural", "channel": "pigeon", "received_on": "2026-01-05"}, "提交方式"),
    ({"applicant_type": "natural", "channel": "post", "received_on": "2026-13-05"}, "有效日期"),
    ({"applicant_type": "natural", "channel": "post", "received_on": "2999-01-01"}, "晚于今天"),
])
def test_bad_conversion_is_refused(db, kwargs, message: str) -> None:
    with pytest.raises(apps.ApplicationError, match=message):
        apps.convert(db, _ticket(db), USER, **kwargs)


def test_inquiry_marking_and_year_table(db) -> None:
    inquiry = _ticket(db, "统计局几点下班")
    apps.mark_inquiry(db, inquiry, USER)
    assert _row(db, inquiry)["kind"] == "inquiry"
    done = _ticket(db, "申请A")
    apps.convert(db, done, USER, applicant_type="research", channel="in_person", received_on="2025-12-20")
    apps.close(db, done, USER, "partial", "2026-01-08")
    still_open = _ticket(db, "申请B")
    apps.convert(db, still_open, USER, applicant_type="natural", channel="online", received_on="2025-11-03")
    table_2025 = apps.table_for_year(db, 2025)
    assert table_2025.value("new", "total") == 2 and table_2025.value("carried_out", "total") == 2
    table_2026 = apps.table_for_year(db, 2026)
    assert table_2026.value("carried_in", "research") == 1 and table_2026.value("partial", "research") == 1
    assert table_2026.value("carried_out", "natural") == 1 and table_2026.problems == []
