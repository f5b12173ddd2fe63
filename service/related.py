"""Related FAQ entries: for one entry, the few a citizen who read it may want next.

Pure Python (no Flask). An entry's relatives are the entries of its own category first,
then others, each group ordered by the words their phrasings (question and alternates,
as the desk tokenises them) share with the entry. A shared word counts by how few
entries use it, so 信息处理费 relates two entries and 申请 (in most of them) hardly does.

:func:`for_desk` keeps one :class:`Related` per desk, that is per knowledge version: a
curator's change builds a new desk and with it new relatives.
"""
from __future__ import annotations

import gc
import os
import threading
import weakref
from typing import Any, Iterable, Mapping

import numpy as np
# numpy 2 imports numpy.ma at the first np.unique (14 ms). Imported with this module, a
# pre-forking server's master holds it for all its workers, rather than each worker
# importing it while a citizen waits for its first related entries.
import numpy.ma  # noqa: F401

from .layered import LayeredMap

MAX_RELATED = 3
# Words used by more entries than this bring no candidates (the overlap still counts them).
FANOUT = 1_000


class Related:
    """The published entries, their categories and words; relatives are found on demand
    and kept (at most one list per entry).

    The words are held in arrays, not in Python containers: finding an entry's relatives
    reads the words of hundreds of others, and in a forked worker every Python object read
    has its reference count written, which copies the page it sits on (at 100,000 entries,
    some 14 MB of each worker's memory after a thousand questions). The entries as built
    are rows, in id order: each row's word numbers (``_words`` from ``_starts[row]``), each
    word's rows (``_post`` from ``_post_starts[word]``) and each row's category. An update
    in place marks the rows of the entries it changed as gone and keeps those entries, as
    they are now, in small containers beside the arrays (``_extra``), as the index does.
    """

    def __init__(self, entries: Mapping[int, Mapping[str, Any]], words: Mapping[int, Iterable[str]]):
        """``entries``: id -> at least ``key``, ``question`` and ``category``;
        ``words``: id -> the words of the entry's phrasings."""
        self.entries = entries
        self.by_key = {str(e["key"]): entry_id for entry_id, e in entries.items() if e.get("key")}
        ids = sorted(entries)
        vocab: dict[str, int] = {}
        flat: list[int] = []
        starts = [0]
        categories: dict[str, int] = {}
        row_category: list[int] = []
        for entry_id in ids:
            flat.extend(sorted({vocab.setdefault(w, len(vocab)) for w in words.get(entry_id, ())}))
            starts.append(len(flat))
            row_category.append(categories.setdefault(entries[entry_id].get("category") or "", len(categories)))
        self._vocab: Mapping[str, int] = vocab
        self._ids = np.array(ids, dtype=np.int64)
        self._words = np.array(flat, dtype=np.int32)
        self._starts = np.array(starts, dtype=np.int64)
        owners = np.repeat(np.arange(len(ids), dtype=np.int32), np.diff(self._starts))
        order = np.argsort(self._words, kind="stable")  # each word's rows stay in id order
        self._post = owners[order]
        counts = np.bincount(self._words, minlength=len(vocab)).astype(np.int64)
        self._post_starts = np.concatenate([np.zeros(1, np.int64), np.cumsum(counts)])
        self._count = counts  # entries using each word, updated in place
        self._categories: Mapping[str, int] = categories
        self._row_category = np.array(row_category, dtype=np.int32)
        by_row_category = np.argsort(self._row_category, kind="stable")
        bounds = np.searchsorted(self._row_category[by_row_category], np.arange(len(categories) + 1))
        self._category_rows = [by_row_category[bounds[c]:bounds[c + 1]].astype(np.int32)
                               for c in range(len(categories))]
        self._gone = np.zeros(len(ids), dtype=bool)
        self._extra: dict[int, np.ndarray] = {}  # entry id -> its word numbers, for entries changed since
        self._extra_users: dict[int, list[int]] = {}  # word number -> changed entries using it
        self._extra_by_category: dict[str, list[int]] = {}
        self.total = len(entries) or 1
        self._found: dict[int, list[int]] = {}
        self._lock = threading.Lock()

    def updated(self, entries: Mapping[int, Mapping[str, Any]], changed: Iterable[int],
                words: Mapping[int, Iterable[str]]) -> "Related":
        """The relatives after the ``changed`` entries were saved, archived or removed
        (``entries`` the published entries now, ``words`` those of the changed ones),
        sharing the arrays with this one, which stays as it was."""
        changed = set(changed)
        new = Related.__new__(Related)
        new.__dict__.update({k: v for k, v in self.__dict__.items() if k not in ("_found", "_lock")})
        new.entries = entries
        keys_gone = {k for e in changed if e in self.entries and (k := str(self.entries[e].get("key") or ""))}
        keys_now = {str(entries[e]["key"]): e for e in changed if e in entries and entries[e].get("key")}
        # Never copied (see service/layered.py): the changes go on top.
        new.by_key = LayeredMap.over(self.by_key, keys_now, keys_gone - set(keys_now))
        added = {w for e in changed if e in entries for w in words.get(e, ()) if w not in self._vocab}
        if added:
            new._vocab = LayeredMap.over(self._vocab, {w: len(self._vocab) + i for i, w in enumerate(sorted(added))})
        count = np.concatenate([self._count, np.zeros(len(new._vocab) - len(self._count), np.int64)])
        gone = self._gone.copy()
        extra = dict(self._extra)
        for e in changed:
            before = self._words_of(e)
            if before is not None:
                np.subtract.at(count, before, 1)
            extra.pop(e, None)
            row = self._row(e)
            if row is not None:
                gone[row] = True
            if e in entries:
                now = np.array(sorted({new._vocab[w] for w in words.get(e, ())}), dtype=np.int32)
                np.add.at(count, now, 1)
                extra[e] = now
        new._count, new._gone, new._extra = count, gone, extra
        new._extra_users, new._extra_by_category = {}, {}
        for e in sorted(extra):
            for w in extra[e].tolist():
                new._extra_users.setdefault(w, []).append(e)
            new._extra_by_category.setdefault(entries[e].get("category") or "", []).append(e)
        new.total = len(entries) or 1
        new._found = {}
        new._lock = threading.Lock()
        return new

    def _row(self, entry_id: int) -> int | None:
        """The row an entry was built in (gone or not), or None."""
        at = int(np.searchsorted(self._ids, entry_id))
        return at if at < len(self._ids) and int(self._ids[at]) == entry_id else None

    def _words_of(self, entry_id: int) -> np.ndarray | None:
        """The word numbers of a published entry as it is now, or None."""
        if entry_id in self._extra:
            return self._extra[entry_id]
        row = self._row(entry_id)
        if row is None or self._gone[row]:
            return None
        return self._words[self._starts[row]:self._starts[row + 1]]

    def _weights(self, word_numbers: np.ndarray) -> np.ndarray:
        """A word every entry uses says nothing (weight 0); one only two share says much."""
        return np.log(self.total / self._count[word_numbers])

    def of(self, entry_id: int, limit: int = MAX_RELATED) -> list[int]:
        """Up to ``limit`` (at most :data:`MAX_RELATED`) relatives of an entry, never the
        entry itself; [] for an entry not published."""
        if entry_id not in self.entries:
            return []
        with self._lock:
            found = self._found.get(entry_id)
        if found is None:
            found = self._rank(entry_id)
            with self._lock:
                self._found[entry_id] = found
        return found[:max(0, min(limit, MAX_RELATED))]

    def _locate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows of published entries ``ids``, and which of them are built rows (the others
        are entries changed since, in ``_extra``)."""
        n = len(self._ids)
        if not n:
            return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
        rows = np.minimum(np.searchsorted(self._ids, ids), n - 1)
        return rows, (self._ids[rows] == ids) & ~self._gone[rows]

    def _first_of_category(self, category: str, entry_id: int) -> np.ndarray:
        """The first :data:`MAX_RELATED` other entries of a category, in id order."""
        code = self._categories.get(category)
        rows = self._category_rows[code] if code is not None else np.zeros(0, np.int32)
        firsts: list[int] = []
        for start in range(0, len(rows), 64):  # a category may hold most of 100,000 entries
            chunk = rows[start:start + 64]
            firsts += self._ids[chunk[~self._gone[chunk]]].tolist()
            if len(firsts) > MAX_RELATED:
                break
        mixed = sorted(e for e in {*firsts, *self._extra_by_category.get(category, ())} if e != entry_id)
        return np.array(mixed[:MAX_RELATED], dtype=np.int64)

    def _rank(self, entry_id: int) -> list[int]:
        mine = self._words_of(entry_id)
        if mine is None:
            return []
        weights = self._weights(mine)
        # A word thousands of entries use brings no candidates of its own (it still counts
        # in the overlap): at 100,000 entries it would mean scoring most of them.
        bringing = mine[(weights > 0) & (self._count[mine] <= FANOUT)]
        rows = [self._post[self._post_starts[w]:self._post_starts[w + 1]] for w in bringing.tolist()
                if w < len(self._post_starts) - 1]
        sharing = np.unique(np.concatenate(rows)) if rows else np.zeros(0, np.int32)
        sharing = sharing[~self._gone[sharing]]
        others = {e for w in bringing.tolist() for e in self._extra_users.get(w, ())}
        category = self.entries[entry_id].get("category") or ""
        # Same-category entries that share no word still relate (the category says they do),
        # after those that do; other categories only by shared words.
        candidates = np.union1d(self._ids[sharing], np.array(sorted(others), dtype=np.int64))
        candidates = np.union1d(candidates, self._first_of_category(category, entry_id))
        candidates = candidates[candidates != entry_id]
        if not len(candidates):
            return []
        rows_at, built = self._locate(candidates)
        code = self._categories.get(category, -1)
        same = np.zeros(len(candidates), bool)
        same[built] = self._row_category[rows_at[built]] == code
        for i in np.flatnonzero(~built).tolist():
            same[i] = (self.entries[int(candidates[i])].get("category") or "") == category
        scores = self._overlaps(mine, weights, candidates, rows_at, built)
        keep = (scores > 0) | same
        # Sums of the same words in another order may differ in the last bits: ties stay ties.
        order = np.lexsort((candidates[keep], -np.round(scores[keep], 12), ~same[keep]))
        return candidates[keep][order][:MAX_RELATED].tolist()

    def _overlaps(self, mine: np.ndarray, weights: np.ndarray, others: np.ndarray, rows: np.ndarray,
                  built: np.ndarray) -> np.ndarray:
        """How much of their words each entry of ``others`` (published ids; ``rows`` and
        ``built`` from :meth:`_locate`) shares with an entry of words ``mine`` (0..1), rare
        words counting most: the weight of the words both use over the weight of the words
        either uses."""
        lengths = np.zeros(len(others), np.int64)
        at = rows[built]
        lengths[built] = self._starts[at + 1] - self._starts[at]
        changed = np.flatnonzero(~built)
        bags = [self._extra[e] for e in others[changed].tolist()]
        lengths[changed] = [len(b) for b in bags]
        # Each built row's words, read straight from the flat array, then the changed entries'.
        spans = lengths[built]
        firsts = np.repeat(self._starts[at] - (np.cumsum(spans) - spans), spans)
        flat = np.concatenate([self._words[firsts + np.arange(int(spans.sum()))], *bags])
        owner = np.concatenate([np.repeat(np.flatnonzero(built), spans),
                                np.repeat(changed, lengths[changed])])
        theirs = self._weights(flat)
        both = np.bincount(owner, theirs * np.isin(flat, mine), minlength=len(others))
        either = float(weights.sum()) + np.bincount(owner, theirs, minlength=len(others)) - both
        return np.divide(both, either, out=np.zeros(len(others)), where=either > 0)

    def questions(self, entry_id: int, limit: int = MAX_RELATED) -> list[dict[str, Any]]:
        """The relatives as the chat and the pages show them: ``{"id", "key", "question"}``."""
        return [{"id": e, "key": self.entries[e]["key"], "question": self.entries[e]["question"]}
                for e in self.of(entry_id, limit)]

    def words_now(self) -> dict[int, list[str]]:
        """Each published entry's words as they are now (for a snapshot written after updates)."""
        names = [""] * len(self._vocab)
        for word, number in self._vocab.items():
            names[number] = word
        return {e: [names[w] for w in found.tolist()] for e in self.entries
                if (found := self._words_of(e)) is not None}


_BY_DESK: "weakref.WeakKeyDictionary[Any, Related]" = weakref.WeakKeyDictionary()
_BY_DESK_LOCK = threading.Lock()
_BUILDING: "weakref.WeakSet[Any]" = weakref.WeakSet()
# Desks waiting for the relatives of the desk they were updated from, and what changed.
_WAITING: "weakref.WeakSet[Any]" = weakref.WeakSet()
_PENDING: "weakref.WeakKeyDictionary[Any, list[tuple[Any, set[int]]]]" = weakref.WeakKeyDictionary()


def _forked() -> None:
    """A forked worker starts with a free lock and no build under way (those were the
    master's threads')."""
    global _BY_DESK_LOCK
    _BY_DESK_LOCK = threading.Lock()
    _BUILDING.clear()
    _WAITING.clear()
    _PENDING.clear()


os.register_at_fork(after_in_child=_forked)
# Above this many entries, a desk's relatives are found in the background.
BACKGROUND_ABOVE = 5_000


def desk_words(desk: Any) -> dict[int, set[str]]:
    """Each published entry's words as the desk's index holds them (its question and
    alternates, tokenised as questions are), without question words (什么, 怎么) and
    single characters."""
    question_words = getattr(desk.language, "question_words", set())
    words: dict[int, set[str]] = {}
    for doc in desk.index.docs:
        if doc.kind == "faq":
            words[doc.ref] = {t for toks in doc.phrasing_tokens for t in toks
                              if len(t) > 1 and t not in question_words}
    return words


def entry_words(desk: Any, entry_ids: Iterable[int]) -> dict[int, set[str]]:
    """:func:`desk_words` of some entries only (those the desk publishes)."""
    question_words = getattr(desk.language, "question_words", set())
    words: dict[int, set[str]] = {}
    for entry_id in entry_ids:
        at = desk.index.position(f"faq:{entry_id}")
        if at is not None and entry_id in desk.entries:
            words[entry_id] = {t for toks in desk.index.docs[at].phrasing_tokens for t in toks
                               if len(t) > 1 and t not in question_words}
    return words


def carry_over(old: Any, new: Any, changed: Iterable[int]) -> None:
    """Give a desk updated in place the relatives of the one it was updated from, updated
    for the changed entries: at once if that one has found them, when it has if it is
    finding them (one build at a time, never one per save)."""
    changed = set(changed)
    with _BY_DESK_LOCK:
        before = _BY_DESK.get(old)
        if before is None:
            if old in _BUILDING or old in _WAITING:
                _PENDING.setdefault(old, []).append((weakref.ref(new), changed))
                _WAITING.add(new)
            return
    related = before.updated(new.entries, changed, entry_words(new, changed))
    with _BY_DESK_LOCK:
        _BY_DESK.setdefault(new, related)
        waiting = _PENDING.pop(new, [])
        _WAITING.discard(new)
    for later, more in waiting:  # desks updated from this one meanwhile
        if (desk := later()) is not None:
            carry_over(new, desk, more)


def for_desk(desk: Any, wait: bool = False) -> Related:
    """The :class:`Related` of a :class:`service.desk.Desk`, built at first use and kept as
    long as the desk (its knowledge version) lives.

    A large knowledge base's relatives are found in the background (a few seconds at
    100,000 entries): until then, none are offered; ``wait``: found now, in this thread.
    """
    with _BY_DESK_LOCK:
        found = _BY_DESK.get(desk)
        if found is not None:
            return found
        if len(desk.entries) < BACKGROUND_ABOVE or (wait and desk not in _BUILDING and desk not in _WAITING):
            found = _BY_DESK[desk] = Related(desk.entries, desk_words(desk))
            return found
        if desk not in _BUILDING and desk not in _WAITING and not _BUILDING:
            _BUILDING.add(desk)
            threading.Thread(target=_build_later, args=(desk,), daemon=True).start()
        return NONE


def found(desk: Any) -> bool:
    """Whether the desk's relatives are found (never starts finding them: a pre-forking
    master's follower asks this, and must start no thread of its own)."""
    with _BY_DESK_LOCK:
        return desk in _BY_DESK


# What a large desk offers until its relatives are found: none.
NONE = Related({}, {})

_STATE_FIELDS = ("by_key", "_vocab", "_ids", "_words", "_starts", "_post", "_post_starts", "_count",
                 "_categories", "_row_category", "_category_rows", "_gone", "total")


def state_of(desk: Any) -> dict[str, Any] | None:
    """What an index snapshot keeps of a desk's relatives (plain dicts and arrays), or None
    if they are not found (yet). Pickled with the desk, its words are the index's own
    strings. Relatives updated in place are written as found afresh, without layers."""
    with _BY_DESK_LOCK:
        found = _BY_DESK.get(desk)
    if found is None or found is NONE:
        return None
    if found._extra or bool(found._gone.any()) or isinstance(found._vocab, LayeredMap):
        found = Related(found.entries, found.words_now())
    state: dict[str, Any] = {name: getattr(found, name) for name in _STATE_FIELDS}
    state["by_key"], state["_vocab"], state["_categories"] = \
        dict(found.by_key), dict(found._vocab), dict(found._categories)
    return state


def adopt(desk: Any, state: dict[str, Any]) -> Related:
    """Give a desk restored from a snapshot the relatives saved with it (the desk's own
    entries), as if they had been found for it; those of a desk updated from it follow
    (:func:`carry_over`)."""
    found = Related.__new__(Related)
    found.entries = desk.entries
    for name in _STATE_FIELDS:
        setattr(found, name, state[name])
    found.total = int(state["total"])
    found._extra, found._extra_users, found._extra_by_category = {}, {}, {}
    found._found = {}
    found._lock = threading.Lock()
    with _BY_DESK_LOCK:
        return _BY_DESK.setdefault(desk, found)


def _build_later(desk: Any) -> None:
    waiting: list[Any] = []
    try:
        related = Related(desk.entries, desk_words(desk))
        with _BY_DESK_LOCK:
            _BY_DESK.setdefault(desk, related)
            waiting = _PENDING.pop(desk, [])
        # Long-lived objects (the words): kept out of the garbage collector's scans.
        gc.freeze()
    finally:
        with _BY_DESK_LOCK:
            _BUILDING.discard(desk)
    for later, changed in waiting:
        if (new := later()) is not None:
            carry_over(desk, new, changed)
