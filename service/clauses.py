"""Finding the question inside a long message.

Pure Python (no Flask). Citizens often tell a story first (我去年在网上提交了申请，等了一个
多月……) and ask at the end, or ask two things at once (多久能答复？要不要交钱？). The
message is cut into clauses; the clauses that *ask* (a question mark, a question word, a
final 吗/呢) are kept apart from those that narrate, so each asking clause can be matched
on its own, with the clause before it as context.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Sentence ends always cut; commas cut only a long sentence.
_SENTENCE = re.compile(r"(?<=[。！？!?；;\n])|(?<=\.\s)")
_COMMA = re.compile(r"(?<=[，,、：:])")
# Words that make a clause ask (after the paraphrase lexicon has rewritten 点样, 咋, 啥 ...).
ASKING = ("怎么", "怎样", "如何", "什么", "哪", "吗", "么", "呢", "能否", "可否", "是否", "能不能", "可不可以",
          "可以不", "行不行", "有没有", "多久", "多长", "多少", "几", "要不要", "需不需要", "需要不", "用不用",
          "会不会", "算不算", "是不是", "咋", "啥", "请问", "想知道", "想问", "想了解", "咨询", "为什么", "为何",
          "谁", "何时", "多大", "怎么办", "不知道", "求助", "告诉我", "?", "？")
MIN_CLAUSE = 4
# A parenthesised aside: （含直接起诉和复议后起诉）, (公开加部分公开).
_ASIDE = re.compile(r"[（(][^（）()]{1,40}[）)]")
LONG = 40  # characters: a message this long may hide its question


@dataclass
class Clause:
    """One clause of a message and whether it asks."""

    text: str
    asks: bool
    position: int


def split_clauses(text: str) -> list[Clause]:
    """The clauses of a message, in order; a clause shorter than MIN_CLAUSE joins the next."""
    pieces: list[str] = []
    for sentence in _SENTENCE.split(text):
        sentence = sentence.strip()
        if not sentence:
            continue
        if len(sentence) > 30:
            pieces += [p.strip() for p in _COMMA.split(sentence) if p.strip()]
        else:
            pieces.append(sentence)
    merged: list[str] = []
    carry = ""
    for piece in pieces:
        piece = carry + piece
        if len(re.sub(r"\W", "", piece)) < MIN_CLAUSE:
            carry = piece
            continue
        carry = ""
        merged.append(piece)
    if carry:
        if merged:
            merged[-1] += carry
        else:
            merged.append(carry)
    return [Clause(c, asks(c), i) for i, c in enumerate(merged)]


def asks(clause: str) -> bool:
    """Does this clause ask something (rather than narrate)?"""
    return any(w in clause for w in ASKING)


def separate_questions(text: str) -> list[str]:
    """The questions of a message that asks several things in separate sentences
    (多久能答复？要不要交钱？), each with the narrating sentence before it; [] otherwise."""
    sentences = [s.strip() for s in _SENTENCE.split(text) if len(re.sub(r"\W", "", s)) >= MIN_CLAUSE]
    out: list[str] = []
    context = ""
    for sentence in sentences:
        if asks(sentence):
            out.append(context + sentence)
            context = ""
        else:
            context = sentence
    return out if len(out) >= 2 else []


def focus_texts(text: str) -> list[str]:
    """The parts of a long message worth matching on their own: each asking clause, and each
    asking clause with the clause before it (which often names the topic: 申请被要求补正了，
    这种情况怎么办). Empty for a short message or one with a single clause."""
    if len(re.sub(r"\W", "", text)) < LONG:
        return []
    clauses = split_clauses(text)
    if len(clauses) < 2:
        return []
    out: list[str] = []
    for i, clause in enumerate(clauses):
        if not clause.asks:
            continue
        out.append(clause.text)
        if i > 0:
            out.append(clauses[i - 1].text + clause.text)
    if not out:  # nothing asks: the last clause is the likeliest question
        out.append(clauses[-1].text)
    return list(dict.fromkeys(out))


def asking_in_context(text: str) -> list[str]:
    """The asking clauses of a long message, each with the clause before it (the readings of
    :func:`focus_texts` that carry their own context)."""
    if len(re.sub(r"\W", "", text)) < LONG:
        return []
    clauses = split_clauses(text)
    return [clauses[i - 1].text + clauses[i].text for i in range(1, len(clauses)) if clauses[i].asks]


def asking_part(text: str) -> str:
    """A long message cut down to its asking clauses (the whole text if short or if none asks)."""
    if len(re.sub(r"\W", "", text)) < LONG:
        return text
    asking = [c.text for c in split_clauses(text) if c.asks]
    return "".join(asking) or text


def drop_asides(text: str) -> str:
    """The message without its parenthesised asides, which explain rather than ask (行政诉讼
    一共多少件（含直接起诉和复议后起诉）asks for the total, not for 复议后起诉); unchanged
    when the asides are most of what it says."""
    return _unless_most_goes(_ASIDE.sub("", text), text)


def _unless_most_goes(bare: str, text: str) -> str:
    """``bare``, the text with something taken out, unless too little of ``text`` is left."""
    return bare if len(re.sub(r"\W", "", bare)) >= MIN_CLAUSE else text


# A contact detail's value: a phone number (as typed, or masked: 138****5678) that no other
# figure follows (电话13812345678 2023年的年报 keeps its year), or an e-mail address
# (a***@qq.com) in Latin letters, which Chinese text around it does not extend.
_CONTACT_VALUE = (r"(?:[0-9０-９*＊][0-9０-９*＊\-－—\s]{4,}[0-9０-９*＊](?![0-9０-９*＊年月日号])"
                  r"|[A-Za-z0-9._%+*＊-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")


def contact_pattern(labels: tuple[str, ...]) -> re.Pattern[str] | None:
    """The pattern of a contact detail left in a message: an optional 我的/本人, one of
    ``labels`` (longest first), an optional 是/为/colon, and the number or address."""
    if not labels:
        return None
    names = "|".join(re.escape(w) for w in sorted(set(labels), key=len, reverse=True))
    return re.compile(rf"(?:我的|我们的|本人的?|我)?(?:{names})(?:号码)?(?:是|为)?[：:\s]*{_CONTACT_VALUE}",
                      re.IGNORECASE)


def drop_contact_details(text: str, pattern: re.Pattern[str] | None) -> str:
    """The message without the contact details it leaves (我的手机号138****5678，申请公开要多久
    asks how long an application takes, not about a phone line); unchanged when they are
    most of what it says. Also for a compact text (punctuation and spaces removed)."""
    return text if pattern is None else _unless_most_goes(pattern.sub("", text), text)
