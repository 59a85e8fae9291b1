"""The session object kept in ``config.stash``: settings, the loaded dataset, cases, results."""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

import pytest

from . import cases as cases_mod
from . import dataset as dataset_mod
from . import local
from .cases import Case
from .dataset import Dataset, Problem, SolutionRec
from .results import Results
from .settings import KIT_ROOT_SOURCE, Settings

if TYPE_CHECKING:
    from .buildcache import BuildCache
    from .runner import Runner
    from .traces import TraceWriter


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
    # case key -> result record (status, metrics, timings); filled as items finish (results.py)
    results: Results = dataclasses.field(default_factory=Results)
    runner: Runner | None = None  # created at the first item (imports torch)
    builds: BuildCache | None = None  # the persistent build cache and its pool (buildcache.py)
    traces: TraceWriter | None = None  # created at the first finished item
    # --fib-resume: resume key -> what an earlier run recorded ({"status", "message", "file"})
    recorded: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    torn: list[str] = dataclasses.field(default_factory=list)  # torn trace lines set aside
    diagnostics: dict[str, str] = dataclasses.field(default_factory=dict)  # sanitizer/ncu reports
    # case key -> what the item's output should say besides its verdict: how the solution was
    # called where its JSON leaves the convention unsaid, a check that could not be made
    notes: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    # --fib-selftest: (exploit, expectation, check that caught it, stage)
    selftest: list[tuple[str, dict[str, Any], str, str]] = dataclasses.field(default_factory=list)

    baselines: dict[str, SolutionRec] = dataclasses.field(default_factory=dict)  # by definition

    def baseline_for(self, case: Case) -> SolutionRec | None:
        """The solution to time a candidate against (never itself)."""
        base = self.baselines.get(case.definition.name)
        if base is None or base.content_hash == case.solution.content_hash:
            return None
        return base

    @property
    def load_problems(self) -> list[Problem]:
        """Every file that did not load: broken files, then solutions whose definition is not
        there (each is one load[...] item and one line under "files not loaded")."""
        return self.problems + [orphan_problem(self, sol) for sol in self.orphans]

    @property
    def op_types(self) -> list[str]:
        return sorted({d.op_type for d in self.dataset.definitions.values()})


def load(settings: Settings) -> FibSession:
    import time

    start = time.perf_counter()
    with_dataset = settings.solutions in ("dataset", "all")
    ds = dataset_mod.load(settings.dataset, with_solutions=with_dataset)
    solutions = list(ds.solutions) if with_dataset else []
    problems = list(ds.problems)
    if settings.solutions in ("local", "all"):
        # a starter kit at the rootdir: its config.toml folders only, not every JSON file of the
        # checkout (issue 18)
        local_solutions, local_problems = local.discover(
            settings.kernels, json=settings.kernels_source != KIT_ROOT_SOURCE)
        solutions = local_solutions + solutions
        problems += local_problems
    known = [s for s in solutions if s.definition in ds.definitions]
    orphans = [s for s in solutions if s.definition not in ds.definitions]
    cases = cases_mod.build_cases(ds, known, settings.device, settings.cpu_budget)
    baselines = pick_baselines(settings, ds, solutions)
    recorded, torn = {}, []
    if settings.traces is not None:
        from . import traces

        if not os.environ.get("PYTEST_XDIST_WORKER"):  # the controller, before workers start
            torn = traces.set_aside_torn(settings.traces)
        if settings.resume:
            recorded = traces.recorded(settings.traces)
    return FibSession(settings=settings, dataset=ds, solutions=known, problems=problems,
                      cases=cases, orphans=orphans, load_seconds=time.perf_counter() - start,
                      recorded=recorded, torn=torn, baselines=baselines)


def orphan_problem(fib: FibSession, sol: SolutionRec) -> Problem:
    """A solution for a definition the dataset lacks (or cannot load): a load failure of its
    file."""
    bad = fib.dataset.unusable.get(sol.definition)
    if bad is not None:
        return Problem(sol.path, None, f"its definition {sol.definition!r} cannot be loaded: "
                                       f"{bad.where}: {bad.message}", bad.kind)
    known = ", ".join(sorted(fib.dataset.definitions)[:8]) or "none"
    return Problem(sol.path, None, f"solution {sol.name!r} is for definition {sol.definition!r}, "
                                   f"which is not in the dataset {fib.settings.dataset} "
                                   f"(known: {known}...). Fix the definition name or use "
                                   "--fib-dataset.")


def pick_baselines(settings: Settings, ds: Dataset,
                   solutions: list[SolutionRec]) -> dict[str, SolutionRec]:
    """Per definition: the solution named by --fib-baseline, else the dataset's solution by
    author 'baseline' (read from solutions/baseline/ even when only local solutions are tested)."""
    pool = list(solutions)
    if not any(s.origin == "dataset" for s in pool):
        base_dir = settings.dataset / "solutions" / "baseline"
        if base_dir.is_dir():
            import json

            for path in sorted(base_dir.rglob("*.json")):
                try:
                    raw = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                if dataset_mod.check_solution(raw) is None:
                    pool.append(SolutionRec(raw["name"], raw["definition"], raw["author"],
                                            raw["spec"]["language"], str(path), "dataset", raw))
    if settings.baseline and not any(s.name == settings.baseline for s in pool):
        names = ", ".join(sorted({s.name for s in pool})[:10]) or "none"
        raise pytest.UsageError(
            f"pytest-fib: --fib-baseline={settings.baseline!r}: no solution has that name (known: "
            f"{names}). Give the name of a solution under test or in the dataset's "
            "solutions/baseline/ folder.")
    chosen: dict[str, SolutionRec] = {}
    for sol in pool:
        if settings.baseline:
            if sol.name == settings.baseline:
                chosen[sol.definition] = sol
        elif sol.author == "baseline":
            chosen.setdefault(sol.definition, sol)
    return chosen
