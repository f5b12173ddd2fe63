"""Related entries kept in arrays: updated in place, they are those found afresh."""
from __future__ import annotations

import pickle
import random

import pytest

from service import related
from service.layered import LayeredMap

WORDS = [f"词{i}" for i in range(60)]
CATEGORIES = ["申请", "费用", "期限", "救济", ""]


def _entry(rng: random.Random, entry_id: int) -> tuple[dict, set[str]]:
    return ({"key": f"k{entry_id}", "question": f"问题{entry_id}", "category": rng.choice(CATEGORIES)},
            set(rng.sample(WORDS[:rng.randint(6, len(WORDS))], rng.randint(0, 6))))


def _fresh(entries: dict, words: dict) -> related.Related:
    return related.Related(dict(entries), {e: set(w) for e, w in words.items()})


def _same(a: related.Related, b: related.Related, entries: dict) -> None:
    for entry_id in [*entries, 10_000]:
        assert a.of(entry_id) == b.of(entry_id), entry_id
    assert dict(a.by_key) == dict(b.by_key)


@pytest.mark.parametrize("seed", range(6))
def test_relatives_updated_in_place_are_those_found_afresh(seed: int, monkeypatch) -> None:
    monkeypatch.setattr(related, "FANOUT", 12)  # some words bring no candidates, as at 100,000 entries
    rng = random.Random(seed)
    entries, words = {}, {}
    for entry_id in range(1, 80):
        entries[entry_id], words[entry_id] = _entry(rng, entry_id)
    current = _fresh(entries, words)
    next_id = 80
    for _ in range(12):
        changed = set()
        for _ in range(rng.randint(1, 6)):
            action = rng.random()
            if action < 0.3 and entries:  # archived or removed
                gone = rng.choice(sorted(entries))
                del entries[gone], words[gone]
                changed.add(gone)
            elif action < 0.6:  # a new entry, now and then with words never seen before
                entries[next_id], words[next_id] = _entry(rng, next_id)
                if rng.random() < 0.5:
                    words[next_id].add(f"新词{next_id}")
                changed.add(next_id)
                next_id += 1
            elif entries:  # saved again: other words, another category
                entry_id = rng.choice(sorted(entries))
                entries[entry_id], words[entry_id] = _entry(rng, entry_id)
                changed.add(entry_id)
        # As a desk updated in place passes them: its entries layered over the previous ones.
        current = current.updated(LayeredMap(dict(entries)), changed, {e: words[e] for e in changed if e in words})
        _same(current, _fresh(entries, words), entries)
    # A snapshot of relatives updated in place holds them as found afresh, without layers.
    desk = type("Desk", (), {"entries": dict(entries)})()
    related._BY_DESK[desk] = current
    state = pickle.loads(pickle.dumps(related.state_of(desk)))
    restored_desk = type("Desk", (), {"entries": dict(entries)})()
    restored = related.adopt(restored_desk, state)
    assert not restored._extra and not restored._gone.any()
    _same(restored, _fresh(entries, words), entries)
    # And the restored relatives are updated in place as any others.
    entries[next_id], words[next_id] = _entry(rng, next_id)
    changed = {next_id, min(entries)}
    del entries[min(entries)]
    _same(restored.updated(dict(entries), changed, {e: words[e] for e in changed if e in entries}),
          _fresh(entries, {e: words[e] for e in entries}), entries)


def test_a_word_many_entries_use_still_counts_in_the_overlap(monkeypatch) -> None:
    monkeypatch.setattr(related, "FANOUT", 2)
    entries = {e: {"key": f"k{e}", "question": "问", "category": c}
               for e, c in [(1, "甲"), (2, "乙"), (3, "乙"), (4, "丙"), (5, "丙")]}
    # 常见 is used by three entries (above the fanout): it brings no candidates, yet 2 and 3
    # are found through 罕见 and 较少, and 2 shares 常见 too, so it comes first.
    words = {1: {"罕见", "较少", "常见"}, 2: {"罕见", "常见"}, 3: {"较少"}, 4: {"常见"}, 5: {"别的"}}
    rel = related.Related(entries, words)
    assert rel.of(1) == [2, 3]
    assert rel.of(5) == [4]  # same category, sharing nothing: still related
