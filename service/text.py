"""Text pipeline: normalisation and tokenisation of Chinese questions.

Pure Python (no Flask). The same pipeline is applied to the knowledge and to the
citizen's question, so the two always meet in the same form:

1. Unicode NFKC (full-width letters and digits to half-width),
2. traditional to simplified Chinese with regional words (OpenCC ``tw2sp``: 資訊 -> 信息),
3. case folding,
4. Chinese numerals before a measure word to digits (二十个工作日 -> 20个工作日),
5. removal of courtesy fillers (请问, 我想知道, 吗, 呢 ...) and punctuation,
6. jieba segmentation with the domain dictionary, synonyms mapped to one canonical
   term, stop words dropped.
"""
from __future__ import annotations

import io
import math
import re
import sys
import threading
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable

import jieba
import opencc

from .pinyin_text import PinyinReader

jieba.setLogLevel(60)

_CONVERTER = opencc.OpenCC("tw2sp")
# OpenCC is not documented as thread-safe; conversions are short, so serialise them.
_CONVERTER_LOCK = threading.Lock()

_DIGITS = {"零": 0, "〇": 0, "○": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
           "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_BIG_UNITS = {"万": 10_000, "亿": 100_000_000}
# Measure words after which a Chinese numeral is a quantity worth normalising.
_MEASURE = "年月日天个件条款章页元次家项号篇人位所周岁倍场份届"
_NUMERAL_RE = re.compile(rf"[零〇○一二两三四五六七八九十百千万亿]+(?=[{_MEASURE}])")
_SPACE_RE = re.compile(r"\s+")
# Everything that is neither a letter, a digit nor a CJK ideograph separates words.
_PUNCT_RE = re.compile(r"[^\w\u4e00-\u9fff]+|_")


def chinese_to_int(numeral: str) -> int | None:
    """Value of a Chinese numeral such as 二十, 一百零五, 二〇二一 or 两万; None if malformed."""
    if not numeral:
        return None
    if all(ch in _DIGITS for ch in numeral):
        # Digit-by-digit form, as in years (二〇二一).
        return int("".join(str(_DIGITS[ch]) for ch in numeral))
    total, section, digit = 0, 0, None
    last_unit = 10_000  # units inside a section must fall: 千 > 百 > 十
    for ch in numeral:
        if ch in _DIGITS:
            if digit is not None:
                return None  # two digits in a row in positional form: malformed
            digit = _DIGITS[ch]
            if digit == 0:
                digit = None
        elif ch in _UNITS:
            if _UNITS[ch] >= last_unit:
                return None
            last_unit = _UNITS[ch]
            section += (1 if digit is None else digit) * _UNITS[ch]
            digit = None
        elif ch in _BIG_UNITS:
            section += digit or 0
            total += (section or 1) * _BIG_UNITS[ch]
            section, digit, last_unit = 0, None, 10_000
        else:
            return None
    return total + section + (digit or 0)


def _numerals_to_digits(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        value = chinese_to_int(match.group(0))
        return match.group(0) if value is None else str(value)

    return _NUMERAL_RE.sub(repl, text)


def is_number(text: str) -> bool:
    """Plain ASCII digits of a sane length, for ids and years typed into forms
    (unlike str.isdigit, which accepts ² and a hundred thousand digits)."""
    return text.isascii() and text.isdigit() and len(text) <= 9


def to_simplified(text: str) -> str:
    """Traditional (including Taiwan regional words) to simplified Chinese."""
    with _CONVERTER_LOCK:
        return _CONVERTER.convert(text)


def clean(text: str) -> str:
    """Unicode-level clean-up: NFKC, simplified Chinese, lower case, numerals as digits.

    Keeps punctuation, so sentences can still be split afterwards.
    """
    text = unicodedata.normalize("NFKC", text)
    # Control characters and lone surrogates carry no meaning for matching.
    if not text.isprintable():  # printable text has none (the check is one pass in C)
        text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\n\t")
    text = to_simplified(text).casefold()
    text = _numerals_to_digits(text)
    return _SPACE_RE.sub(" ", text).strip()


@dataclass
class Lexicon:
    """The domain data the pipeline needs: dictionary words, synonyms, fillers, stop words."""

    words: list[tuple[str, int | None]] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)  # term -> canonical term
    fillers: list[str] = field(default_factory=list)  # phrases removed anywhere
    particles: str = ""  # single characters removed at the end of a question
    stopwords: set[str] = field(default_factory=set)
    # Short words starting with these are question words for amounts (几件, 多少个): dropped.
    stop_prefixes: tuple[str, ...] = ()
    # Citizens' wordings rewritten to the knowledge's (点样 -> 怎样, fee -> 费用), longest first.
    paraphrases: list[tuple[str, str]] = field(default_factory=list)


def parse_synonym_lines(lines: Iterable[str]) -> dict[str, str]:
    """Read synonym groups, one a line: ``canonical = other, other``; ``#`` starts a comment."""
    mapping: dict[str, str] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line or "=" not in line:
            continue
        canonical, others = line.split("=", 1)
        canonical = clean(canonical)
        for term in re.split(r"[,，、\s]+", others):
            term = clean(term)
            if term and term != canonical:
                mapping[term] = canonical
    return mapping


def parse_word_lines(lines: Iterable[str]) -> list[tuple[str, int | None]]:
    """Read a jieba-style user dictionary: ``word [freq] [tag]`` a line."""
    words: list[tuple[str, int | None]] = []
    for raw in lines:
        parts = raw.split("#", 1)[0].split()
        if not parts:
            continue
        freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        words.append((clean(parts[0]), freq))
    return words


class Rewriter:
    """Longest-first replacement of many literal variants in one left-to-right scan.

    Variants are looked up by their first character, so the cost grows with the text, not
    with the size of the lexicon (a regular expression of a thousand alternatives tries each
    of them at every position). An ASCII variant (fee, gk) matches only as a whole word."""

    def __init__(self, mapping: dict[str, str]):
        self.mapping = mapping
        self._by_first: dict[str, list[str]] = {}
        for variant in sorted(mapping, key=len, reverse=True):
            self._by_first.setdefault(variant[0], []).append(variant)

    def finditer(self, text: str) -> Iterable[tuple[int, str]]:
        """(position, variant) of each replacement, left to right, longest first."""
        i, n = 0, len(text)
        while i < n:
            for variant in self._by_first.get(text[i], ()):
                if text.startswith(variant, i) and self._whole(text, i, variant):
                    yield i, variant
                    i += len(variant)
                    break
            else:
                i += 1

    @staticmethod
    def _whole(text: str, i: int, variant: str) -> bool:
        # Letters join letters and digits join digits: submit1个 (一个 as a numeral) still
        # has submit in it, while gk is not inside gkk and 12 is not inside 123.
        if i > 0 and _same_kind(variant[0], text[i - 1]):
            return False
        end = i + len(variant)
        return not (end < len(text) and _same_kind(variant[-1], text[end]))

    def sub(self, text: str) -> str:
        """The text with every variant replaced by its standard wording (spaced apart)."""
        out, last = [], 0
        for i, variant in self.finditer(text):
            out.append(text[last:i])
            out.append(f" {self.mapping[variant]} ")
            last = i + len(variant)
        if not out:
            return text
        out.append(text[last:])
        return "".join(out)


def _same_kind(a: str, b: str) -> bool:
    """Both ASCII letters, or both ASCII digits."""
    return a.isascii() and b.isascii() and ((a.isalpha() and b.isalpha()) or (a.isdigit() and b.isdigit()))


def compile_paraphrases(pairs: Iterable[tuple[str, str]]) -> tuple[Rewriter | None, dict[str, str]]:
    """A rewriter over every variant (cleaned), longest first, and the mapping it applies."""
    mapping: dict[str, str] = {}
    for variant, standard in pairs:
        variant, standard = clean(variant), clean(standard)
        if variant and standard and variant != standard:
            mapping.setdefault(variant, standard)
    if not mapping:
        return None, {}
    return Rewriter(mapping), mapping


_TOKENIZER_LOCK = threading.Lock()
_TOKENIZER: jieba.Tokenizer | None = None
# Words this process added to jieba, with the frequency jieba had for them before.
_ADDED: dict[str, int] = {}


# jieba part-of-speech classes that never name a topic: locality (以内), pronoun (别的),
# adverb (根本), adjective (好奇), numeral, measure word, preposition, conjunction,
# particle, interjection, onomatopoeia, status word.
_FUNCTION_TAGS = frozenset("frdamqpcuyeoz")
_FUNCTION_WORDS: frozenset[str] | None = None


def _function_words() -> frozenset[str]:
    """jieba's dictionary words of a function class, read once per process.

    Streamed from jieba's dictionary file (word, frequency, part of speech a line) so the
    full part-of-speech table (about 100 MB) is never held in memory.
    """
    global _FUNCTION_WORDS
    if _FUNCTION_WORDS is None:
        words = set()
        with io.TextIOWrapper(jieba.get_dict_file(), encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 3 and parts[2][:1] in _FUNCTION_TAGS:
                    words.add(sys.intern(parts[0]))
        _FUNCTION_WORDS = frozenset(words)
    return _FUNCTION_WORDS


def _base_tokenizer() -> jieba.Tokenizer:
    """One jieba tokenizer per process: loading its dictionary costs about half a second."""
    global _TOKENIZER
    with _TOKENIZER_LOCK:
        if _TOKENIZER is None:
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            _TOKENIZER = tokenizer
        return _TOKENIZER


def _set_freq(tokenizer: jieba.Tokenizer, word: str, freq: int) -> None:
    """Give a word a frequency, keeping the corpus total what the frequencies add up to.

    jieba's ``add_word`` adds the new frequency to the total without taking the old one
    off, so every rebuild of the knowledge (each curator's save) would inflate the total:
    segmentation would drift towards longer words and every word would look rarer the
    longer a worker runs. Callers hold ``_TOKENIZER_LOCK``.
    """
    before, old = tokenizer.total, tokenizer.FREQ.get(word, 0) or 0
    tokenizer.add_word(word, freq)
    tokenizer.total = before - old + freq


class TextPipeline:
    """Normalises and tokenises text with a given :class:`Lexicon`."""

    def __init__(self, lexicon: Lexicon):
        self.lexicon = lexicon
        self.tokenizer = _base_tokenizer()
        wanted = {w for w, _ in lexicon.words} | set(lexicon.synonyms) | set(lexicon.synonyms.values())
        with _TOKENIZER_LOCK:
            # Words staff removed since the last build go back to what jieba knew before.
            for word in [w for w in _ADDED if w not in wanted]:
                _set_freq(self.tokenizer, word, _ADDED.pop(word))  # freq 0 is jieba's del_word
        for word, freq in lexicon.words:
            self._add_word(word, freq)
        for term, canonical in lexicon.synonyms.items():
            self._add_word(term, None)
            self._add_word(canonical, None)
        fillers = sorted({clean(f) for f in lexicon.fillers if f.strip()}, key=len, reverse=True)
        self._filler_re = re.compile("|".join(map(re.escape, fillers))) if fillers else None
        particles = re.escape(lexicon.particles) if lexicon.particles else ""
        self._tail_re = re.compile(rf"[{particles}]+$") if particles else None
        self._paraphrase_re, self._paraphrase_map = compile_paraphrases(lexicon.paraphrases)
        self.pinyin = PinyinReader(lambda: self.tokenizer.FREQ)
        self._cache = lru_cache(maxsize=4096)(self._tokens_uncached)
        _function_words()  # load now, not during some citizen's first question

    def _add_word(self, word: str, freq: int | None) -> None:
        # Only multi-character words change segmentation; a word already known with a
        # higher frequency keeps it (suggest_freq makes sure it is cut as one piece).
        if len(word) < 2 or re.search(r"\s", word):
            return
        if freq is None:
            if self.tokenizer.FREQ.get(word) and self.tokenizer.lcut(word, HMM=False) == [word]:
                return  # already cut whole: suggest_freq would add one more on every rebuild
            freq = max(self.tokenizer.suggest_freq(word, tune=False), 10)
        with _TOKENIZER_LOCK:
            current = self.tokenizer.FREQ.get(word, 0)
            if current < freq:
                _ADDED.setdefault(word, current)
                _set_freq(self.tokenizer, word, freq)

    def normalise(self, text: str, pinyin: bool = True) -> str:
        """The comparable form of a question: clean, fillers and punctuation removed.
        ``pinyin=False`` for the knowledge's own texts, which are written in characters."""
        text = self.rewrite(clean(text), pinyin=pinyin)
        if self._filler_re is not None:
            stripped = self._filler_re.sub(" ", text)
            # A question made only of courtesy words keeps them (你好 stays 你好).
            if _PUNCT_RE.sub("", stripped):
                text = stripped
        text = _PUNCT_RE.sub(" ", text).strip()
        if self._tail_re is not None:
            parts = [self._strip_tail(p) for p in text.split(" ")]
            text = " ".join(p for p in parts if p)
        return _SPACE_RE.sub(" ", text).strip()

    def rewrite(self, cleaned: str, pinyin: bool = True) -> str:
        """Citizens' wordings (already cleaned) in the knowledge's words, by the paraphrase
        lexicon; what is left typed in pinyin is then read as the Chinese it spells."""
        if self._paraphrase_re is not None:
            cleaned = self._paraphrase_re.sub(cleaned)
        return self.pinyin.convert(cleaned) if pinyin else cleaned

    def rewrites_in(self, cleaned: str) -> list[tuple[str, str]]:
        """The paraphrases that apply to a cleaned text, as (citizen's wording, knowledge's)."""
        if self._paraphrase_re is None:
            return []
        return [(v, self._paraphrase_map[v]) for _, v in self._paraphrase_re.finditer(cleaned)]

    def _strip_tail(self, part: str) -> str:
        """Drop sentence-final particles (吗, 呢, 呀) but never the end of a word (什么, 怎么)."""
        assert self._tail_re is not None
        match = self._tail_re.search(part)
        if not match or match.start() == 0:
            return part
        cut = match.start()
        # Keep a particle that ends a dictionary word with the character before it.
        while cut < len(part) and self.tokenizer.FREQ.get(part[cut - 1:cut + 1]):
            cut += 1
        return part[:cut]

    def tokens(self, normalised: str) -> list[str]:
        """Tokens of an already normalised text: jieba words, synonyms merged, stop words out."""
        return list(self._cache(normalised))

    def _tokens_uncached(self, normalised: str) -> tuple[str, ...]:
        out: list[str] = []
        for piece in normalised.split(" "):
            if not piece:
                continue
            # HMM off: unknown character runs come out as single characters, which the
            # matcher can weigh lightly or repair (typos, homophones) instead of
            # inventing words like 因本 that then count as unknown vocabulary.
            for tok in self.tokenizer.lcut(piece, HMM=False):
                tok = self.lexicon.synonyms.get(tok, tok)
                if not tok.strip() or tok in self.lexicon.stopwords:
                    continue
                if len(tok) <= 3 and tok.startswith(self.lexicon.stop_prefixes):
                    continue
                out.append(sys.intern(tok))  # one copy of each word across the whole index
        return tuple(out)

    def analyse(self, text: str) -> tuple[str, list[str]]:
        """Normalised text and its tokens, in one call."""
        normalised = self.normalise(text)
        return normalised, self.tokens(normalised)

    def topic_rarity(self, token: str) -> float | None:
        """Like :meth:`word_rarity`, but from the frequency jieba had before the knowledge
        raised it to keep its own terms whole (行政复议, 依申请公开): those are what a
        question is about, not everyday words. None for words jieba did not know at all."""
        with _TOKENIZER_LOCK:
            freq = _ADDED[token] if token in _ADDED else self.tokenizer.FREQ.get(token)
        if not freq:
            return None
        surprise = math.log(self.tokenizer.total / freq)
        rarity = min(1.0, max(0.0, (surprise - 8.0) / 5.0))
        return rarity / 3 if token in _function_words() else rarity

    def word_rarity(self, token: str) -> float | None:
        """How much a word the knowledge never uses says about a question's topic.

        From jieba's corpus frequency: 0 for everyday words (发生), 1 for rare ones
        (居住证); words of grammatical classes that never name a topic (locality words
        like 以内, pronouns, adverbs, adjectives) count for a third. None if jieba's
        dictionary does not know the token as a word.
        """
        freq = self.tokenizer.FREQ.get(token)
        if not freq:
            return None
        surprise = math.log(self.tokenizer.total / freq)
        rarity = min(1.0, max(0.0, (surprise - 8.0) / 5.0))
        if token in _function_words():
            rarity /= 3
        return rarity
