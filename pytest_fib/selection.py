"""Node ids and folders as command-line arguments, as in any pytest project (issue 18).

pytest resolves ``a::b::c`` only where ``a`` is a file: an anchor folder (``kernels``) is a
directory node, so a pasted node id ``kernels::rmsnorm::mine::correctness[...]`` is refused
("directory argument cannot contain :: selection parts"), and ``kernels/rmsnorm/mine`` -- a folder
below the anchor, where no pytest node lives -- collects nothing. So such an argument is rewritten,
before collection, into its anchor folder plus a selector; the anchor's items that no selector
matches are deselected (``pytest_deselected``), and a selector that matches nothing is a usage
error naming it, as pytest's own "not found". Each xdist worker re-parses the same command line, so
it makes the same selection.

Ordinary tests below an anchor are selected by their path, as pytest would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import pytest

SELECTORS = pytest.StashKey["list[Selector]"]()


@dataclasses.dataclass(frozen=True)
class Selector:
    arg: str  # as typed, for the "not found" error
    anchor: Path
    rest: str | None = None  # node id below the anchor: "rmsnorm::mine::correctness[...]"
    path: Path | None = None  # a folder or file below the anchor


def owner(path: str) -> Path:
    """What a path argument selects a solution (or unloadable file) by: a starter kit's folder,
    else the file itself."""
    p = Path(path)
    return p.parent if p.name == "config.toml" else p


def _selects_path(target: Path, owned: Path) -> bool:
    """A folder above the solution, the solution's own file or folder, or a path in its sources."""
    return target == owned or target in owned.parents or (owned.is_dir() and (
        target == owned / "config.toml" or owned / "solution" == target
        or owned / "solution" in target.parents))


def rewrite(args: list[str], invocation_dir: Path, anchors: Iterable[Path], rootpath: Path,
            owned: list[Path]) -> tuple[list[str], list[Selector]]:
    """(arguments with each selecting one replaced by its anchor folder, the selectors)."""
    anchor_list = sorted({a.resolve() for a in anchors}, key=lambda a: len(a.parts), reverse=True)
    root = rootpath.resolve()
    out: list[str] = []
    selectors: list[Selector] = []
    for arg in args:
        base = arg.partition("[")[0]
        strpath, sep, _ = base.partition("::")
        target = (invocation_dir / strpath).resolve() if strpath else None
        sel: Selector | None = None
        if sep and target is not None and target in anchor_list:
            sel = Selector(arg, target, rest=arg[len(strpath) + 2:])
        elif root in anchor_list and (target is None or not target.exists()):
            # the starter kit at the rootdir: its ids start at the definition (nodes.py)
            sel = Selector(arg, root, rest=arg)
        elif not sep and target is not None and target.exists() and target not in anchor_list:
            anchor = next((a for a in anchor_list if a in target.parents), None)
            if anchor is not None and any(_selects_path(target, o) for o in owned):
                sel = Selector(arg, anchor, path=target)
        if sel is None:
            out.append(arg)
            continue
        selectors.append(sel)
        if str(sel.anchor) not in out:
            out.append(str(sel.anchor))
    # an anchor also given whole (or a folder above it) keeps all its items
    whole = [(invocation_dir / a.partition("::")[0]).resolve() for a in out
             if "::" not in a and not any(str(s.anchor) == a for s in selectors)]
    selectors = [s for s in selectors
                 if not any(w == s.anchor or w in s.anchor.parents for w in whole)]
    return out, selectors


def _matches_rest(rest: str, sel: str) -> bool:
    """pytest's rule: a prefix of whole parts; a last part without [...] matches every one."""
    return rest == sel or rest.startswith(sel + "::") or (
        "[" not in sel.rpartition("::")[2] and rest.startswith(sel + "["))


def item_rest(nodeid: str, anchor_nodeid: str) -> str:
    prefix = anchor_nodeid + "::"
    return nodeid[len(prefix):] if anchor_nodeid and nodeid.startswith(prefix) else nodeid


def select(config: pytest.Config, items: list[pytest.Item],
           where: dict[int, tuple[Path, str, Path | None]], protected: set[int]) -> None:
    """Keep the items a selector matches. ``where``: id(item) -> (anchor, node id below it, the
    path a path selector matches it by). Items of anchors without selectors stay, and so do
    ``protected`` ones (files that did not load: no selection hides them), which still count as
    found."""
    selectors = config.stash.get(SELECTORS, [])
    if not selectors:
        return
    anchors = {s.anchor for s in selectors}
    used: set[str] = set()
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        info = where.get(id(item))
        if info is None or info[0] not in anchors:
            keep.append(item)
            continue
        anchor, rest, owned = info
        hit = [s for s in selectors if s.anchor == anchor and (
            (s.rest is not None and _matches_rest(rest, s.rest))
            or (s.path is not None and owned is not None and _selects_path(s.path, owned)))]
        used.update(s.arg for s in hit)
        (keep if hit or id(item) in protected else dropped).append(item)
    missing = [s.arg for s in selectors if s.arg not in used]
    if missing:
        raise pytest.UsageError("\n".join(
            f"not found: {a}\n(no pytest-fib item has this node id or lies in this folder; "
            "`pytest --collect-only -q` lists them)" for a in missing))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
