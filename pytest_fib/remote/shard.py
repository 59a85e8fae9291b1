"""Remote side of ``--modal-shards N``: a pytest plugin loaded in each shard's container with
``-p pytest_fib.remote.shard --fib-shard=K/N``.

Every shard collects the whole session (same command line, same files, same dataset), applies the
user's selection (-k, -m, --lf, node ids: they run first), then keeps the groups assigned to it.
A group is a definition (``anchor::definition``) for pytest-fib items -- so a definition's
correctness and timing items share one GPU -- and a file for anything else. The assignment is a
deterministic greedy balance on item counts, computed identically by every shard: no controller
round trip, and the shards' selections partition the unsharded selection exactly.

Progress goes to the controller as event lines on stderr (prefix :data:`EVENT`), separate from the
shard's own terminal output on stdout. Nothing here imports torch or modal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

import pytest

EVENT = "@@pytest-fib-shard@@ "


def group_key(nodeid: str) -> str:
    parts = nodeid.split("::")
    if len(parts) >= 3:  # anchor::definition::solution::item
        return "::".join(parts[:2])
    return parts[0]


def assign(sizes: dict[str, int], shards: int) -> dict[str, int]:
    """Group -> shard (1-based): largest groups first, each to the least loaded shard (ties: the
    lowest index). Deterministic for the same groups, whatever their order."""
    load = [0] * shards
    out: dict[str, int] = {}
    for key in sorted(sizes, key=lambda k: (-sizes[k], k)):
        k = min(range(shards), key=lambda s: (load[s], s))
        out[key] = k + 1
        load[k] += sizes[key]
    return out


def split(nodeids: Iterable[str], shards: int) -> dict[str, int]:
    """nodeid -> shard, for a list of selected node ids."""
    ids = list(nodeids)
    sizes: dict[str, int] = {}
    for n in ids:
        sizes[group_key(n)] = sizes.get(group_key(n), 0) + 1
    groups = assign(sizes, shards)
    return {n: groups[group_key(n)] for n in ids}


def emit(event: dict[str, Any]) -> None:
    os.write(2, (EVENT + json.dumps(event, separators=(",", ":")) + "\n").encode())


def parse_spec(spec: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise pytest.UsageError(f"--fib-shard={spec!r}: expected K/N, e.g. 1/4") from None
    if not 1 <= k <= n:
        raise pytest.UsageError(f"--fib-shard={spec!r}: K must be between 1 and N")
    return k, n


def pytest_addoption(parser: pytest.Parser) -> None:
    """--fib-shard K/N (set by the --modal controller)."""
    parser.addoption("--fib-shard", dest="fib_shard", metavar="K/N",
                     help="(set by pytest --modal --modal-shards) run shard K of N, by definition.")


class _State:
    shard: tuple[int, int] | None = None
    warnings = 0


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Keep this shard's definitions only (after every other selection)."""
    spec = config.getoption("fib_shard")
    if not spec:
        return
    k, n = _State.shard = parse_spec(spec)
    tr = config.pluginmanager.get_plugin("terminalreporter")
    user_deselected = len(tr.stats.get("deselected", [])) if tr is not None else 0
    from .sender import SELECTED

    config.stash[SELECTED] = [i.nodeid for i in items]  # the whole selection, for the check
    where = split([i.nodeid for i in items], n)
    keep = [i for i in items if where[i.nodeid] == k]
    drop = [i for i in items if where[i.nodeid] != k]
    items[:] = keep
    if drop:
        config.hook.pytest_deselected(items=drop)
    groups = sorted({group_key(i.nodeid) for i in keep})
    emit({"event": "collected", "shard": k, "selected": len(keep), "user_deselected":
          user_deselected, "total": len(keep) + len(drop) + user_deselected, "groups": groups})


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """A collection error, as an event for the controller."""
    if _State.shard and report.failed:
        emit({"event": "report", "nodeid": report.nodeid, "category": "error", "when": "collect"})


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Each test's outcome, as an event for the controller."""
    if not _State.shard:
        return
    config = _config(report)
    if config is None:
        return
    category = config.hook.pytest_report_teststatus(report=report, config=config)[0]
    if category:
        emit({"event": "report", "nodeid": report.nodeid, "category": category,
              "when": report.when, "duration": round(report.duration, 4)})


def pytest_warning_recorded() -> None:
    """Count warnings for the shard's final event."""
    _State.warnings += 1


_CONFIG: list[pytest.Config] = []


def pytest_configure(config: pytest.Config) -> None:
    """Remember the config (the finish event reads it)."""
    _CONFIG.append(config)


def _config(report: Any) -> pytest.Config | None:
    return _CONFIG[-1] if _CONFIG else None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The shard's final event: its exit status and counts."""
    if _State.shard:
        emit({"event": "finish", "shard": _State.shard[0], "exitstatus": int(exitstatus),
              "warnings": _State.warnings})
