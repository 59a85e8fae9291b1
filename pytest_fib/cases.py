"""The parametrization: which (definition, workload, solution) cases exist, their ids, marks and
collection-time skip reasons. Pure data; no pytest nodes and no torch here."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from .dataset import Dataset, DefinitionRec, SolutionRec, WorkloadRec

_UNSAFE = re.compile(r"[^A-Za-z0-9_.=+-]+")


def safe(text: str) -> str:
    """A node-name-safe form: no '::', '/', '[' or spaces, which would break node ids."""
    return _UNSAFE.sub("_", text).strip("_") or "_"


def workload_id(wl: WorkloadRec) -> str:
    """'batch_size:7-33bf737d': the axes a human reads, then a short uuid that keeps it unique.
    (":", not "=": pytest -k accepts it, so `-k "batch_size:7-"` selects a workload.)"""
    axes = "-".join(f"{k}:{v}" for k, v in sorted(wl.axes.items()))
    short = safe(wl.uuid)[:8]
    return f"{axes}-{short}" if axes else short


@dataclasses.dataclass(frozen=True)
class Case:
    definition: DefinitionRec
    workload: WorkloadRec
    solution: SolutionRec
    skip: str | None = None  # a reason known at collection (missing blob, over the CPU budget)

    @property
    def key(self) -> str:
        """Stable identity across runs: used by resume, reports and the timing/correctness link."""
        return f"{self.definition.name}::{self.solution.name}::{self.workload.uuid}"


def blob_skip(ds_root: Path, wl: WorkloadRec) -> str | None:
    for rel in wl.blobs:
        path = Path(rel) if Path(rel).is_absolute() else ds_root / rel
        if not path.is_file() or _is_lfs_pointer(path):
            return (f"input blob {rel} is not in the dataset at {ds_root} (a GIT_LFS_SKIP_SMUDGE=1 "
                    f"clone?): run `git lfs pull --include \"{rel}\"` in the dataset to fetch it")
    return None


def _is_lfs_pointer(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(40).startswith(b"version https://git-lfs")
    except OSError:
        return True


def budget_skip(definition: DefinitionRec, wl: WorkloadRec, device: str, budget: int) -> str | None:
    if device != "cpu":
        return None
    size = definition.nbytes(wl.axes)
    if size > budget:
        return (f"workload needs {size / 2**20:.0f} MiB of inputs+outputs, over the CPU budget of "
                f"{budget / 2**20:.0f} MiB: run on a GPU, or raise --fib-cpu-budget")
    return None


def build_cases(ds: Dataset, solutions: list[SolutionRec], device: str,
                budget: int) -> list[Case]:
    cases: list[Case] = []
    for sol in solutions:
        definition = ds.definitions.get(sol.definition)
        if definition is None:
            continue  # reported by the plugin as a failing item for the solution
        for wl in ds.workloads.get(sol.definition, []):
            skip = blob_skip(ds.root, wl) or budget_skip(definition, wl, device, budget)
            cases.append(Case(definition, wl, sol, skip))
    return cases
