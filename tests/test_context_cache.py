"""A question asked in a conversation is answered from the reply cache when what was asked
before cannot change its reading (service/desk.py, Desk.ask).

The chat sends its session with every question, so after the first answer every question
comes with a context. Only a question that refers back to the FAQ entry answered last (这个
怎么收费), or that could follow up the figure asked last (那2020年呢, 合起来多少), is read with
it; any other gets the reply it would get if asked first, from the cache."""
from __future__ import annotations

from typing import Any

import pytest

from service.db import get_desk

FIGURE = "2021年国家统计局一共收到多少政府信息公开申请？"
OWN = "申请政府信息公开要收费吗？"


@pytest.fixture
def desk(app):  # type: ignore[no-untyped-def]
    with app.app_context():
        yield get_desk()


def _counting(desk: Any) -> list[str]:
    """The questions the desk reads (analyses) from now on."""
    read: list[str] = []
    analyse = desk._analyse

    def counted(question: str) -> Any:
        read.append(question)
        return analyse(question)

    desk._analyse = counted
    return read


def _same(a: Any, b: Any) -> bool:
    return (a.public(), a.ref, a.reason, a.candidates) == (b.public(), b.ref, b.reason, b.candidates)


def test_after_a_figure_a_question_of_its_own_comes_from_the_cache(desk) -> None:  # type: ignore[no-untyped-def]
    figure = desk.ask(FIGURE)
    assert figure.ref.startswith("fact:")
    context = desk.context_from_ref(figure.ref)
    alone = desk.ask(OWN)
    read = _counting(desk)
    after = desk.ask(OWN, context)
    assert read == [] and _same(after, alone) and _same(after, desk._ask(OWN, context))


@pytest.mark.parametrize("follow_up", ["那2020年呢？", "其中自然人提出的有多少？"])
def test_after_a_figure_a_follow_up_is_still_read_with_it(desk, follow_up: str) -> None:  # type: ignore[no-untyped-def]
    context = desk.context_from_ref(desk.ask(FIGURE).ref)
    alone = desk.ask(follow_up)
    assert alone.may_follow_a_figure
    read = _counting(desk)
    after = desk.ask(follow_up, context)
    assert read, "read again, with the figure"
    assert _same(after, desk._ask(follow_up, context))
    assert not _same(after, alone)  # the figure before is what it asks about


def test_after_an_faq_answer_only_a_question_that_refers_back_is_read_with_it(desk) -> None:  # type: ignore[no-untyped-def]
    first = desk.ask("政府信息公开申请可以在网上提交吗？")
    assert first.ref.startswith("faq:")
    context = desk.context_from_ref(first.ref)
    desk.ask(OWN)
    read = _counting(desk)
    after = desk.ask(OWN, context)
    assert read == []
    assert _same(after, desk._ask(OWN, context))
    desk.ask("这个要收费吗")  # in the cache, as asked first
    read.clear()
    back = desk.ask("这个要收费吗", context)
    assert read, "a question that points back is read with the entry answered last"
    assert _same(back, desk._ask("这个要收费吗", context))


def test_in_the_chat_a_session_asks_from_the_cache(client) -> None:  # type: ignore[no-untyped-def]
    client.post("/api/ask", json={"question": FIGURE, "session": "s-1"})
    client.post("/api/ask", json={"question": OWN, "session": "s-2"})
    with client.application.app_context():
        desk = get_desk()
        read = _counting(desk)
        reply = client.post("/api/ask", json={"question": OWN, "session": "s-1"}).get_json()
    assert reply["status"] == "answered" and read == []


def test_every_reply_is_the_one_read_with_the_context(desk) -> None:  # type: ignore[no-untyped-def]
    """Questions of the project's own data after contexts of one to three answers before
    (FAQ entries and figures, mixed): the reply, from the cache or not, is always the one
    the context path gives."""
    import json
    import random
    from pathlib import Path

    data = Path(__file__).resolve().parent / "data"
    questions = [json.loads(line)["q"] for name in ("public_questions.jsonl", "eval/part_f.jsonl")
                 for line in (data / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    questions += ["那2020年呢", "合起来多少", "其中法人呢", "这个怎么收费", "那最多延多久", "谢谢，那2019年的呢",
                  "申请要多久？另外2021年收到多少申请？", "2021年国家统计局总共有多少件行政复议？"]
    refs = sorted({r.ref for r in (desk.ask(q) for q in questions)
                   if r.ref and r.ref.startswith(("fact:", "decline:", "faq:"))})
    assert sum(r.startswith("fact:") for r in refs) >= 5 and sum(r.startswith("faq:") for r in refs) >= 5
    rnd = random.Random(13)
    chains = refs + ["|".join(rnd.sample(refs, k)) for k in (2, 3) for _ in range(60)]
    compared = 0
    for _ in range(400):
        question, context = rnd.choice(questions), desk.context_from_ref(rnd.choice(chains))
        if context is None:
            continue
        got, truth = desk.ask(question, context), desk._ask(question, context)
        assert _same(got, truth) and got.may_follow_a_figure == truth.may_follow_a_figure, (question, context)
        compared += 1
    assert compared >= 300
