"""Work other plugins do at the end of every session, started early in a thread so that it is
done by then: the session's last seconds are a kernel author's wait in every edit-and-rerun loop.

Measured with py-spy on an H100 (tools/gpu/perf15.sh edit, docs/performance.md), 2.7 s of a
25.6 s warm session went to two such steps after the last item:

* hypothesis's pytest plugin imports ``hypothesis`` in its terminal summary of every session
  (1.4 s), whether or not a property test ran;
* pytest-benchmark, when it saves or writes JSON, reads the CPU's description through py-cpuinfo,
  which starts a Python subprocess (1.3 s).

The thread starts after the first item, when the main thread spends its time waiting for workers,
so the import's bytecode does not compete with pytest-fib's own start-up. Nothing here changes
what those plugins produce: pytest-benchmark's own function computes the machine info, only
earlier.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import pytest

PREFETCH = pytest.StashKey["Prefetch"]()


class Prefetch:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.machine_info: dict[str, Any] | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="fib-prefetch")

    def wanted(self) -> bool:
        return self.hypothesis_summary() or self.benchmark_saves()

    def hypothesis_summary(self) -> bool:
        return (self.config.pluginmanager.has_plugin("hypothesispytest")
                and "hypothesis" not in sys.modules)

    def benchmark_saves(self) -> bool:
        """pytest-benchmark's ``handle_saving`` reads the machine info only for these."""
        return any(_option(self.config, name) for name in
                   ("benchmark_json", "benchmark_save", "benchmark_autosave"))

    def _run(self) -> None:
        if self.benchmark_saves():
            try:
                from pytest_benchmark import plugin as benchmark_plugin

                generate: Any = benchmark_plugin.pytest_benchmark_generate_machine_info
                self.machine_info = generate()
            except Exception:  # noqa: BLE001 -- pytest-benchmark then computes it itself
                self.machine_info = None
        if self.hypothesis_summary():
            try:
                import hypothesis.internal.observability  # noqa: F401 -- what its summary imports
            except Exception:  # noqa: BLE001 -- its own summary then imports it and reports
                pass


def _option(config: pytest.Config, name: str) -> Any:
    try:
        return config.getoption(name)
    except ValueError:  # pytest-benchmark not registered (-p no:benchmark)
        return None


def start(config: pytest.Config) -> None:
    """Once per session, from the first item's end on; not in an xdist worker (the summary and
    the saved benchmarks are the controller's)."""
    if PREFETCH in config.stash or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    prefetch = config.stash[PREFETCH] = Prefetch(config)
    if prefetch.wanted():
        prefetch.thread.start()


def machine_info(config: pytest.Config) -> dict[str, Any] | None:
    """pytest-benchmark's machine info computed ahead, or None (it then computes it itself)."""
    prefetch = config.stash.get(PREFETCH, None)
    if prefetch is None or prefetch.thread.ident is None:  # not started: nothing wanted
        return None
    prefetch.thread.join()
    return prefetch.machine_info
