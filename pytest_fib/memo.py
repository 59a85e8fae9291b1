"""What the controller keeps of the reference's work, so every solution of a definition shares it.

A definition's solutions are checked on the same inputs (seeds depend on the definition, the
workload and the trial, never on the solution), so the reference's outputs on them are the same
for all of them. Items run solution by solution: one solution's items read every workload's
entries once, then the next solution's read them again in the same order. A least-recently-used
cache smaller than that cycle misses every time: a warm session of 63 pairs made 210 reference
calls with 8 entries (H200) and 204 with a 1 GiB one (H100), 95 with this memo. It has two parts:

* a window of the newest ``KEEP_NEWEST`` entries, whatever their size: an item's own trials and
  re-checks, which it reads again within the item;
* behind it, entries kept up to a byte budget and never pushed out by the cycle: what leaves the
  window stays if it fits, so the next solution finds the first workloads' entries. To make room,
  only entries of other definitions go (their items are over: items run definition by
  definition). Keys are tuples whose first element is the definition's name.
"""

from __future__ import annotations

import collections
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


Entry = tuple[Any, int]  # the value and its bytes


class Memo:
    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.window: collections.OrderedDict[tuple[Any, ...], Entry] = collections.OrderedDict()
        self.kept: collections.OrderedDict[tuple[Any, ...], Entry] = collections.OrderedDict()
        self.held = 0  # bytes in ``kept``

    def get(self, key: tuple[Any, ...]) -> Any | None:
        if key in self.window:
            self.window.move_to_end(key)
            return self.window[key][0]
        found = self.kept.get(key)
        return None if found is None else found[0]

    def put(self, key: tuple[Any, ...], value: Any) -> None:
        self._drop(key)
        self.window[key] = (value, nbytes(value))
        while len(self.window) > KEEP_NEWEST:
            old, entry = self.window.popitem(last=False)
            self._keep(old, entry)

    def _drop(self, key: tuple[Any, ...]) -> None:
        self.window.pop(key, None)
        entry = self.kept.pop(key, None)
        if entry is not None:
            self.held -= entry[1]

    def _keep(self, key: tuple[Any, ...], entry: Entry) -> None:
        """Keep what leaves the window if it fits, making room from other definitions only."""
        for other in [k for k in self.kept if k[0] != key[0]]:
            if self.held + entry[1] <= self.budget:
                break
            self.held -= self.kept.pop(other)[1]
        if self.held + entry[1] <= self.budget:
            self.kept[key] = entry
            self.held += entry[1]

    def full(self) -> bool:
        """Whether a new entry would push out one that is still to be read (all of it counted:
        the window too)."""
        return self.held + sum(size for _, size in self.window.values()) >= self.budget

    def __len__(self) -> int:
        return len(self.window) + len(self.kept)
