"""Collection over the real FlashInfer-Trace dataset in ../shared (skipped where it is absent, as in
a user's fresh clone): every loadable definition x workload x solution becomes items, the five
files flashinfer-bench 0.1.2 cannot load are named, quickly and without importing torch.

The expectation is computed independently, with flashinfer-bench's own pydantic models."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import helpers
from pytest_fib.cases import safe

DATASET = Path(__file__).resolve().parents[2] / "shared" / "flashinfer-trace"

pytestmark = pytest.mark.skipif(not (DATASET / "definitions").is_dir(),
                                reason=f"no real dataset at {DATASET}")

IMPORT_CHECK = """
import sys
import time

import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_collection(session):
    session.config._fib_cpu0 = time.process_time()

def pytest_collection_finish(session):
    # the JSON is read lightly: neither torch & co. nor flashinfer-bench's pydantic models
    heavy = [m for m in ("torch", "triton", "tvm_ffi", "flashinfer_bench", "pydantic")
             if m in sys.modules]
    print("import-check heavy:", heavy)
    print(f"collection cpu: {time.process_time() - session.config._fib_cpu0:.3f}s")
"""


@pytest.fixture(scope="module")
def expected() -> dict:
    """What flashinfer-bench itself can load, file by file."""
    from flashinfer_bench.data import Definition, Solution, Workload

    definitions, unloadable = set(), []
    for path in sorted((DATASET / "definitions").rglob("*.json")):
        raw = json.loads(path.read_text())
        try:
            Definition.model_validate(raw)
            definitions.add(raw["name"])
        except Exception:
            unloadable.append(str(path.relative_to(DATASET)))
    workloads: dict[str, list[str]] = {}
    for path in sorted((DATASET / "workloads").rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                Workload.model_validate(rec["workload"])
                workloads.setdefault(rec["definition"], []).append(rec["workload"]["uuid"])
    triples = set()
    for path in sorted((DATASET / "solutions").rglob("*.json")):
        sol = Solution.model_validate_json(path.read_text())
        if sol.definition in definitions:
            for uuid in workloads.get(sol.definition, []):
                triples.add((sol.definition, safe(sol.name), safe(uuid)[:8]))
    return {"triples": triples, "unloadable": unloadable}


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess:
    root = tmp_path_factory.mktemp("real")
    (root / "fib_import_check.py").write_text(IMPORT_CHECK)
    env = helpers.clean_env(root / ".fib-cache")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "pytest", f"--fib-dataset={DATASET}", "--fib-solutions=dataset",
         "--collect-only", "-q", "-p", "fib_import_check", "-p", "no:randomly", "-p",
         "no:cacheprovider"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_collection_succeeds(collected: subprocess.CompletedProcess) -> None:
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]


def test_items_for_every_loadable_definition_workload_and_solution(collected, expected) -> None:
    got = set()
    for line in collected.stdout.splitlines():
        parts = line.split("::")
        if len(parts) == 4 and parts[3].startswith("correctness["):
            uuid8 = parts[3][len("correctness["):-1].rsplit("-", 1)[1]
            got.add((parts[1], parts[2], uuid8))
    assert got == expected["triples"]
    timing = sum(1 for line in collected.stdout.splitlines() if "::timing[" in line)
    assert timing == len(expected["triples"])


def test_the_five_unloadable_files_are_named(collected, expected) -> None:
    assert len(expected["unloadable"]) == 5
    load_items = [line for line in collected.stdout.splitlines() if "::load[" in line]
    assert sorted(item.split("::load[")[1][:-1] for item in load_items) == sorted(
        safe(path) for path in expected["unloadable"])
    summary = collected.stdout.split("pytest-fib: files not loaded", 1)[1]
    for path in expected["unloadable"]:
        assert f"SKIP {path}:" in summary


def test_collection_imports_no_torch(collected: subprocess.CompletedProcess) -> None:
    assert "import-check heavy: []" in collected.stdout


def test_collection_is_fast(collected: subprocess.CompletedProcess) -> None:
    """The brief's budget is 3 s for collecting the whole dataset: 1.3-1.6 s of CPU here on an
    idle 2-core machine (the README's wall-time figures are measured by hand). A timed bound
    cannot be held to that in CI: with other work on the machine the same collection took 3.7 s
    of CPU time (both cores busy: CPU time inflates too) and more of wall time (issue 14). So
    what makes it fast is checked exactly (test_collection_imports_no_torch: no torch, no
    pydantic models), and the CPU time only against a gross regression."""
    assert re.search(r"(\d+) tests? collected in ([0-9.]+)s", collected.stdout) is not None
    m = re.search(r"collection cpu: ([0-9.]+)s", collected.stdout)
    assert m is not None, collected.stdout[-2000:]
    assert float(m.group(1)) < 10.0
