"""Read-only views of a large mapping, set or list with a small layer of changes on top.

An index updated in place must not copy its 100,000-entry containers: a copy costs time,
and in a forked worker it touches every element (reference counts), turning the pages the
worker shares with the master into private copies (70 MB at the first save at 100,000
entries). The updated index keeps the old containers as the base and only its changes on
top; each update starts from the same base, so lookups stay one layer deep.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

_ABSENT = object()


class LayeredMap(Mapping[Any, Any]):
    """``base`` with the keys of ``top`` replaced or added and those in ``removed`` gone."""

    __slots__ = ("base", "top", "removed")

    def __init__(self, base: Mapping[Any, Any], top: dict[Any, Any] | None = None,
                 removed: frozenset[Any] | set[Any] = frozenset()):
        self.base = base
        self.top = top or {}
        self.removed = frozenset(removed)

    @classmethod
    def over(cls, current: Mapping[Any, Any], changes: Mapping[Any, Any], removed: set[Any] = frozenset()) -> "LayeredMap":  # type: ignore[assignment]
        """``current`` (itself layered or not) with more changes, one layer deep."""
        if isinstance(current, LayeredMap):
            top = {k: v for k, v in current.top.items() if k not in removed}
            top.update(changes)
            gone = (current.removed - set(changes)) | {k for k in removed if k in current.base}
            return cls(current.base, top, gone)
        return cls(current, dict(changes), {k for k in removed if k in current and k not in changes})

    def __getitem__(self, key: Any) -> Any:
        found = self.top.get(key, _ABSENT)
        if found is not _ABSENT:
            return found
        if key in self.removed:
            raise KeyError(key)
        return self.base[key]

    def get(self, key: Any, default: Any = None) -> Any:
        found = self.top.get(key, _ABSENT)
        if found is not _ABSENT:
            return found
        if key in self.removed:
            return default
        return self.base.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.top or (key not in self.removed and key in self.base)

    def __iter__(self) -> Iterator[Any]:
        top, removed = self.top, self.removed
        for key in self.base:
            if key not in removed and key not in top:
                yield key
            elif key in top:
                yield key
        for key in top:
            if key not in self.base:
                yield key

    def __len__(self) -> int:
        return len(self.base) - sum(1 for k in self.removed if k in self.base) + \
            sum(1 for k in self.top if k not in self.base or k in self.removed)

    def __reduce__(self) -> Any:  # a snapshot holds a plain dict
        return (dict, (dict(self.items()),))


class LayeredSet:
    """A frozen set with some members added and some taken away (membership and iteration)."""

    __slots__ = ("base", "added", "removed")

    def __init__(self, base: frozenset[Any] | set[Any], added: set[Any] | None = None,
                 removed: set[Any] | None = None):
        self.base = base
        self.added = added or set()
        self.removed = removed or set()

    @classmethod
    def over(cls, current: "LayeredSet | frozenset[Any] | set[Any]", add: set[Any], drop: set[Any]) -> "LayeredSet":
        drop = set(drop) - set(add)
        if isinstance(current, LayeredSet):
            added = (current.added - drop) | add
            removed = (current.removed - add) | (drop & current.base)
            return cls(current.base, added, removed)
        return cls(current, set(add), set(drop & current))

    def __contains__(self, item: object) -> bool:
        return item in self.added or (item not in self.removed and item in self.base)

    def __iter__(self) -> Iterator[Any]:
        for item in self.base:
            if item not in self.removed:
                yield item
        for item in self.added:
            if item not in self.base:
                yield item

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __reduce__(self) -> Any:
        return (frozenset, (frozenset(self),))


class LayeredList(Sequence[Any]):
    """``base`` followed by ``extra``, never copied."""

    __slots__ = ("base", "extra", "_n")

    def __init__(self, base: Sequence[Any], extra: list[Any]):
        self.base = base
        self.extra = extra
        self._n = len(base)

    @classmethod
    def over(cls, current: Sequence[Any], added: list[Any]) -> "LayeredList":
        if isinstance(current, LayeredList):
            return cls(current.base, current.extra + added)
        return cls(current, list(added))

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        return self.base[i] if i < self._n else self.extra[i - self._n]

    def __len__(self) -> int:
        return self._n + len(self.extra)

    def __iter__(self) -> Iterator[Any]:
        yield from self.base
        yield from self.extra

    def __reduce__(self) -> Any:
        return (list, (list(self),))
