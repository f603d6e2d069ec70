"""Who clicked a link lately, in bounded memory: what decides unique visitors.

A visitor (visitors.Salts' hash of address, browser and link) is a 64-bit key. Keys are kept
in generations of `window / GENERATIONS` seconds, each a short list of Bloom filters of
BITS_PER_VISITOR bits a visitor (two bytes, whatever the visitor's strings), and a click is a
repeat when its key is in any generation of the last window. Memory grows with the visitors
of a generation only until its share of `ceiling`; a generation past the window is dropped
whole. Two approximations, both counting a new visitor as a repeat (never the reverse):

- the window is rounded up to whole generations: a visitor coming back between `window` and
  `window + window / GENERATIONS` seconds after their last click may count as a repeat;
- a false positive of the filters: designed for at most 1% (each full filter about 0.064%, a
  window holding about ten of them; 0.25% measured in tests/test_uniques.py); more once a
  generation is past its share of the ceiling (`saturated`), where the ceiling is kept and the
  rate is what gives.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable, Mapping
from typing import Protocol

BITS_PER_VISITOR = 16  # a filter's capacity times 16 bits: two bytes a visitor
# A blocked Bloom filter: a visitor sets 3 bits in each of 3 64-bit words (three reads a lookup
# rather than nine bit probes): about 0.064% false positives when full (simulated).
GENERATIONS = 8  # a window is this many generations (plus the one being filled)
MIN_CAPACITY = 4096  # visitors of a generation's first filter (8 KiB)
GROWTH = 4  # a full filter is followed by one this many times larger
HEADROOM = 1.25  # a generation's first filter holds this much more than the last one's visitors
CEILING = 64 * 2**20  # bytes, all generations together: 3.7 million visitors a generation

Probes = tuple[int, int, int, int, int]  # first word, stride, and the bits set in each of 3 words


def probes(visitor: str) -> Probes:
    """Where a visitor's bits go, whatever the filter's size: the words by double hashing on the
    halves of the visitor's 64-bit hash (16 hex digits; any other string is hashed to 64 bits),
    the bits within each word from Python's own string hash (SipHash: independent of the first,
    cached on the string, the same for as long as the process, which is as long as the filter)."""
    key = -1
    if len(visitor) == 16:
        try:
            key = int(visitor, 16)
        except ValueError:
            pass
    if key < 0:
        key = int.from_bytes(hashlib.blake2b(visitor.encode("utf-8", "surrogateescape"), digest_size=8).digest())
    bits = hash(visitor)
    return (
        key & 0xFFFFFFFF,
        key >> 32 | 1,
        1 << (bits & 63) | 1 << (bits >> 6 & 63) | 1 << (bits >> 12 & 63),
        1 << (bits >> 18 & 63) | 1 << (bits >> 24 & 63) | 1 << (bits >> 30 & 63),
        1 << (bits >> 36 & 63) | 1 << (bits >> 42 & 63) | 1 << (bits >> 48 & 63),
    )


class Filter:
    """A blocked Bloom filter for `capacity` visitors, BITS_PER_VISITOR bits each."""

    __slots__ = ("words", "size", "capacity", "count")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = max(1, capacity * BITS_PER_VISITOR // 64)  # words
        self.words = array("Q", [0]) * self.size
        self.count = 0

    @property
    def nbytes(self) -> int:
        return self.size * 8

    def contains(self, p: Probes) -> bool:
        words, size, first, stride = self.words, self.size, p[0], p[1]
        return (
            words[first % size] & p[2] == p[2]
            and words[(first + stride) % size] & p[3] == p[3]
            and words[(first + 2 * stride) % size] & p[4] == p[4]
        )

    def add(self, p: Probes) -> None:
        words, size, first, stride = self.words, self.size, p[0], p[1]
        words[first % size] |= p[2]
        words[(first + stride) % size] |= p[3]
        words[(first + 2 * stride) % size] |= p[4]
        self.count += 1


class Generation:
    """The visitors of `span` seconds: filters of growing size, none added past `budget` bytes
    (the last one then takes more than its capacity: `saturated`)."""

    __slots__ = ("filters", "count", "budget", "saturated")

    def __init__(self, capacity: int, budget: int) -> None:
        self.budget = budget
        self.filters = [Filter(max(1, min(capacity, budget * 8 // BITS_PER_VISITOR)))]
        self.count = 0
        self.saturated = False

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self.filters)

    def contains(self, p: Probes) -> bool:
        for f in self.filters:
            if f.contains(p):
                return True
        return False

    def add(self, p: Probes) -> None:
        """Add a visitor (one already in counts twice: `count` errs on the side of more room)."""
        last = self.filters[-1]
        if last.count >= last.capacity and not self.saturated:
            room = (self.budget - self.nbytes) * 8 // BITS_PER_VISITOR
            capacity = min(last.capacity * GROWTH, room)
            if capacity >= MIN_CAPACITY:
                last = Filter(capacity)
                self.filters.append(last)
            else:
                self.saturated = True
        last.add(p)
        self.count += 1


def _in_any(filters: list[Filter], p: Probes) -> bool:
    """Whether any of `filters` holds the visitor of probes `p` (Filter.contains, inlined: a
    new visitor is looked up in every filter of the window)."""
    first, stride, a, b, c = p
    for f in filters:
        words, size = f.words, f.size
        if (
            words[first % size] & a == a
            and words[(first + stride) % size] & b == b
            and words[(first + 2 * stride) % size] & c == c
        ):
            return True
    return False


class Decidable(Protocol):
    """What RecentVisitors reads of a click (clicks.Visit): `robot` true for a robot's."""

    @property
    def at(self) -> int: ...
    @property
    def visitor(self) -> str | None: ...
    @property
    def robot(self) -> object: ...


class RecentVisitors:
    """Whether each visitor (a hash, which includes the link) clicked within the last `window`
    seconds, rounded up to a whole generation: a click is unique if not. At most `ceiling`
    bytes whatever the traffic (the dict of hashes this replaces took ~320 bytes a visitor)."""

    def __init__(self, window: int, ceiling: int = CEILING, generations: int = GENERATIONS) -> None:
        self.window = window
        self.generations = generations
        self.span = max(1, -(-window // generations))  # seconds a generation
        self.ceiling = ceiling
        self._generations: dict[int, Generation] = {}
        self._newest: int | None = None

    @property
    def nbytes(self) -> int:
        """Bytes the filters take now (never more than `ceiling`)."""
        return sum(g.nbytes for g in self._generations.values())

    @property
    def count(self) -> int:
        """Visitors remembered, once for each generation they clicked in."""
        return sum(g.count for g in self._generations.values())

    @property
    def saturated(self) -> bool:
        """Whether a generation of the window got more visitors than its share of the ceiling holds
        at the designed rate of false positives (so more of them: uniques undercounted)."""
        return any(g.saturated for g in self._generations.values())

    def since(self, now: int) -> int:
        """The first second whose clicks still matter at `now` (what a restart reloads)."""
        return (now // self.span - self.generations) * self.span

    def seen(self, visitor: str, at: int) -> bool:
        """Whether `visitor` clicked within the window of `at` (before or after it)."""
        return _in_any(self._filters_near(at // self.span), probes(visitor))

    def _filters_near(self, generation: int) -> list[Filter]:
        """The filters of the generations within the window of `generation`."""
        return [
            f for index, g in self._generations.items() if abs(index - generation) <= self.generations
            for f in g.filters
        ]  # fmt: skip

    def decide(self, rows: Iterable[Decidable], before: Iterable[str]) -> tuple[list[int], dict[str, int]]:
        """1 for each row whose visitor is new within the window (0 for robots and rows without
        a visitor), and what to remember (visitor: last click) once the rows are written.
        `before`: each row's hash under yesterday's salt ("" without one), matched too."""
        seen: dict[str, int] = {}
        uniques = []
        near: dict[int, list[Filter]] = {}  # the filters to look in, per generation of the rows (a batch's one or two)
        span, generations = self.span, self.generations
        for row, hash_before in zip(rows, before, strict=True):
            unique = 0
            visitor, at = row.visitor, row.at
            if visitor and not row.robot:
                unique = 1
                generation = at // span
                filters = near.get(generation)
                if filters is None:
                    filters = near[generation] = self._filters_near(generation)
                for key in (visitor, hash_before) if hash_before else (visitor,):
                    last = seen.get(key)
                    if (last is not None and abs(last // span - generation) <= generations) or (
                        filters and _in_any(filters, probes(key))
                    ):
                        unique = 0
                        break
                last = seen.get(visitor)
                seen[visitor] = at if last is None or at > last else last
            uniques.append(unique)
        return uniques, seen

    def remember(self, seen: Mapping[str, int] | Iterable[tuple[str, int]]) -> None:
        """Remember visitors with a time they clicked: decide()'s, or the raw rows' after a restart."""
        for visitor, at in seen.items() if isinstance(seen, Mapping) else seen:
            self.add(visitor, at)

    def add(self, visitor: str, at: int) -> None:
        index = at // self.span
        if self._newest is not None and index < self._newest - self.generations:
            return  # already out of the window
        generation = self._generations.get(index)
        if generation is None:
            previous = self._generations.get(index - 1)
            capacity = max(MIN_CAPACITY, int(previous.count * HEADROOM) if previous else 0)
            generation = self._generations[index] = Generation(capacity, self.ceiling // (self.generations + 1))
            if self._newest is None or index > self._newest:
                self._newest = index
                for old in [i for i in self._generations if i < index - self.generations]:
                    del self._generations[old]
        generation.add(probes(visitor))
