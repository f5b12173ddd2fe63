"""Retrieval and re-ranking of knowledge documents for a tokenised question.

Pure Python (no Flask). Two stages:

1. **Retrieval** over an inverted index (token -> documents) with IDF weights held in
   numpy arrays. A document's score is the IDF-weighted share of the *question's* tokens
   it contains, so a question token the knowledge never uses (公租房, 居住证) weighs
   against every document, and an off-topic question ends up with no good candidate.
2. **Re-ranking** of the best candidates with rapidfuzz against each phrasing of the
   document, which rewards close wording and tolerates typos.

Unknown question tokens are first repaired against the vocabulary by pinyin, so a
homophone typo (申清 for 申请) still finds its word.
"""
from __future__ import annotations

import heapq
import math
import sys
import weakref
from array import array
from collections import Counter
from dataclasses import dataclass, field
from functools import reduce
from itertools import compress, repeat
from operator import add, mul
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from rapidfuzz import fuzz, process

from .layered import LayeredList, LayeredMap, LayeredSet
from .pinyin_text import pinyin_key

# How much a token found only in a document's answer/context counts, next to one
# found in its questions.
SECONDARY_WEIGHT = 0.45
# Weight of a single character the knowledge never uses (mostly function characters).
STRAY_CHAR_WEIGHT = 0.25
# The most a single known character may weigh.
SINGLE_CHAR_CAP = 0.6
CANDIDATES = 50
COMMON_SHARE = 0.05
# IDF weight a passage must share with a question before it can score in full.
PASSAGE_MIN_WEIGHT = 3.3


_EMPTY: frozenset[str] = frozenset()


@dataclass(slots=True)
class Doc:
    """One matchable unit: an FAQ entry, a report table row, or a report passage."""

    key: str
    kind: str  # "faq" | "fact" | "passage"
    phrasings: list[str]  # normalised texts without spaces, compared by rapidfuzz
    primary: frozenset[str] | set[str]  # tokens of the phrasings (dropped once indexed)
    secondary: frozenset[str] | set[str] = _EMPTY  # tokens of answer or context (dropped once indexed)
    phrasing_tokens: list[tuple[str, ...]] = field(default_factory=list)  # tokens of each phrasing
    group: int = 0  # 0: always searchable; otherwise a report id, searched on demand
    ref: Any = None  # payload for the caller (entry id, row key, passage id ...)


@dataclass
class Candidate:
    """A scored document for one question."""

    doc: Doc
    score: float
    coverage: float  # IDF-weighted share of the question's tokens found in the document
    fuzzy: float  # rapidfuzz similarity to the closest phrasing, 0..1
    precision: float = 0.0  # IDF-weighted share of the closest phrasing's tokens in the question
    chars: float = 0.0  # cosine of IDF-weighted characters and character pairs, closest phrasing
    near: tuple[int, ...] = ()  # indexes of the phrasings closest to the question
    logit: float = 0.0  # the fitted candidate model's log-odds (set by the desk)
    features: dict[str, float] = field(default_factory=dict)  # the model's named inputs

    def explain(self) -> dict[str, Any]:
        """Scores in a JSON-friendly form, for tickets and the curators' test pane.

        Not the model's inputs (``features``): nothing shows them per candidate (the test
        pane works out the best candidate's parts itself), and every reply carries up to
        five of these into the reply cache, where they were two thirds of a reply's memory."""
        return {"key": self.doc.key, "kind": self.doc.kind, "score": round(self.score, 4),
                "coverage": round(self.coverage, 4), "precision": round(self.precision, 4),
                "fuzzy": round(self.fuzzy, 4), "chars": round(self.chars, 4)}


# Conjunctions and prepositions that jieba's dictionary sometimes glues to the next word.
LEADING_FUNCTION_CHARS = frozenset("或和与及把向在对给从被跟")


@dataclass
class QueryTerm:
    """A question token as the matcher sees it, after repair."""

    text: str
    weight: float
    known: bool
    repaired_from: str | None = None


def _best_possible(coverage: float) -> float:
    """The highest score a document with this coverage can reach (precision, fuzzy and
    passage strength at 1)."""
    return max(0.8 * 2 * coverage / (1 + coverage) + 0.2, 0.85 * coverage + 0.15)


GRAM_CACHE_SIZE = 2_000
# How far the count of live documents may move (a share) before an update in place weighs
# every word again rather than only the words it touched (see Index.updated).
WEIGHT_DRIFT = 0.002
# Candidates whose phrasings and phrasing weights a worker keeps, per index, until the cache is
# emptied: a worker's own memory, about 0.7 KB of phrasings and 2.4 KB of words and weights
# for a document of five phrasings (30 words), so some 13 MB when full.
PRECISION_CACHE_SIZE = 4_096
GRAM_BUCKETS = 1 << 20
# How many of a candidate's literally closest phrasings the character view compares.
NEAR_PHRASINGS = 3


_GOLDEN = 0x9E3779B97F4A7C15  # 2**64 / golden ratio: multiplicative (Fibonacci) hashing
_BUCKET_SHIFT = 64 - GRAM_BUCKETS.bit_length() + 1


def _bucket(gram: str) -> int:
    """The bucket of a character or character pair: the same in every process (Python's
    own ``hash`` of a string is salted per process, which made fits differ from run to run)."""
    code = ord(gram[0]) if len(gram) == 1 else ord(gram[0]) * 0x110000 + ord(gram[1]) + 0x110000
    return ((code * _GOLDEN) & 0xFFFFFFFFFFFFFFFF) >> _BUCKET_SHIFT


def _grams(text: str) -> list[str]:
    """Characters and adjacent character pairs of a text (spaces removed)."""
    text = text.replace(" ", "")
    return list(text) + [text[i:i + 2] for i in range(len(text) - 1)]


_ROW_BASE = 1 << 40
_PASSAGE_BASE = 1 << 41


def _ordinal(doc: Doc, rows: int) -> tuple[int, int]:
    """A document's rank among equal scores, as a build orders them (entries by id, then
    report rows, then report sentences by id), and the count of rows so far."""
    if doc.kind == "faq" and isinstance(doc.ref, int):
        return doc.ref, rows
    if doc.kind == "passage" and isinstance(doc.ref, int):
        return _PASSAGE_BASE + doc.ref, rows
    return _ROW_BASE + rows, rows + 1


def _cosine(a: tuple[dict[str, float], float], b: tuple[dict[str, float], float]) -> float:
    small, large = (a, b) if len(a[0]) <= len(b[0]) else (b, a)
    # The same products summed in the same order as a generator would, without its frames.
    dot = sum(map(mul, small[0].values(), map(large[0].get, small[0], repeat(0.0))))
    return dot / (a[1] * b[1])


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Where each run of equal adjacent values of a non-empty array starts."""
    change = np.empty(len(values), dtype=bool)
    change[0] = True
    np.not_equal(values[1:], values[:-1], out=change[1:])
    return np.flatnonzero(change)


def _run_lengths(starts: np.ndarray, size: int) -> np.ndarray:
    """The length of each run, from where the runs start and the array's size."""
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1] = size
    return ends - starts


class _Columns:
    """The phrasings of an index's documents and their words, held as a few large arrays
    for the search to score candidates from.

    Reading a Python object writes its reference count, and in a forked worker that write
    copies the page the object sits on. Scoring 50 candidates per question through their
    :class:`Doc` objects (their phrasings, their word tuples) turned, at 100,000 entries,
    tens of MB of what every worker shared with the master into private copies of each.
    Read from here, a candidate's phrasings are new strings sliced from one text, its words
    numbers in one array: only the few documents a question returns are touched.

    Built once with the index; an index updated in place keeps these for the documents it
    was built with (``size``) and scores the added ones through their objects, and only the
    word weights follow its changes (:meth:`reweighed`).
    """

    def __init__(self, docs: list[Doc], idf: Any):
        kinds: list[str] = []
        texts: list[str] = []
        chars, phrasing_at = array("q", [0]), array("q", [0])
        words, word_at, tokens_at = array("i"), array("q", [0]), array("q", [0])
        vocab: dict[str, int] = {}
        end = 0
        for doc in docs:
            kinds.append(sys.intern(doc.kind))
            for text in doc.phrasings:
                texts.append(text)
                end += len(text)
                chars.append(end)
            phrasing_at.append(len(chars) - 1)
            for toks in doc.phrasing_tokens:
                words.extend(vocab.setdefault(t, len(vocab)) for t in toks)
                word_at.append(len(words))
            tokens_at.append(len(word_at) - 1)
        self.size = len(kinds)
        self.kinds = kinds
        self.text = "".join(texts)
        # Document i's phrasings are phrasings phrasing_at[i] .. phrasing_at[i + 1] - 1, and
        # phrasing p is text[chars[p]:chars[p + 1]]. Its word tuples likewise: tuples
        # tokens_at[i] .. tokens_at[i + 1] - 1, tuple t being words[word_at[t]:word_at[t + 1]].
        self.chars = np.frombuffer(chars, dtype=np.int64)
        self.phrasing_at = np.frombuffer(phrasing_at, dtype=np.int64)
        self.words = np.frombuffer(words, dtype=np.int32)
        self.word_at = np.frombuffer(word_at, dtype=np.int64)
        self.tokens_at = np.frombuffer(tokens_at, dtype=np.int64)
        self.vocab = vocab
        self.weights = np.fromiter((idf.get(w, 0.0) for w in vocab), dtype=np.float64, count=len(vocab))

    def reweighed(self, idf: dict[str, float], unknown: Iterable[str]) -> "_Columns":
        """The same columns with the weights of the words an update recomputed (the weight
        array copied, 8 bytes a word; everything else shared)."""
        new = _Columns.__new__(_Columns)
        new.__dict__.update(self.__dict__)
        new.__dict__.pop("_sums", None)  # summed with the old weights (the phrasings stay)
        new.weights = weights = self.weights.copy()
        vocab = self.vocab
        for word, value in idf.items():
            at = vocab.get(word)
            if at is not None:
                weights[at] = value
        for word in unknown:
            at = vocab.get(word)
            if at is not None:
                weights[at] = 0.0
        return new

    def phrasings(self, i: int) -> list[str]:
        """Document i's phrasings, as strings of the worker's own: kept for the documents
        scored since the cache was last emptied (at PRECISION_CACHE_SIZE; they do not depend
        on the weights, so an update in place keeps them)."""
        cache = self.__dict__.setdefault("_phrasings", {})
        kept = cache.get(i)
        if kept is None:
            chars = self.chars[self.phrasing_at[i]:self.phrasing_at[i + 1] + 1].tolist()
            text = self.text
            kept = [text[a:b] for a, b in zip(chars, chars[1:])]
            if len(cache) >= PRECISION_CACHE_SIZE:
                cache.clear()
            cache[i] = kept
        return kept

    def closest(self, i: int, asked_words: set[int]) -> tuple[float, int]:
        """:func:`_closest` for document i, by word numbers (see :meth:`closest_many`)."""
        return self.closest_many([i], asked_words)[0]

    def closest_many(self, docs: Sequence[int], asked_words: set[int]) -> list[tuple[float, int]]:
        """:func:`_closest` for each of ``docs``, by word numbers, in a few array operations
        over all their phrasings at once (called document by document, the Python loops
        cost a new question some 200 µs over its 30 to 50 candidates).

        Each sum is the one :func:`_closest` makes, in the same order: a phrasing's shared
        words are added one at a time in its word order, its total likewise (kept per
        phrasing once worked out, until the weights change), so the results are equal to
        the last bit, as an index that scores its documents through their objects needs."""
        if len(set(docs)) < len(docs):  # each once (the runs of one document's words would merge)
            once = list(dict.fromkeys(docs))
            found = dict(zip(once, self.closest_many(once, asked_words)))
            return [found[i] for i in docs]
        out = [(0.0, 0)] * len(docs)
        if not docs or not asked_words:
            return out
        d = np.fromiter(docs, dtype=np.int64, count=len(docs))
        first_tuple = self.tokens_at[d]
        begin = self.word_at[first_tuple]
        length = self.word_at[self.tokens_at[d + 1]] - begin
        offset = np.cumsum(length) - length  # where each document's words start among them all
        span = int(offset[-1] + length[-1])
        where = np.repeat(begin - offset, length) + np.arange(span)  # word positions, doc by doc
        asked = np.zeros(len(self.vocab), dtype=bool)
        asked[np.fromiter(asked_words, dtype=np.int64, count=len(asked_words))] = True
        shared = np.flatnonzero(asked[self.words[where]])
        if not len(shared):
            return out
        at = where[shared]
        phrasing = np.searchsorted(self.word_at, at, side="right") - 1  # word tuple of each
        owner = np.searchsorted(offset, shared, side="right") - 1  # candidate of each
        # The shared words of one phrasing are adjacent: sum each phrasing's in word order.
        starts = _run_starts(phrasing)
        counts = _run_lengths(starts, len(shared))
        nth = np.arange(len(shared)) - np.repeat(starts, counts)
        row = np.repeat(np.arange(len(starts)), counts)
        weight = self.weights[self.words[at]]
        hit = np.zeros(len(starts))
        for n in range(int(counts.max())):
            take = nth == n
            hit[row[take]] += weight[take]
        phrasings = phrasing[starts]
        total = self._totals(phrasings)
        share = np.zeros(len(starts))
        np.divide(hit, total, out=share, where=total > 0)
        # Per candidate, the best share and the first phrasing with it.
        doc = owner[starts]
        firsts = _run_starts(doc)
        best = np.maximum.reduceat(share, firsts)
        ties = np.where(share == np.repeat(best, _run_lengths(firsts, len(starts))), np.arange(len(starts)),
                        len(starts))
        which = phrasings[np.minimum.reduceat(ties, firsts)] - first_tuple[doc[firsts]]
        for c, value, j in zip(doc[firsts].tolist(), best.tolist(), which.tolist()):
            if value > 0:
                out[c] = (value, j)
        return out

    def _totals(self, phrasings: np.ndarray) -> np.ndarray:
        """The total word weight of each phrasing (word tuple) of ``phrasings``, summed in its
        word order; kept, in an array of the worker's own whose pages are written only for
        the phrasings scored, until the weights change (0 stands for not yet summed)."""
        kept = self.__dict__.get("_sums")
        if kept is None:
            kept = self.__dict__["_sums"] = np.zeros(len(self.word_at) - 1)
        total = kept[phrasings]
        missing = total == 0.0
        if missing.any():
            todo = phrasings[missing]
            begin = self.word_at[todo]
            length = self.word_at[todo + 1] - begin
            sums = np.zeros(len(todo))
            for n in range(int(length.max())):
                longer = length > n
                sums[longer] += self.weights[self.words[begin[longer] + n]]
            kept[todo] = sums
            total[missing] = sums
        return total

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_phrasings", None)
        state.pop("_sums", None)
        return state


def _closest(sharing: Iterable[int], parts: Sequence[tuple[Sequence[float], Sequence[Any], float]],
             asked_words: set[Any]) -> tuple[float, int]:
    """How much of a document's closest phrasing the question covers (IDF-weighted), and
    which phrasing: ``sharing``, the phrasings that share a word with the question;
    ``parts``, each phrasing's word weights, words and total weight."""
    best, which = 0.0, 0
    asked = asked_words.__contains__
    # In the phrasings' order: the first of equally close phrasings is the one named.
    for j in sorted(sharing):
        weights, words, total = parts[j]
        # Summed in the phrasing's word order, as a loop would add them, but in C.
        hit = reduce(add, compress(weights, map(asked, words)), 0.0)
        if total > 0 and hit / total > best:
            best, which = hit / total, j
    return best, which


class Index:
    """Inverted index over a list of :class:`Doc`."""

    def __init__(self, docs: Iterable[Doc], word_rarity: Callable[[str], float | None] | None = None,
                 shapes: dict[str, frozenset[str]] | None = None):
        """``word_rarity(token)``: how rare a word is in general Chinese, 0 (very common)
        to 1 (rare), or None if it is no dictionary word (a run of stray characters).
        ``shapes``: each character's look-alikes (内客 is a slip for 内容).

        ``docs`` may be a generator: each document's token sets are folded into the
        postings and then dropped, so memory holds the postings, not 100,000 sets.
        """
        self.word_rarity = word_rarity or (lambda token: 1.0 if len(token) > 1 else None)
        self.docs: list[Doc] = []
        building: dict[str, tuple[array, array]] = {}
        for i, doc in enumerate(docs):
            self.docs.append(doc)
            for tok in doc.primary:
                entry = building.get(tok) or building.setdefault(tok, (array("i"), array("f")))
                entry[0].append(i)
                entry[1].append(1.0)
            for tok in doc.secondary - doc.primary:
                entry = building.get(tok) or building.setdefault(tok, (array("i"), array("f")))
                entry[0].append(i)
                entry[1].append(SECONDARY_WEIGHT)
            doc.primary = doc.secondary = _EMPTY
        n = len(self.docs)
        self.postings: dict[str, tuple[np.ndarray, np.ndarray]] = {
            tok: (np.frombuffer(idx, dtype=np.int32), np.frombuffer(w, dtype=np.float32))
            for tok, (idx, w) in building.items()
        }
        # Words found only in answers (公租房 in "社保、公租房等请向主管部门咨询") do not make a
        # question about them in scope: they are not "known".
        self.answer_only: frozenset[str] = frozenset(
            tok for tok, (_, w) in self.postings.items() if float(w.max()) < 1.0)
        self.idf: dict[str, float] = {
            tok: math.log(1 + (n - len(idx) + 0.5) / (len(idx) + 0.5))
            for tok, (idx, _) in self.postings.items()
        }
        # A real word that no document uses weighs like the rarest possible token.
        self.unknown_weight = math.log(1 + (n + 0.5) / 0.5)
        # The domain's common words: those in at least COMMON_SHARE of the documents.
        self.common = {tok for tok, (idx, _) in self.postings.items()
                       if len(tok) > 1 and len(idx) >= max(2, COMMON_SHARE * n)}
        # Characters and character pairs of every question-like phrasing, for a second view of
        # similarity that needs no word segmentation (typos, regional forms, split words).
        # Their document frequencies are counted in hashed buckets: a fixed 4 MB however large
        # the knowledge (a dictionary of every pair cost over 100 MB at 100,000 entries).
        counts = np.zeros(GRAM_BUCKETS, dtype=np.int32)
        phrasings = 0
        for doc in self.docs:
            if doc.kind == "passage":
                continue
            for phrasing in doc.phrasings:
                phrasings += 1
                for g in set(_grams(phrasing)):
                    counts[_bucket(g)] += 1
        # A pair seen in one phrasing only weighs like one never seen.
        self.gram_unknown = math.log((phrasings + 1) / 1.5)
        weights = np.full(GRAM_BUCKETS, self.gram_unknown, dtype=np.float32)
        seen = counts > 1
        weights[seen] = np.log((phrasings + 1) / (counts[seen] + 0.5))
        self._gram_weights = weights
        # Kept for updates in place (4 MB): a changed entry adjusts the buckets it touches.
        self._gram_counts = counts
        self._phrasings = phrasings
        self.dead = 0  # documents replaced or removed since the index was built
        # The live documents every word's weight was last worked out for (see updated).
        self.weighed_for = n
        # Doc key -> position, for updates in place: built now, before a server forks its
        # workers, so that they share it.
        self._positions: Any = {d.key: i for i, d in enumerate(self.docs)}
        del seen
        self._gram_cache: dict[str, tuple[dict[str, float], float]] = {}
        self.groups = np.fromiter((d.group for d in self.docs), dtype=np.int64, count=n)
        # Equal scores rank by this, never by where a document sits: an index updated in
        # place (replaced documents at the end) ranks them as a build would.
        self.ordinal = np.zeros(n, dtype=np.int64)
        rows = 0
        for i, d in enumerate(self.docs):
            self.ordinal[i], rows = _ordinal(d, rows)
        self._global = self.groups == 0
        self.shapes = shapes or {}
        self._by_pinyin: dict[str, str] = {}
        for tok in sorted(self.postings, key=lambda t: -len(self.postings[t][0])):
            if len(tok) >= 2 and not tok.isascii():
                self._by_pinyin.setdefault(pinyin_key(tok), tok)
        self._columns = _Columns(self.docs, self.idf)

    # -- snapshots ----------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its caches and the word-rarity function (the text pipeline's,
        set again by the desk that restores it)."""
        state = dict(self.__dict__)
        state.pop("word_rarity", None)
        state["_gram_cache"] = {}
        state["_positions"] = None
        if self._columns.size < len(self.docs):
            # Documents added in place since the build: a process restored from the snapshot
            # scores them from columns too (the weights are the index's own, as reweighed).
            state["_columns"] = _Columns(list(self.docs), self.idf)
        # The documents as columns (100,000 objects pickled one by one load in seconds).
        docs = self.docs
        state["docs"] = ("columns", [d.key for d in docs], [d.kind for d in docs], [d.phrasings for d in docs],
                         [d.phrasing_tokens for d in docs], [d.group for d in docs], [d.ref for d in docs])
        # The postings as three arrays (hundreds of thousands of small arrays pickle and
        # load one by one: seconds at 100,000 entries).
        words = list(self.postings)
        lengths = np.fromiter((len(self.postings[w][0]) for w in words), dtype=np.int64, count=len(words))
        state["postings"] = (
            words, lengths,
            np.concatenate([self.postings[w][0] for w in words]) if words else np.zeros(0, np.int32),
            np.concatenate([self.postings[w][1] for w in words]) if words else np.zeros(0, np.float32))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state.get("docs"), tuple):
            _, keys, kinds, phrasings, tokens, groups, refs = state["docs"]
            state["docs"] = [Doc(k, kind, ph, _EMPTY, _EMPTY, toks, g, r)
                             for k, kind, ph, toks, g, r in zip(keys, kinds, phrasings, tokens, groups, refs)]
        if isinstance(state.get("postings"), tuple):
            words, lengths, ids, weights = state["postings"]
            ends = np.cumsum(lengths).tolist()
            starts = [0, *ends[:-1]]
            # Views into the two arrays: one block of memory, shared by forked workers.
            state["postings"] = {w: (ids[a:b], weights[a:b]) for w, a, b in zip(words, starts, ends)}
        self.__dict__.update(state)
        self.word_rarity = lambda token: 1.0 if len(token) > 1 else None
        if self._positions is None:
            self._positions = {d.key: i for i, d in enumerate(self.docs) if self.groups[i] >= 0}

    # -- updates in place -----------------------------------------------------------
    def position(self, key: str) -> int | None:
        """Where the live document with this key is (None if there is none)."""
        if self._positions is None:
            self._positions = {d.key: i for i, d in enumerate(self.docs) if self.groups[i] >= 0}
        return self._positions.get(key)

    def updated(self, removed: Iterable[str], added: Iterable[Doc], also: Iterable[str] = (),
                row_ranks: dict[str, int] | None = None) -> "Index":
        """A new index with the documents of keys ``removed`` taken out and ``added`` put in,
        sharing everything unchanged with this one, which keeps answering meanwhile.

        Work is in proportion to the changed documents' words, not to the knowledge: a
        removed document stays in the postings but can never be found again (its group
        becomes -1, searched by no one), and the statistics of the words the change
        touches are recomputed. The weights of the other words drift by a document or two
        until the next full build, which :attr:`dead` tells the caller when to do. ``also``:
        more words to recompute (those of the removed documents' answers). ``row_ranks``:
        when every report row is put in again (a report brought a row the others lack), each
        row's place among the rows in a build's order, which it then takes.
        """
        new = Index.__new__(Index)  # not copy.copy, which would go through __getstate__
        new.__dict__.update(self.__dict__)
        if self._positions is None:
            self.position("")
        positions = self._positions or {}
        groups = self.groups
        gone = [p for p in (positions.get(k) for k in set(removed)) if p is not None]
        gone_keys = {self.docs[p].key for p in gone}
        added = list(added)
        # The words of removed documents lose a document too: their phrasings' here, the rest
        # (an answer's words, which a document does not keep) as the caller names them.
        touched: set[str] = {t for p in gone for toks in self.docs[p].phrasing_tokens for t in toks} | set(also)
        building: dict[str, tuple[list[int], list[float]]] = {}
        start = len(self.docs)
        # The character pairs of question-like phrasings, counted by their net change: an
        # entry's phrasings that stay (all but the one added, say) cancel out.
        net: Counter[str] = Counter()
        for p in gone:
            if self.docs[p].kind != "passage":
                net.subtract(self.docs[p].phrasings)
        for doc in added:
            if doc.kind != "passage":
                net.update(doc.phrasings)
        phrasings = self._phrasings + sum(net.values())
        deltas: Counter[int] = Counter()
        for phrasing, k in net.items():
            if k:
                for g in set(_grams(phrasing)):
                    deltas[_bucket(g)] += k
        counts = self._gram_counts.copy()
        moved = [b for b, k in deltas.items() if k]
        if moved:
            counts[np.array(moved, dtype=np.int64)] += np.array([deltas[b] for b in moved], dtype=np.int32)
        placed: dict[str, int] = {}
        for i, doc in enumerate(added, start=start):
            for tok in doc.primary:
                building.setdefault(tok, ([], []))
                building[tok][0].append(i)
                building[tok][1].append(1.0)
            for tok in doc.secondary - doc.primary:
                building.setdefault(tok, ([], []))
                building[tok][0].append(i)
                building[tok][1].append(SECONDARY_WEIGHT)
            touched |= set(doc.primary) | set(doc.secondary)
            doc.primary = doc.secondary = _EMPTY
            placed[doc.key] = i
        # The big containers are never copied (see service/layered.py): the changes go on top.
        new.docs = LayeredList.over(self.docs, added)
        # A replaced document keeps its rank among equals; a new one takes its kind's.
        rows = int(np.count_nonzero(self.ordinal >= _ROW_BASE) - np.count_nonzero(self.ordinal >= _PASSAGE_BASE))
        kept_ordinals = {self.docs[p].key: int(self.ordinal[p]) for p in gone}
        extra = np.zeros(len(added), dtype=np.int64)
        for j, d in enumerate(added):
            if row_ranks is not None and d.key in row_ranks:
                extra[j] = _ROW_BASE + row_ranks[d.key]
            elif d.key in kept_ordinals:
                extra[j] = kept_ordinals[d.key]
            else:
                extra[j], rows = _ordinal(d, rows)
        new.ordinal = np.concatenate([self.ordinal, extra])
        new.groups = np.concatenate([groups, np.fromiter((d.group for d in added), dtype=np.int64,
                                                         count=len(added))])
        new.groups[gone] = -1
        new._global = new.groups == 0
        new.dead = self.dead + len(gone)
        new._positions = LayeredMap.over(positions, placed, gone_keys - set(placed))
        changed_postings: dict[str, Any] = {}
        for tok, (idx, w) in building.items():
            old = self.postings.get(tok)
            ids = np.asarray(idx, dtype=np.int32)
            weights = np.asarray(w, dtype=np.float32)
            changed_postings[tok] = (np.concatenate([old[0], ids]), np.concatenate([old[1], weights])) if old else (ids, weights)
        n = len(new.docs) - new.dead
        # A word's weight depends on how many documents are live. An entry or two more moves
        # the weights of the words no change touched by a hair, and they are left; a report's
        # sentences (tens to hundreds at once) move them enough to change answers, so once the
        # live count has moved by more than WEIGHT_DRIFT since every weight was worked out,
        # every word is weighed again, as a build would.
        weighed_for = getattr(self, "weighed_for", len(self.docs) - self.dead)
        if abs(n - weighed_for) > WEIGHT_DRIFT * max(weighed_for, 1):
            touched |= set(self.postings) | set(changed_postings)
            weighed_for = n
        new.weighed_for = weighed_for
        idf: dict[str, float] = {}
        unknown: set[str] = set()
        answer_add: set[str] = set()
        answer_drop: set[str] = set()
        common_add: set[str] = set()
        common_drop: set[str] = set()
        by_pinyin: dict[str, str] = {}
        live_groups = new.groups
        for tok in touched:
            found = changed_postings.get(tok) or self.postings.get(tok)
            if found is None:
                continue
            idx, w = found
            live = live_groups[idx] >= 0
            df = int(np.count_nonzero(live))
            if df == 0:
                # No live document uses the word any more: it is unknown again.
                unknown.add(tok)
                changed_postings.pop(tok, None)
                answer_drop.add(tok)
                common_drop.add(tok)
                continue
            idf[tok] = math.log(1 + (n - df + 0.5) / (df + 0.5))
            (answer_add if float(w[live].max()) < 1.0 else answer_drop).add(tok)
            (common_add if len(tok) > 1 and df >= max(2, COMMON_SHARE * n) else common_drop).add(tok)
            # A word the index had has its pinyin key already (every word's, from the build).
            if len(tok) >= 2 and not tok.isascii() and tok not in self.postings \
                    and pinyin_key(tok) not in self._by_pinyin:
                by_pinyin.setdefault(pinyin_key(tok), tok)
        new.postings = LayeredMap.over(self.postings, changed_postings, unknown)
        new._columns = self._columns.reweighed(idf, unknown)
        new.idf = LayeredMap.over(self.idf, idf, unknown)
        new.answer_only = LayeredSet.over(self.answer_only, answer_add, answer_drop)
        new.common = LayeredSet.over(self.common, common_add, common_drop)
        new._by_pinyin = LayeredMap.over(self._by_pinyin, by_pinyin) if by_pinyin else self._by_pinyin
        new.unknown_weight = math.log(1 + (n + 0.5) / 0.5)
        new._phrasings = phrasings
        new._gram_counts = counts
        new.gram_unknown = math.log((phrasings + 1) / 1.5)
        weights = np.full(GRAM_BUCKETS, new.gram_unknown, dtype=np.float32)
        seen = counts > 1
        weights[seen] = np.log((phrasings + 1) / (counts[seen] + 0.5))
        new._gram_weights = weights
        new._gram_cache = {}
        return new

    # -- query side ---------------------------------------------------------------
    def prepare(self, tokens: Iterable[str], neutral: set[str] | None = None) -> list[QueryTerm]:
        """Weigh question tokens; repair unknown ones by pinyin. ``neutral`` tokens weigh 0."""
        neutral = neutral or set()
        toks = [t for t in tokens if t not in neutral]
        toks = self._join_known(
            [(part, original) for tok, original in self._repair(toks) for part in self._split_compound(tok)])
        terms: list[QueryTerm] = []
        seen: set[str] = set()
        for tok, original in toks:
            if tok in seen:
                continue
            seen.add(tok)
            if tok in self.idf:
                weight = self.idf[tok]
                if len(tok) == 1 and not tok.isascii():
                    # A lone character is mostly a by-product of segmentation (起, 提).
                    weight = min(weight, SINGLE_CHAR_CAP)
                terms.append(QueryTerm(tok, weight, tok not in self.answer_only, original))
            else:
                rarity = None if tok.isdigit() or len(tok) == 1 else self.word_rarity(tok)
                if rarity is None:
                    # Stray characters and numbers that no document uses say little.
                    terms.append(QueryTerm(tok, STRAY_CHAR_WEIGHT, False))
                else:
                    # A word the knowledge never uses: the rarer it is in general Chinese
                    # (公租房, 居住证), the surer it is that the question is about
                    # something else; a common word (发生) says much less.
                    terms.append(QueryTerm(tok, self.unknown_weight * max(rarity, 0.05), False))
        return terms

    def _asked(self, word: str) -> bool:
        """Whether some FAQ phrasing, report row or report sentence of the knowledge uses the
        word (not only an FAQ answer)."""
        return word in self.idf and word not in self.answer_only

    def _split_compound(self, tok: str) -> list[str]:
        """A word no question of the knowledge uses, as the words of theirs it is made of: four
        or more characters in parts of two or more (咨询电话 -> 咨询 电话), or a conjunction
        jieba glued on (或电子邮件 -> 或 电子邮件); otherwise the word itself. A word with a
        single-character part (公租房, 居住证) stays whole and unknown: its last character
        changes what it names."""
        known = self._asked
        if known(tok) or tok.isascii():
            return [tok]
        if len(tok) >= 3 and tok[0] in LEADING_FUNCTION_CHARS:
            # jieba's dictionary holds oddities like 或电子邮件: the conjunction comes off.
            rest = self._split_compound(tok[1:])
            if all(known(part) for part in rest):
                return [tok[0], *rest]
        if len(tok) < 4:
            return [tok]
        n = len(tok)
        best: list[list[str] | None] = [None] * (n + 1)
        best[0] = []
        for end in range(2, n + 1):
            for start in range(0, end - 1):
                head = best[start]
                if head is not None and known(tok[start:end]) and \
                        (best[end] is None or len(head) + 1 < len(best[end])):
                    best[end] = [*head, tok[start:end]]
        return best[n] or [tok]

    def _join_known(self, toks: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
        """Two neighbouring tokens that make one word of the knowledge's questions, when one of
        them is not such a word (予以 + a repaired 公开 is 予以公开), as that word."""
        known = self._asked
        out: list[tuple[str, str | None]] = []
        for tok, original in toks:
            if out and not (known(out[-1][0]) and known(tok)) and known(out[-1][0] + tok):
                prev, prev_original = out.pop()
                joined_from = (prev_original or prev) + (original or tok) if (prev_original or original) else None
                out.append((prev + tok, joined_from))
            else:
                out.append((tok, original))
        return out

    def _by_shape(self, text: str) -> str | None:
        """The word of the knowledge's questions that ``text`` becomes when one character is
        replaced by a look-alike (公幵 -> 公开, 掌捱 -> 掌握), if there is exactly one."""
        if not self.shapes or not 2 <= len(text) <= 4:
            return None
        if all(self._gram_weights[_bucket(a + b)] < self.gram_unknown for a, b in zip(text, text[1:])):
            return None  # the knowledge writes these characters side by side (内容不全): no slip
        found: set[str] = set()
        for i, ch in enumerate(text):
            for alt in self.shapes.get(ch, ()):
                word = text[:i] + alt + text[i + 1:]
                if self._asked(word):
                    found.add(word)
        return found.pop() if len(found) == 1 else None

    def _repair(self, toks: list[str]) -> list[tuple[str, str | None]]:
        """Replace runs of stray characters whose pinyin spells a known word (申清 -> 申请), or
        that spell one with a character replaced by a look-alike (内客 -> 内容).

        Only single characters and non-dictionary pieces are joined, so a real word the
        citizen typed (发生) is never turned into a homophone (发声).
        """
        def loose(tok: str) -> bool:
            return not tok.isascii() and (len(tok) == 1 or self.word_rarity(tok) is None)

        out: list[tuple[str, str | None]] = []
        i = 0
        while i < len(toks):
            j = i
            while j < len(toks) and loose(toks[j]) and j - i < 4:
                j += 1
            for end in range(j, i + 1, -1):
                window = toks[i:end]
                typed = "".join(window)
                # Of a homophone and a look-alike, the one that keeps more of what was typed
                # (公幵 is 公开, not 攻坚).
                found = [w for w in (self._by_pinyin.get(pinyin_key(typed)), self._by_shape(typed)) if w]
                known = max(found, key=lambda w: sum(a == b for a, b in zip(w, typed)), default=None)
                if known:
                    out.append((known, "".join(window)))
                    i = end
                    break
            else:
                out.append((toks[i], None))
                i += 1
        return out

    # -- search -------------------------------------------------------------------
    def search(self, terms: list[QueryTerm], normalised: str, *, groups: Iterable[int] = (),
               limit: int = 10, typed: str | None = None) -> list[Candidate]:
        """Best documents for the weighed terms, searching global docs and ``groups``.
        ``normalised`` is compared literally with the phrasings; ``typed``, the question as
        typed when ``normalised`` leaves words out, still counts as an exact match."""
        total = sum(t.weight for t in terms)
        if total <= 0 or not self.docs:
            return []
        acc = np.zeros(len(self.docs), dtype=np.float32)
        for term in terms:
            posting = self.postings.get(term.text)
            if posting is not None:
                acc[posting[0]] += term.weight * posting[1]
        allowed = self._global.copy()
        for g in groups:
            allowed |= self.groups == g
        acc[~allowed] = 0.0
        k = min(CANDIDATES, len(acc))
        top = np.argpartition(-acc, k - 1)[:k]
        kth = float(acc[top].min())
        if kth > 0:
            ties = np.flatnonzero(acc == kth)
            if len(ties) > 1:  # which of the equals make the cut: the first by rank
                above = top[acc[top] > kth]
                ties = ties[np.argsort(self.ordinal[ties], kind="stable")][:k - len(above)]
                top = np.concatenate([above, ties])
        top = top[acc[top] > 0]
        top = top[np.lexsort((self.ordinal[top], -acc[top]))]  # best coverage first, equals by rank
        query_compact = normalised.replace(" ", "")
        typed_compact = (typed or "").replace(" ", "")
        query_set = {t.text for t in terms}
        # The documents the index was built with are scored from its columns, the ones
        # added since through their objects (see _Columns).
        columns = self._columns
        built, kinds, vocab = columns.size, columns.kinds, columns.vocab
        query_ids = {vocab[t] for t in query_set if t in vocab}
        order = top.tolist()
        # The precision of every candidate scored from the columns, in one pass (the loop
        # below needs it for most of them, and one at a time it cost more than all at once).
        from_columns = [i for i in order if i < built and kinds[i] != "passage"]
        precise = dict(zip(from_columns, columns.closest_many(from_columns, query_ids)))
        scored: list[tuple[float, int, float, float, float, tuple[int, ...], list[str]]] = []
        kept: list[float] = []  # the best ``limit`` scores so far (a min-heap)
        for i, found in zip(order, acc[top].tolist()):
            coverage = found / total
            if len(kept) >= limit and _best_possible(coverage) < kept[0]:
                break  # no later (lower-coverage) candidate can enter the top ``limit``
            if i < built:
                doc, kind, phrasings = None, kinds[i], columns.phrasings(i)
            else:
                doc = self.docs[i]
                kind, phrasings = doc.kind, doc.phrasings
            fuzzy, near = self._fuzzy(kind, phrasings, query_compact)
            if typed_compact and typed_compact != query_compact and typed_compact in phrasings:
                fuzzy, near = 1.0, (phrasings.index(typed_compact), *near)
            if kind == "passage":
                precision = 0.0
                # A sentence of a long report shares a word or two with almost anything:
                # it answers only when the shared words weigh enough on their own.
                strength = min(1.0, found / PASSAGE_MIN_WEIGHT)
                score = (0.85 * coverage + 0.15 * fuzzy) * strength
            elif len(kept) >= limit and min(0.8 * 2 * coverage / (1 + coverage) + 0.2 * fuzzy, 1.0) + 1e-9 \
                    < min(kept[0], 1.0):
                # Even a precision of 1 would leave it below ``limit`` others: it is not
                # returned, so its precision (the dearest part) is never worked out.
                continue
            else:
                if doc is None:
                    precision, closest = precise[i]
                else:
                    where, parts = self._phrasing_weights(doc)
                    sharing = {j for t in query_set for j in where.get(t, ())}
                    precision, closest = _closest(sharing, parts, query_set)
                near = (*near, closest)
                # Both directions must agree: the question's words are in the document
                # (coverage) and the closest phrasing's words are in the question
                # (precision); their harmonic mean punishes either one being low.
                both = 2 * coverage * precision / (coverage + precision) if coverage + precision else 0.0
                score = 0.8 * both + 0.2 * fuzzy
            scored.append((min(score, 1.0), i, coverage, fuzzy, precision, near, phrasings))
            if len(kept) < limit:
                heapq.heappush(kept, score)
            else:
                heapq.heappushpop(kept, score)
        scored.sort(key=lambda c: c[0], reverse=True)
        query_vec = self._gram_vector(query_compact, cache=False)
        out: list[Candidate] = []
        for score, i, coverage, fuzzy, precision, near, phrasings in scored[:limit]:
            cand = Candidate(self.docs[i], score, coverage, fuzzy, precision)
            cand.near = near
            if cand.doc.kind != "passage":
                # Compared with the closest phrasings only (by literal similarity and by words):
                # comparing every phrasing of every candidate would double the cost of a question.
                cand.chars = max((_cosine(query_vec, self._gram_vector(phrasings[j]))
                                  for j in set(near) if 0 <= j < len(phrasings)), default=0.0)
            else:
                # A passage is long: how much of the question's characters it contains.
                grams = set(_grams(phrasings[0]))
                total_w = sum(query_vec[0].values()) or 1.0
                cand.chars = sum(w for g, w in query_vec[0].items() if g in grams) / total_w
            out.append(cand)
        return out

    def _gram_vector(self, text: str, cache: bool = True) -> tuple[dict[str, float], float]:
        """IDF-weighted character and character-pair counts of a text, with their norm."""
        if cache:
            hit = self._gram_cache.get(text)
            if hit is not None:
                return hit
        vec: dict[str, float] = {}
        weights = self._gram_weights
        for g in _grams(text):
            vec[g] = vec.get(g, 0.0) + float(weights[_bucket(g)])
        result = (vec, math.sqrt(sum(v * v for v in vec.values())) or 1.0)
        if cache:
            if len(self._gram_cache) >= GRAM_CACHE_SIZE:
                self._gram_cache.clear()
            self._gram_cache[text] = result
        return result

    def _phrasing_weights(self, doc: Doc) -> tuple[dict[str, list[int]], list[tuple[list[float], tuple[str, ...], float]]]:
        """Which phrasings of a document use each word, and each phrasing's word weights,
        words and total weight: the same for every question, so worked out once per document
        and index (an updated index has its own weights, and its own cache)."""
        cache = _PHRASING_WEIGHTS.get(self)
        if cache is None or cache[0] is not self.idf:
            cache = _PHRASING_WEIGHTS[self] = (self.idf, {})
        kept = cache[1].get(doc.key)
        if kept is not None and kept[0] is doc:
            return kept[1], kept[2]
        idf = self.idf.get
        where: dict[str, list[int]] = {}
        parts: list[tuple[list[float], tuple[str, ...], float]] = []
        for j, toks in enumerate(doc.phrasing_tokens):
            for t in dict.fromkeys(toks):
                where.setdefault(t, []).append(j)
            weights = list(map(idf, toks, repeat(0.0)))
            parts.append((weights, toks, reduce(add, weights, 0.0)))
        if len(cache[1]) >= PRECISION_CACHE_SIZE:
            cache[1].clear()
        cache[1][doc.key] = (doc, where, parts)
        return where, parts

    @staticmethod
    def _fuzzy(kind: str, phrasings: list[str], query_compact: str) -> tuple[float, tuple[int, ...]]:
        """The best rapidfuzz similarity to a phrasing, and the NEAR_PHRASINGS closest ones."""
        scorer = fuzz.partial_ratio if kind == "passage" else fuzz.ratio
        near = process.extract(query_compact, phrasings, scorer=scorer, limit=NEAR_PHRASINGS)
        if not near:
            return 0.0, ()
        return near[0][1] / 100.0, tuple(j for _, _, j in near)


# Per index (weakly: an index that is replaced takes its cache with it), the phrasing
# weights of the documents it has scored; see :meth:`Index._phrasing_weights`.
_PHRASING_WEIGHTS: "weakref.WeakKeyDictionary[Index, tuple[dict[str, float], dict[str, Any]]]" = \
    weakref.WeakKeyDictionary()
