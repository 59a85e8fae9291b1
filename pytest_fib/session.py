"""The session object kept in ``config.stash``: settings, the loaded dataset, cases, results."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from . import cases as cases_mod
from . import dataset as dataset_mod
from . import local
from .cases import Case
from .dataset import Dataset, Problem, SolutionRec
from .settings import Settings


@dataclasses.dataclass
class FibSession:
    """State of one pytest-fib session (one per pytest process; xdist workers have their own)."""

    settings: Settings
    dataset: Dataset
    solutions: list[SolutionRec]  # everything under test, local and dataset
    problems: list[Problem]  # unloadable files, each shown as one item
    cases: list[Case]
    orphans: list[SolutionRec]  # solutions whose definition is not in the dataset
    load_seconds: float = 0.0
    # case key -> correctness outcome ("passed", "failed", "skipped") and its message
    outcomes: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    # case key -> result record (trace fields, timings); filled as items finish
    results: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    runner: Any = None  # runner.Runner, created at the first item (imports torch)
    traces: Any = None  # traces.TraceWriter, created at the first finished item
    recorded: dict[str, str] = dataclasses.field(default_factory=dict)  # --fib-resume index
    diagnostics: dict[str, str] = dataclasses.field(default_factory=dict)  # sanitizer/ncu reports
    # --fib-selftest: (exploit, expectation, check that caught it, stage)
    selftest: list[tuple[str, dict[str, Any], str, str]] = dataclasses.field(default_factory=list)

    @property
    def op_types(self) -> list[str]:
        return sorted({d.op_type for d in self.dataset.definitions.values()})


FIB_SESSION = pytest.StashKey[FibSession]()


def load(settings: Settings) -> FibSession:
    import time

    start = time.perf_counter()
    with_dataset = settings.solutions in ("dataset", "all")
    ds = dataset_mod.load(settings.dataset, with_solutions=with_dataset)
    solutions = list(ds.solutions) if with_dataset else []
    problems = list(ds.problems)
    if settings.solutions in ("local", "all"):
        local_solutions, local_problems = local.discover(settings.kernels)
        solutions = local_solutions + solutions
        problems += local_problems
    known = [s for s in solutions if s.definition in ds.definitions]
    orphans = [s for s in solutions if s.definition not in ds.definitions]
    cases = cases_mod.build_cases(ds, known, settings.device, settings.cpu_budget)
    recorded = {}
    if settings.resume and settings.traces is not None:
        from .traces import recorded as read_recorded

        recorded = read_recorded(settings.traces)
    return FibSession(settings=settings, dataset=ds, solutions=known, problems=problems,
                      cases=cases, orphans=orphans, load_seconds=time.perf_counter() - start,
                      recorded=recorded)
