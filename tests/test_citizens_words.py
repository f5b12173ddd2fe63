"""Citizens' own words through the API: stories, two questions, small talk, a request for a
person, follow-ups, and other agencies' reports named as people name them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.evaluation import Report, judge

REPORTS = Path(__file__).resolve().parent / "data" / "reports"


def _ask(client, question: str, session: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    body = {"question": question}
    if session:
        body["session"] = session
    response = client.post("/api/ask", json=body)
    assert response.status_code == 200
    return response.get_json()


def test_a_request_for_a_person_gets_the_channels_and_no_ticket(client) -> None:
    reply = _ask(client, "转人工", "handoff")
    assert reply["status"] == "answered" and reply["kind"] == "handoff" and reply["ticket"] is None
    assert "描述您的问题" in reply["answer"] and "北京市西城区月坛南街57号" in reply["answer"]
    # What the citizen then describes is handled as a question (a ticket if unanswered).
    after = _ask(client, "统计局机关食堂几点开饭", "handoff")
    assert after["status"] == "escalated" and after["ticket"]["code"]


@pytest.mark.parametrize("message", ["你好呀", "谢谢啦🙏", "晚安", "好嘞", "行吧", "好的收到", "👍", "你真棒", "答非所问"])
def test_small_talk_never_opens_a_ticket(client, message: str) -> None:
    reply = _ask(client, message)
    assert reply["status"] == "answered" and reply["kind"] == "chitchat" and reply["ticket"] is None


def test_two_questions_answer_the_first_and_offer_the_second(client) -> None:
    reply = _ask(client, "申请信息公开要收费吗？答复期限是多久？")
    assert reply["status"] == "answered" and reply["key"] == "faq:is-it-free"
    assert "faq:reply-deadline" in [s.get("key") for s in reply["suggestions"]]


def test_a_figure_follow_up_can_ask_for_the_sum_of_the_last_two(client) -> None:
    assert "1" in _ask(client, "2021年国家统计局未经复议直接起诉的行政诉讼有几件", "sum")["answer"]
    second = _ask(client, "复议后起诉的呢", "sum")
    assert second["key"] == "fact:litigation_after_review/total" and "5" in second["answer"]
    total = _ask(client, "合起来多少", "sum")
    assert total["status"] == "answered" and "合计6件" in total["answer"]


def test_a_column_follow_up_keeps_the_row(client) -> None:
    assert "103" in _ask(client, "2021年国家统计局予以公开的申请有多少件", "col")["answer"]
    reply = _ask(client, "那法律服务机构呢", "col")
    assert reply["key"] == "fact:disclosed/legal_services" and "8" in reply["answer"]


def test_a_short_follow_up_the_desk_answers_on_its_own_words_is_a_new_question(client) -> None:
    first = _ask(client, "申请信息公开要收费吗？", "own")
    assert first["key"] == "faq:is-it-free"
    # 那这个 refers back, but the question names its own topic: read with the last one, the
    # two entries would tie and the citizen would be asked to choose.
    reply = _ask(client, "那这个收费的标准是多少？", "own")
    assert reply["status"] == "answered" and reply["key"] == "faq:fee-standards", reply
    # One that names nothing of its own (需要多长时间: only 期限) still refers back: no
    # answer about a disclosure request's deadline after a question about survey licences.
    first = _ask(client, "开展涉外调查需要什么许可？", "generic")
    assert first["key"] == "faq:foreign-survey-licence", first
    reply = _ask(client, "那这个需要多长时间", "generic")
    assert reply["key"] != "faq:reply-deadline", reply


def test_a_new_complete_question_starts_afresh(client) -> None:
    _ask(client, "2021年收到多少政府信息公开申请", "fresh")
    reply = _ask(client, "申请政府信息公开要收费吗", "fresh")
    assert reply["kind"] != "fact"


def test_a_blank_cell_is_not_stated_and_yuan_stay_yuan(runner, client) -> None:
    result = runner.invoke(args=["import-report", str(REPORTS / "anji-county-2022.html")])
    assert result.exit_code == 0, result.output
    fees = _ask(client, "安吉县2022年行政事业性收费金额是多少")
    assert fees["status"] == "answered" and "251000元" in fees["answer"] and "万元" not in fees["answer"]
    furniture = _ask(client, "安吉县2022年浏览次数是多少")
    assert "1234" not in furniture["answer"]


@pytest.mark.parametrize("stem", ["suzhou-office-2023", "anji-county-2022", "gd-general-office-2021"])
def test_another_agencys_report_by_its_usual_names(runner, client, stem: str) -> None:
    """Each foreign report, imported by the CLI, answers its own checks by the names people
    use: never a wrong figure, and most answered."""
    [path] = [p for p in REPORTS.glob(stem + ".*") if p.suffix in (".docx", ".html", ".txt")]
    result = runner.invoke(args=["import-report", str(path)])
    assert result.exit_code == 0, result.output
    cases = [json.loads(line) for line in (REPORTS / f"{stem}.questions.jsonl").read_text("utf-8").splitlines()
             if line.strip()]
    report = Report()
    for i, case in enumerate(cases):
        reply = _ask(client, case["q"], f"{stem}-{i}")
        report.rows.append((case, reply, judge(case, reply)))
    tally = report.tally()
    wrong = [(c["id"], c["q"], r["answer"][:40]) for c, r, v in report.rows if v.outcome == "wrong"]
    assert not wrong, wrong
    assert tally.accuracy >= 0.6, tally.line()
