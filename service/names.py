"""How people name an agency, derived from its full name; and the years they write.

Pure Python (no Flask). 苏州市人民政府办公室 is asked about as 苏州市政府办公室, 苏州市府办,
苏州市政府 or just 苏州; 广东省人民政府办公厅 as 广东省政府办公厅 or 广东省府办公厅; 安吉县人民政府
as 安吉县政府 or 安吉. Years come as 2021年, 21年, 二〇二一年 (turned into digits by the text
pipeline) or 上年度.
"""
from __future__ import annotations

import re
from datetime import date

# Administrative units that end a place name, longest first.
_UNITS = ("特别行政区", "自治区", "自治州", "自治县", "地区", "新区", "省", "市", "县", "区", "盟", "旗", "镇", "乡")
# Parts of a name that people leave out (综合实验区 of 某某综合实验区管委会 ...).
_DROPPED = ("综合实验区", "经济技术开发区", "高新技术产业开发区")
# What people say for the organisation part of a name.
_ORG_FORMS: list[tuple[str, tuple[str, ...]]] = [
    ("人民政府办公厅", ("人民政府办公厅", "政府办公厅", "府办公厅", "政府办", "府办", "办公厅", "政府")),
    ("人民政府办公室", ("人民政府办公室", "政府办公室", "政府办", "府办", "办公室", "政府")),
    ("人民政府", ("人民政府", "政府", "府")),
]


_NEEDS_UNIT = {"府", "府办", "办公室", "办公厅", "府办公厅"}


def _places(text: str) -> list[str] | None:
    """``text`` cut into place names (each at least two characters, ending in a unit:
    浙江省 湖州市 安吉县), or None if it cannot be."""
    if not text:
        return []
    for unit in _UNITS:
        for end in range(len(text), 1, -1):
            piece = text[:end]
            stem = piece[: -len(unit)]
            if piece.endswith(unit) and stem and not stem.endswith(_UNITS):
                rest = _places(text[end:])
                if rest is not None:
                    return [piece, *rest]
    return None


def split_name(full: str) -> tuple[str, str]:
    """(place, organisation) of an agency's full name; place is '' for a national body.
    The place is the longest run of place names before the organisation."""
    name = full
    for part in _DROPPED:
        name = name.replace(part, "")
    for cut in range(len(name) - 1, 1, -1):
        if _places(name[:cut]) is not None:
            return name[:cut], name[cut:]
    return "", name


def agency_aliases(full: str) -> list[str]:
    """Names people use for an agency, most specific first (the full name included)."""
    place, org = split_name(full)
    out = [full]
    if not place:
        return out
    places = [place]
    # The innermost place alone and without its unit (湖州市安吉县 -> 安吉县, 安吉).
    inner = _places(place) or [place]
    for p in [place, *(inner[-1:] if len(inner) > 1 else [])]:
        places.append(p)
        for unit in _UNITS:
            if p.endswith(unit) and len(p) - len(unit) >= 2:
                places.append(p[: -len(unit)])
                break
    places = list(dict.fromkeys(places))
    forms = [org]
    for suffix, spoken in _ORG_FORMS:
        if org.endswith(suffix) and org == suffix:
            forms = list(spoken)
            break
    for p in places:
        for f in forms:
            # 府, 府办, 办公室 alone are said only after a full place name (安吉县府, 苏州市府办).
            if f in _NEEDS_UNIT and not p.endswith(_UNITS):
                continue
            out.append(p + f)
    # The place alone (苏州, 安吉县) names the agency when nothing else does.
    out += places
    return [a for a in dict.fromkeys(out) if len(a) >= 2]


_TWO_DIGIT_YEAR = re.compile(r"(?<![\d.])([12]\d|3[0-5])年(?![代前后内以来多间里]|左右)")
# Words before "10年" that make it a number of years.
_DURATION_BEFORE = ("过去", "近", "最近", "将近", "整整", "满", "每", "头")
_RELATIVE = [(re.compile(r"上一?年度?(?!结转)"), -1), (re.compile(r"去年"), -1), (re.compile(r"前年"), -2),
             (re.compile(r"今年|本年度(?!新收|办理|制发|废止|处理|收费|新制作|新公开)"), 0)]


def expand_years(compact: str) -> str:
    """Two-digit years as four digits (21年 -> 2021年); other text unchanged."""
    def year(m: re.Match[str]) -> str:
        if compact[:m.start()].endswith(_DURATION_BEFORE):
            return m.group(0)  # 过去10年, 近20年, 这10年: a span of years, not 2010
        return f"20{m.group(1)}年"
    return _TWO_DIGIT_YEAR.sub(year, compact)


def relative_years(compact: str, today: date) -> list[int]:
    """Years named relative to today (去年, 上年度), not counting table labels (上年结转)."""
    return [today.year + delta for pattern, delta in _RELATIVE if pattern.search(compact)]
