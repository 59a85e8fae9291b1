"""What the controller keeps of the reference's work, so every solution of a definition shares it.

A definition's solutions are checked on the same inputs (seeds depend on the definition, the
workload and the trial, never on the solution), so the reference's outputs on them are the same
for all of them. Items run solution by solution, so the reference's answers for one solution's
workloads are needed again only after every other workload of that solution: a cache of a few
entries misses every time. This one holds entries up to a byte budget, and always the newest few
(an item's own trials), whatever their size.
"""

from __future__ import annotations

import collections
from collections.abc import Hashable
from typing import Any

KEEP_NEWEST = 8  # entries kept whatever their size: one item's trials and re-checks


def nbytes(value: Any) -> int:
    """Bytes held by tensors in ``value`` (nested lists and tuples); anything else counts 64."""
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v) for v in value)
    numel = getattr(value, "numel", None)
    size = getattr(value, "element_size", None)
    if callable(numel) and callable(size):
        return int(numel()) * int(size())
    return 64


class Memo:
    """A least-recently-used map bounded by the bytes of its values (``nbytes``), which keeps its
    ``KEEP_NEWEST`` newest entries even above the budget."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.held = 0
        self._items: collections.OrderedDict[Hashable, tuple[Any, int]] = (
            collections.OrderedDict())
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        found = self._items.get(key)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return found[0]

    def put(self, key: Hashable, value: Any) -> None:
        if key in self._items:
            self.held -= self._items.pop(key)[1]
        size = nbytes(value)
        self._items[key] = (value, size)
        self.held += size
        while len(self._items) > KEEP_NEWEST and self.held > self.budget:
            self.held -= self._items.popitem(last=False)[1][1]

    def __len__(self) -> int:
        return len(self._items)
