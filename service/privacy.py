"""Personal numbers typed into a question are masked before anything stores it (no Flask).

A citizen may write 我的手机号13812345678 or an ID-card number into a question; the question
is kept in the question log and in tickets, shown to staff and may be promoted into a
public phrasing. Only the shape survives (138****5678), as on a bank statement: enough to
tell staff that a number was given, not enough to use it.

Numbers are found as runs of digits (ASCII or full-width) that may be split into groups
by a space, a dot or a dash, and masked only when they are one of these: a mainland
mobile (with or without +86), a landline with its area code, a resident ID (18 digits
with a real birth date and the right check character, or the old 15), or a bank card
(16 to 19 digits passing the Luhn check). Years, report figures, document numbers and
tracking numbers stay as they are.
"""
from __future__ import annotations

import re
from datetime import date

_FULL = str.maketrans("０１２３４５６７８９ＸｘＸ", "0123456789XxX")
_DIGIT = "[0-9０-９]"
# A run of digit groups, with an optional leading +86 and a trailing ID check letter.
_RUN = re.compile(rf"(?<![0-9０-９A-Za-z])(?:[+＋]?(?:86|８６)[\s\-]?)?[(（]?{_DIGIT}+(?:[)）]?[\s.\-]?{_DIGIT}+)*"
                  r"[XxＸｘ]?(?![0-9０-９A-Za-z])")
_EMAIL = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*(@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})")
# Compiled with the module (every pattern here): a pre-forking server's master then holds
# them for all its workers, rather than each worker compiling them at a citizen's question.
_MOBILE_86 = re.compile(r"861[3-9]\d{9}")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0[1-9]\d{9,10}")  # area code and a 7- or 8-digit number
_NOT_DIGIT = re.compile(r"[^0-9Xx]")
_GROUP = re.compile(r"[0-9０-９]+[XxＸｘ]?")


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        born = date(year, month, day)
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= date.today()


def _is_id(digits: str) -> bool:
    """A resident ID: a region code (first digit 1-8) and a real birth date. The check
    character is not required: a mistyped ID is still someone's."""
    if len(digits) == 18 and digits[:17].isdigit() and digits[0] in "12345678":
        return _valid_date(int(digits[6:10]), int(digits[10:12]), int(digits[12:14]))
    if len(digits) == 15 and digits.isdigit() and digits[0] in "12345678":
        return _valid_date(1900 + int(digits[6:8]), int(digits[8:10]), int(digits[10:12]))
    return False


def _is_card(digits: str) -> bool:
    if not (16 <= len(digits) <= 19 and digits.isdigit()):
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _masked(digits: str, whole: bool = True) -> str | None:
    """The masked form of a digit string if it is a personal number, else None (only a
    mobile or an ID when ``digits`` is part of a longer run)."""
    if digits.startswith("86") and len(digits) == 13 and _MOBILE_86.fullmatch(digits):
        digits = digits[2:]
    if _MOBILE.fullmatch(digits):
        return digits[:3] + "****" + digits[-4:]
    if _is_id(digits):
        return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]
    if not whole:
        return None
    if _is_card(digits):
        return digits[:4] + "*" * (len(digits) - 8) + digits[-4:]
    if _LANDLINE.fullmatch(digits):
        return digits[:-8] + "****" + digits[-4:]
    return None


def _mask_run(run: str) -> str:
    digits = _NOT_DIGIT.sub("", run.translate(_FULL))
    masked = _masked(digits)
    if masked is not None:
        return masked
    # Several numbers side by side (138 1234 5678 2021): try each stretch of whole groups.
    groups = _GROUP.findall(run)
    if len(groups) < 2:
        return run
    for start in range(len(groups)):
        for end in range(len(groups), start, -1):
            if end - start == len(groups):
                continue
            masked = _masked("".join(groups[start:end]).translate(_FULL), whole=False)
            if masked is not None:
                head = " ".join(groups[:start])
                tail = " ".join(groups[end:])
                return " ".join(part for part in (head, masked, tail) if part)
    return run


def mask_personal(text: str) -> str:
    """The text with mobile, landline, ID-card and bank-card numbers and e-mail addresses
    masked."""
    if not text:
        return text
    text = _EMAIL.sub(lambda m: m.group(1) + "***" + m.group(2), text)
    return _RUN.sub(lambda m: _mask_run(m.group(0)), text)
