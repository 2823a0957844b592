"""KeyRing: a bounded map that forgets its oldest keys first.

Theory of operation
-------------------
A dict holds ``key -> value`` and a ring (a list used circularly) holds the
keys in insertion order. While the ring is not full, :meth:`KeyRing.put`
appends; once it holds ``capacity`` keys, each new key overwrites the oldest
slot and that oldest key leaves the dict. So the structure remembers exactly
the last ``capacity`` distinct keys put, in O(1) per operation and at most
``capacity`` entries of memory — no timestamps, no sweeps.

It is FIFO by *first insertion*, not LRU: looking a key up (or putting it
again) does not make it younger. That is what duplicate suppression wants —
a key is remembered for the next ``capacity`` distinct keys after it first
appeared — and it keeps lookups free of bookkeeping.

Why not ``dict`` + ``next(iter(d))`` to evict: deleting from the front of a
CPython dict leaves dummy entries that ``iter`` must skip, so that eviction
degrades towards O(n) between resizes. ``OrderedDict.popitem(last=False)`` is
O(1) but costs a linked-list node per key; the ring costs one pointer.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["KeyRing"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class KeyRing(Generic[K, V]):
    """A map remembering the last ``capacity`` distinct keys put (see module doc).

    Args:
        capacity: how many keys to remember (≥ 1).

    Attributes:
        evicted: how many keys were forgotten to make room (cumulative).
    """

    __slots__ = ("_map", "_pos", "_ring", "capacity", "evicted")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, not {capacity}")
        self.capacity = capacity
        self._map: dict[K, V] = {}
        self._ring: list[K] = []
        self._pos = 0
        self.evicted = 0

    def get(self, key: K) -> V | None:
        """The value stored for ``key``, or None. O(1)."""
        return self._map.get(key)

    def __contains__(self, key: object) -> bool:
        """O(1)."""
        return key in self._map

    def __len__(self) -> int:
        return len(self._map)

    def put(self, key: K, value: V) -> K | None:
        """Store ``value`` under ``key``; return the key evicted to make room, if any. O(1).

        Putting a key that is already present only replaces its value (its
        age does not change).
        """
        m = self._map
        if key in m:
            m[key] = value
            return None
        ring = self._ring
        old: K | None = None
        if len(ring) < self.capacity:
            ring.append(key)
        else:
            pos = self._pos
            old = ring[pos]
            del m[old]
            ring[pos] = key
            pos += 1
            self._pos = 0 if pos == self.capacity else pos
            self.evicted += 1
        m[key] = value
        return old

    def put_new(self, key: K, value: V) -> None:
        """:meth:`put` for a key known to be absent (skips the membership test). O(1)."""
        ring = self._ring
        m = self._map
        if len(ring) < self.capacity:
            ring.append(key)
        else:
            pos = self._pos
            del m[ring[pos]]
            ring[pos] = key
            pos += 1
            self._pos = 0 if pos == self.capacity else pos
            self.evicted += 1
        m[key] = value

    def clear(self) -> None:
        """Forget everything (``evicted`` is kept)."""
        self._map.clear()
        self._ring.clear()
        self._pos = 0

    def _check(self) -> None:
        """Assert the invariants (tests)."""
        assert len(self._ring) <= self.capacity
        assert len(self._map) == len(self._ring)
        assert set(self._ring) == set(self._map)
        assert 0 <= self._pos < self.capacity
