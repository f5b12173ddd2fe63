"""Related FAQ entries: for one entry, the few a citizen who read it may want next.

Pure Python (no Flask). An entry's relatives are the entries of its own category first,
then others, each group ordered by the words their phrasings (question and alternates,
as the desk tokenises them) share with the entry. A shared word counts by how few
entries use it, so 信息处理费 relates two entries and 申请 (in most of them) hardly does.

:func:`for_desk` keeps one :class:`Related` per desk, that is per knowledge version: a
curator's change builds a new desk and with it new relatives.
"""
from __future__ import annotations

import bisect
import gc
import math
import os
import threading
import weakref
from typing import Any, Iterable, Mapping

from .layered import LayeredMap

MAX_RELATED = 3
# Words used by more entries than this bring no candidates (the overlap still counts them).
FANOUT = 1_000


class Related:
    """The published entries, their categories and words; relatives are found on demand
    and kept (at most one list per entry)."""

    def __init__(self, entries: Mapping[int, Mapping[str, Any]], words: Mapping[int, Iterable[str]]):
        """``entries``: id -> at least ``key``, ``question`` and ``category``;
        ``words``: id -> the words of the entry's phrasings."""
        self.entries = entries
        self.by_key = {str(e["key"]): entry_id for entry_id, e in entries.items() if e.get("key")}
        self.words = {entry_id: frozenset(words.get(entry_id, ())) for entry_id in entries}
        self.postings: dict[str, list[int]] = {}
        for entry_id, bag in self.words.items():
            for word in bag:
                self.postings.setdefault(word, []).append(entry_id)
        self.total = len(entries) or 1
        self.by_category: dict[str, list[int]] = {}
        for entry_id, entry in entries.items():
            self.by_category.setdefault(entry.get("category") or "", []).append(entry_id)
        self._found: dict[int, list[int]] = {}
        self._lock = threading.Lock()

    def updated(self, entries: Mapping[int, Mapping[str, Any]], changed: Iterable[int],
                words: Mapping[int, Iterable[str]]) -> "Related":
        """The relatives after the ``changed`` entries were saved, archived or removed
        (``entries`` the published entries now, ``words`` those of the changed ones),
        sharing what did not change with this one, which stays as it was."""
        new = Related.__new__(Related)
        new.entries = entries
        changed = set(changed)
        before_words: dict[int, frozenset[str]] = {e: self.words[e] for e in changed if e in self.words}
        words_now = {e: frozenset(words.get(e, ())) for e in changed if e in entries}
        touched_words = set().union(*before_words.values(), *words_now.values())
        touched_categories = {self.entries[e].get("category") or "" for e in before_words} | \
            {entries[e].get("category") or "" for e in words_now}
        keys_gone = {k for e in before_words if (k := str(self.entries[e].get("key") or ""))}
        keys_now = {str(entries[e]["key"]): e for e in words_now if entries[e].get("key")}
        # Never copied (see service/layered.py): the changes go on top.
        new.by_key = LayeredMap.over(self.by_key, keys_now, keys_gone - set(keys_now))
        new.words = LayeredMap.over(self.words, words_now, set(before_words) - set(words_now))
        users: dict[str, list[int]] = {}
        for word in touched_words:
            had = {e for e, bag in before_words.items() if word in bag}
            has = {e for e, bag in words_now.items() if word in bag}
            if had == has:
                continue  # the entries that changed use the word as before: its list stands
            ids = [e for e in self.postings.get(word, []) if e not in had]
            for e in has:
                bisect.insort(ids, e)  # in id order, as a full build lists them
            users[word] = ids
        new.postings = LayeredMap.over(self.postings, {w: ids for w, ids in users.items() if ids},
                                       {w for w, ids in users.items() if not ids})
        new.total = len(entries) or 1
        categories: dict[str, list[int]] = {}
        for category in touched_categories:
            ids = [e for e in self.by_category.get(category, []) if e not in changed]
            for e in words_now:
                if (entries[e].get("category") or "") == category:
                    bisect.insort(ids, e)
            categories[category] = ids
        new.by_category = LayeredMap.over(self.by_category, categories)
        new._found = {}
        new._lock = threading.Lock()
        return new

    def weight(self, word: str) -> float:
        """A word every entry uses says nothing (weight 0); one only two share says much."""
        users = self.postings.get(word)
        return math.log(self.total / len(users)) if users else 0.0

    def overlap(self, a: int, b: int) -> float:
        """How much of the two entries' words they share (0..1), rare words counting most."""
        wa, wb = self.words[a], self.words[b]
        weight = self.weight
        union = sum(weight(w) for w in wa | wb)
        return sum(weight(w) for w in wa & wb) / union if union else 0.0

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

    def _rank(self, entry_id: int) -> list[int]:
        category = self.entries[entry_id].get("category") or ""
        # A word thousands of entries use brings no candidates of its own (it still counts
        # in the overlap): at 100,000 entries it would mean scoring most of them.
        sharing = {other for w in self.words[entry_id] if self.weight(w) > 0 and len(self.postings[w]) <= FANOUT
                   for other in self.postings[w]}
        same = [e for e in self.by_category.get(category, []) if e != entry_id]
        # Same-category entries that share no word still relate (the category says they do),
        # after those that do; other categories only by shared words.
        scored = {e: self.overlap(entry_id, e) for e in sharing | set(same[:MAX_RELATED]) if e != entry_id}
        same_set = set(same)
        ranked = sorted((e for e, score in scored.items() if score > 0 or e in same_set),
                        key=lambda e: (e not in same_set, -scored[e], e))
        return ranked[:MAX_RELATED]

    def questions(self, entry_id: int, limit: int = MAX_RELATED) -> list[dict[str, Any]]:
        """The relatives as the chat and the pages show them: ``{"id", "key", "question"}``."""
        return [{"id": e, "key": self.entries[e]["key"], "question": self.entries[e]["question"]}
                for e in self.of(entry_id, limit)]


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

_STATE_FIELDS = ("by_key", "words", "postings", "by_category")


def state_of(desk: Any) -> dict[str, Any] | None:
    """What an index snapshot keeps of a desk's relatives (plain dicts), or None if they are
    not found (yet). Pickled with the desk, its words are the index's own strings."""
    with _BY_DESK_LOCK:
        found = _BY_DESK.get(desk)
    if found is None or found is NONE:
        return None
    state: dict[str, Any] = {name: dict(getattr(found, name)) for name in _STATE_FIELDS}
    state["total"] = found.total
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
        # Millions of long-lived objects: kept out of the garbage collector's scans.
        gc.freeze()
    finally:
        with _BY_DESK_LOCK:
            _BUILDING.discard(desk)
    for later, changed in waiting:
        if (new := later()) is not None:
            carry_over(desk, new, changed)
