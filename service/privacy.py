"""Personal numbers typed into a question are masked before anything stores it (no Flask).

A citizen may write 我的手机号13812345678 or an ID-card number into a question; the question
is kept in the question log and in tickets, shown to staff and may be promoted into a
public phrasing. Only the shape survives (138****5678), as on a bank statement: enough to
tell staff that a number was given, not enough to use it.
"""
from __future__ import annotations

import re

_D = r"[0-9０-９]"
_NOT_DIGIT_BEFORE = r"(?<![0-9０-９A-Za-z])"
_NOT_DIGIT_AFTER = r"(?![0-9０-９])"

# Resident ID: 18 digits (last may be X) or the old 15; bank cards and other long numbers.
_ID_CARD = re.compile(_NOT_DIGIT_BEFORE + rf"({_D}{{6}})({_D}{{8}}|{_D}{{5}})({_D}{{3}}[0-9０-９Xx×Ｘｘ]|{_D}{{1}})"
                      + r"(?![0-9０-９A-Za-z])")
_LONG_NUMBER = re.compile(_NOT_DIGIT_BEFORE + rf"({_D}{{4}})({_D}{{4,}})({_D}{{4}})" + _NOT_DIGIT_AFTER)
# Mainland mobiles, with an optional +86 and spaces or dashes between groups.
_MOBILE = re.compile(_NOT_DIGIT_BEFORE + rf"((?:\+?86[\s\-]?)?1[3-9０-９]{_D})[\s\-]?({_D}{{4}})[\s\-]?({_D}{{4}})"
                     + _NOT_DIGIT_AFTER)
# Landlines with an area code: 010-68783311, (0571) 8888 1234.
_LANDLINE = re.compile(_NOT_DIGIT_BEFORE + rf"([(（]?0{_D}{{2,3}}[)）]?[\s\-]?)({_D}{{3,4}})[\s\-]?({_D}{{4}})"
                       + _NOT_DIGIT_AFTER)
_EMAIL = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*(@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})")


def _stars(text: str) -> str:
    return "*" * len(re.sub(r"[\s\-]", "", text))


def mask_personal(text: str) -> str:
    """The text with ID-card, bank-card, phone numbers and e-mail addresses masked."""
    if not text:
        return text
    text = _EMAIL.sub(lambda m: m.group(1) + "***" + m.group(2), text)
    text = _ID_CARD.sub(lambda m: m.group(1) + _stars(m.group(2)) + m.group(3), text)
    text = _LONG_NUMBER.sub(lambda m: m.group(1) + _stars(m.group(2)) + m.group(3), text)
    text = _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(3), text)
    text = _LANDLINE.sub(lambda m: m.group(1) + "****" + m.group(3), text)
    return text
