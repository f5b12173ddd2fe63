"""Related FAQ entries: for one entry, the few a citizen who read it may want next.

Pure Python (no Flask). An entry's relatives are the entries of its own category first,
then others, each group ordered by the words their phrasings (question and alternates,
as the desk tokenises them) share with the entry. A shared word counts by how few
entries use it, so 信息处理费 relates two entries and 申请 (in most of them) hardly does.

:func:`for_desk` keeps one :class:`Related` per desk, that is per knowledge version: a
curator's change builds a new desk and with it new relatives.
"""
from __future__ import annotations

import math
import threading
import weakref
from typing import Any, Iterable, Mapping

MAX_RELATED = 3


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
        total = len(entries) or 1
        # A word every entry uses says nothing (weight 0); one only two share says much.
        self.weight = {w: math.log(total / len(ids)) for w, ids in self.postings.items()}
        self.by_category: dict[str, list[int]] = {}
        for entry_id, entry in entries.items():
            self.by_category.setdefault(entry.get("category") or "", []).append(entry_id)
        self._found: dict[int, list[int]] = {}
        self._lock = threading.Lock()

    def overlap(self, a: int, b: int) -> float:
        """How much of the two entries' words they share (0..1), rare words counting most."""
        wa, wb = self.words[a], self.words[b]
        union = sum(self.weight[w] for w in wa | wb)
        return sum(self.weight[w] for w in wa & wb) / union if union else 0.0

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
        sharing = {other for w in self.words[entry_id] if self.weight[w] > 0 for other in self.postings[w]}
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
# Above this many entries, an updated desk's relatives are found in the background.
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


def for_desk(desk: Any) -> Related:
    """The :class:`Related` of a :class:`service.desk.Desk`, built at first use and kept as
    long as the desk (its knowledge version) lives."""
    with _BY_DESK_LOCK:
        found = _BY_DESK.get(desk)
        if found is not None:
            return found
        previous = getattr(desk, "previous", None)
        stale = _BY_DESK.get(previous) if previous is not None else None
        if stale is None or len(desk.entries) < BACKGROUND_ABOVE:
            found = _BY_DESK[desk] = Related(desk.entries, desk_words(desk))
            return found
        if desk not in _BUILDING:
            # A desk updated in place from a large one: its relatives are found in the
            # background while the previous desk's answer (one entry out of date at most).
            _BUILDING.add(desk)
            threading.Thread(target=_build_later, args=(desk,), daemon=True).start()
        return stale


def _build_later(desk: Any) -> None:
    try:
        related = Related(desk.entries, desk_words(desk))
        with _BY_DESK_LOCK:
            _BY_DESK[desk] = related
    finally:
        with _BY_DESK_LOCK:
            _BUILDING.discard(desk)
