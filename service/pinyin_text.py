"""Questions typed in pinyin, read as the Chinese they spell.

Pure Python (no Flask). Citizens without a Chinese input method type whole phrases in
toneless pinyin (weishenme zhi gei wo bufen gongkai, buzheng 要在几天内完成). A stretch of
Latin words that can be cut entirely into the pinyin of known words is replaced by those
words; the cut with the most likely words wins (fewest, most frequent, and words of the
knowledge before everyday words). English stays English: a stretch with any word that is
not pinyin (apply, fee, online) is left alone, a lone token becomes Chinese only when it
spells words of the knowledge (buzheng, not change as 嫦娥), and common English words that happen to be
pinyin (can, you, he) never start a conversion on their own.
"""
from __future__ import annotations

import heapq
import math
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any


# Latin words separated by spaces only: one stretch of what someone typed without an IME.
_STRETCH = re.compile(r"[a-z]+(?: +[a-z]+)*")
_CJK = re.compile(r"^[\u4e00-\u9fff]+$")
# English words that are also valid pinyin; alone they are read as English.
ENGLISH_PINYIN = frozenset("""a an can you he she me men hen ben long ban pin tie die lie pie hang bang gang
fan man wan tan dan sun bin din ping ding ming king sing wing ran rang run ten den de la ma mama
ok hi o e en er ai ao ou""".split())
COMMON_WORDS = 25000  # everyday words of jieba's dictionary that may be spelled
MAX_WORD = 24  # letters of the longest word looked up
KNOWLEDGE_BONUS = math.log(50.0)  # a word the knowledge uses is that much more likely
WORD_COST = 2.0  # each extra word makes a cut less likely (fewer, longer words win)
CROSSING_COST = 6.0  # a word that runs across a space the citizen typed


_UMLAUT = str.maketrans({"ü": "v", "ǖ": "v", "ǘ": "v", "ǚ": "v", "ǜ": "v"})
_CHAR_KEYS: dict[str, str] = {}


def _toneless(syllable: str) -> str:
    syllable = syllable.translate(_UMLAUT)
    return "".join(c for c in unicodedata.normalize("NFD", syllable) if not unicodedata.combining(c))


def _tables() -> tuple[dict[str, Any], dict[int, str]]:
    """pypinyin's phrase and character tables, imported at first use: half a second of a
    start-up from an index snapshot, which needs them only for a question in pinyin."""
    global _PHRASES, _CHARS
    if _PHRASES is None:
        from pypinyin.phrases_dict import phrases_dict
        from pypinyin.pinyin_dict import pinyin_dict

        _PHRASES, _CHARS = phrases_dict, pinyin_dict
    return _PHRASES, _CHARS  # type: ignore[return-value]


_PHRASES: dict[str, Any] | None = None
_CHARS: dict[int, str] | None = None


def pinyin_key(word: str) -> str:
    """Toneless pinyin of a word, letters only (申请 -> shenqing, 法律 -> falv), from
    pypinyin's phrase and character tables (a tenth of the time of ``lazy_pinyin``)."""
    PHRASES, CHARS = _tables()
    phrase = PHRASES.get(word)
    if phrase:
        return "".join(_toneless(p[0]) for p in phrase)
    out = []
    for ch in word:
        key = _CHAR_KEYS.get(ch)
        if key is None:
            readings = CHARS.get(ord(ch))
            key = _CHAR_KEYS[ch] = _toneless(readings.split(",")[0]) if readings else ""
        out.append(key)
    return "".join(out)


def _put(table: dict[str, tuple[str, float]], word: str, cost: float) -> None:
    """Enter a word under each way it may be typed (法律 as falv and as falu), where no
    likelier word has that spelling; a, e, o, n alone are too short to be sure of."""
    key = pinyin_key(word)
    for typed in ([key, key.replace("v", "u")] if "v" in key else [key]):
        if len(typed) >= 2 and (typed not in table or cost < table[typed][1]):
            table[typed] = (word, cost)


_EVERYDAY: tuple[dict[str, tuple[str, float]], float] | None = None
_EVERYDAY_LOCK = threading.Lock()


def _everyday(freq: dict[str, int]) -> tuple[dict[str, tuple[str, float]], float]:
    """The everyday words' pinyin table, built once per process (about 0.3 s)."""
    global _EVERYDAY
    with _EVERYDAY_LOCK:
        if _EVERYDAY is None:
            for _ in range(5):  # jieba may learn a word meanwhile; no copy of its dictionary
                try:
                    found = [w for w, f in freq.items() if f > 0 and len(w) <= 4 and _CJK.match(w)]
                    break
                except RuntimeError:
                    continue
            else:
                found = []
            counts = {w: freq.get(w, 0) or 1 for w in heapq.nlargest(COMMON_WORDS, found, key=lambda w: freq.get(w, 0))}
            del found
            total = float(sum(counts.values())) or 1.0
            table: dict[str, tuple[str, float]] = {}
            for word, count in counts.items():
                _put(table, word, -math.log(count / total))
            _EVERYDAY = (table, total)
        return _EVERYDAY


class PinyinReader:
    """Reads toneless pinyin stretches as Chinese words."""

    def __init__(self, frequencies: Callable[[], dict[str, int]]):
        self._frequencies = frequencies
        self._preferred: frozenset[str] = frozenset()
        self._table: dict[str, tuple[str, float]] | None = None
        self._lock = threading.Lock()

    def prefer(self, words: Iterable[str]) -> None:
        """Words of the knowledge, read before everyday words with the same pinyin."""
        preferred = frozenset(w for w in words if 1 < len(w) <= 6 and _CJK.match(w))
        if preferred != self._preferred:
            with self._lock:
                self._preferred = preferred
                self._table = None

    def _build(self) -> dict[str, tuple[str, float]]:
        """The knowledge's words only; the everyday table is shared, not copied."""
        freq = self._frequencies()
        _, total = _everyday(freq)
        table: dict[str, tuple[str, float]] = {}
        for word in self._preferred:
            _put(table, word, -math.log(max(freq.get(word, 1), 1) / total) - KNOWLEDGE_BONUS)
        return table

    def _lookup(self) -> Callable[[str], tuple[str, float] | None]:
        """The likeliest word typed as a spelling: the knowledge's or an everyday one."""
        preferred = self._words()
        everyday, _ = _everyday(self._frequencies())

        def lookup(typed: str) -> tuple[str, float] | None:
            mine, common = preferred.get(typed), everyday.get(typed)
            if mine is None or (common is not None and common[1] < mine[1]):
                return common
            return mine
        return lookup

    def warm(self) -> None:
        """Build the tables now (pypinyin's, the everyday words', the knowledge's): about
        0.8 s that a pre-forking server's master spends once, instead of every fresh worker
        at its first question in pinyin (all of them at once, under load)."""
        self._lookup()

    def _words(self) -> dict[str, tuple[str, float]]:
        table = self._table
        if table is None:
            with self._lock:
                if self._table is None:
                    self._table = self._build()
                table = self._table
        return table

    def read(self, tokens: list[str]) -> list[str] | None:
        """The likeliest cut of typed pinyin tokens into known words, or None. A word may run
        across the spaces between tokens (gong kai), at a cost."""
        lookup = self._lookup()
        letters = "".join(tokens)
        bounds, at = set(), 0
        for tok in tokens[:-1]:
            at += len(tok)
            bounds.add(at)
        n = len(letters)
        best: list[tuple[float, list[str]] | None] = [None] * (n + 1)
        best[0] = (0.0, [])
        for i in range(n):
            if best[i] is None:
                continue
            cost_i, words_i = best[i]  # type: ignore[misc]
            for j in range(i + 2, min(n, i + MAX_WORD) + 1):
                hit = lookup(letters[i:j])
                if hit is None:
                    continue
                cost = cost_i + hit[1] + WORD_COST + CROSSING_COST * sum(1 for b in bounds if i < b < j)
                if best[j] is None or cost < best[j][0]:  # type: ignore[index]
                    best[j] = (cost, [*words_i, hit[0]])
        return best[n][1] if best[n] is not None else None

    def convert(self, text: str) -> str:
        """``text`` (cleaned, lower case) with its pinyin stretches written in Chinese."""
        if not re.search(r"[a-z]{2}", text):
            return text
        return _STRETCH.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        stretch = match.group(0)
        tokens = stretch.split()
        if all(t in ENGLISH_PINYIN for t in tokens):
            return stretch
        words = self.read(tokens)
        if words is None:
            return stretch
        if len(tokens) == 1 and not all(w in self._preferred for w in words):
            return stretch  # change is not 嫦娥: a lone token must spell the knowledge's words
        return "".join(words)
