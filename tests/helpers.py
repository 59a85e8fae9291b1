"""Builders for tiny FlashInfer-Trace datasets and starter-kit solutions, made in a tmp folder.

Every end-to-end test uses the same definition, ``scale2`` (y = 2 * x, float32, n var, d = 64),
because a one-line reference keeps each pytest run down to the worker start-up. Solutions are
Python files in the contest starter-kit layout (``<dir>/config.toml`` + ``solution/python/``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

DEFINITION = "scale2"
OP_TYPE = "scale"
NS = (1, 7, 33)  # var axis values of the three workloads: 1, an odd one, one past a power of two
D = 64

# Fast settings for every end-to-end run: few timed calls, one trial, a CPU device.
# FIB_TEST_DEVICE=cuda runs the end-to-end tests that use FAST on a GPU (tools/gpu/isolation13.sh)
FAST = (f"--fib-device={os.environ.get('FIB_TEST_DEVICE', 'cpu')}", "--fib-iterations=3", "--fib-warmup=0", "--fib-trials=1",
        "--fib-hypothesis-examples=1", "-p", "no:randomly")


def uuid_for(n: int, tag: str = "w") -> str:
    """A stable, readable workload uuid: the short id in node ids is its first 8 characters."""
    return f"{tag}{n:07d}-0000-4000-8000-000000000000"


def definition(name: str = DEFINITION, *, d: int = D, op_type: str = OP_TYPE,
               dtype: str = "float32", reference: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "op_type": op_type,
        "description": "y = 2 * x",
        "axes": {"n": {"type": "var"}, "d": {"type": "const", "value": d}},
        "inputs": {"x": {"shape": ["n", "d"], "dtype": dtype}},
        "outputs": {"y": {"shape": ["n", "d"], "dtype": dtype}},
        "reference": reference or "import torch\n\ndef run(x):\n    return x * 2\n",
    }


def workload_line(n: int, name: str = DEFINITION, tag: str = "w") -> dict[str, Any]:
    return {"definition": name, "solution": None,
            "workload": {"uuid": uuid_for(n, tag), "axes": {"n": n},
                         "inputs": {"x": {"type": "random"}}},
            "evaluation": None}


def make_dataset(root: Path, *, ns: Iterable[int] = NS, name: str = DEFINITION,
                 op_type: str = OP_TYPE, extra: Iterable[dict[str, Any]] = (),
                 tag: str = "w") -> Path:
    """A dataset root with one definition (plus ``extra`` definitions) and its workloads; call
    again with another ``name`` (and ``tag`` for distinct uuids) to add a definition."""
    defs = root / "definitions" / op_type
    defs.mkdir(parents=True, exist_ok=True)
    (defs / f"{name}.json").write_text(json.dumps(definition(name, op_type=op_type), indent=2))
    for other in extra:
        (defs / f"{other['name']}.json").write_text(json.dumps(other, indent=2))
    wls = root / "workloads" / op_type
    wls.mkdir(parents=True, exist_ok=True)
    (wls / f"{name}.jsonl").write_text(
        "".join(json.dumps(workload_line(n, name, tag)) + "\n" for n in ns))
    (root / "solutions").mkdir(exist_ok=True)
    return root


# Solution bodies (destination passing style: run(x, y) writes y). Each is a whole kernel.py.
KERNELS = {
    "ok": "def run(x, y):\n    y.copy_(x * 2)\n",
    "wrong": "def run(x, y):\n    y.copy_(x * 2)\n    y.view(-1)[-1] += 1.0\n",
    "mutate": "def run(x, y):\n    y.copy_(x * 2)\n    x.view(-1)[0] = 123.0\n",
    # mutates its input and disables the worker's check for it
    "hide": ("import pytest_fib.check\n\npytest_fib.check.mutated_inputs = lambda *a: None\n\n"
             "def run(x, y):\n    y.copy_(x * 2)\n    x.view(-1)[0] = 123.0\n"),
    "segfault": "import ctypes\n\ndef run(x, y):\n    ctypes.string_at(0)\n",
    "hang": "def run(x, y):\n    while True:\n        pass\n",
    "raise": "def run(x, y):\n    raise ValueError('kaboom from the kernel')\n",
    "nowrite": "def run(x, y):\n    pass\n",
    "nan": "def run(x, y):\n    y.fill_(float('nan'))\n",
    "slow": "import time\n\ndef run(x, y):\n    time.sleep(0.02)\n    y.copy_(x * 2)\n",
    # called destination-passing style, but returns a new tensor and leaves y alone
    "ignores": "def run(x, *outputs):\n    return x * 2\n",
    # destination_passing_style = false: returns its output
    "returns": "def run(x):\n    return x * 2\n",
}


def config_toml(name: str, *, definition_name: str = DEFINITION, author: str = "tester",
                language: str = "python", entry: str = "kernel.py::run", dps: bool = True) -> str:
    return textwrap.dedent(f"""\
        [solution]
        name = "{name}"
        definition = "{definition_name}"
        author = "{author}"

        [build]
        language = "{language}"
        entry_point = "{entry}"
        destination_passing_style = {"true" if dps else "false"}
        """)


def add_kit(kernels: Path, name: str, code: str | None = None, *, kind: str | None = None,
            definition_name: str = DEFINITION, author: str = "tester",
            dps: bool | None = None) -> Path:
    """A starter-kit folder ``kernels/<name>/``; ``kind`` picks a body from KERNELS."""
    kind = kind or name
    body = code if code is not None else KERNELS[kind]
    if dps is None:
        dps = kind != "returns"
    folder = kernels / name
    src = folder / "solution" / "python"
    src.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(config_toml(name, definition_name=definition_name,
                                                    author=author, dps=dps))
    (src / "kernel.py").write_text(body)
    return folder


def solution_json(name: str, code: str, *, definition_name: str = DEFINITION,
                  author: str = "tester", dps: bool = True) -> dict[str, Any]:
    return {"name": name, "definition": definition_name, "author": author,
            "spec": {"language": "python", "target_hardware": ["cpu"],
                     "entry_point": "kernel.py::run", "destination_passing_style": dps},
            "sources": [{"path": "kernel.py", "content": code}]}


def project(root: Path, kits: Iterable[str] = ("ok",), **kw: Any) -> tuple[Path, Path]:
    """A project folder: ``data/`` (the dataset) and ``kernels/`` with the named solutions."""
    data = make_dataset(root / "data", **kw)
    kernels = root / "kernels"
    kernels.mkdir(exist_ok=True)
    for kind in kits:
        add_kit(kernels, kind)
    return data, kernels


def outcomes(reports: Iterable[Any]) -> dict[str, str]:
    """nodeid -> outcome of each item's decisive phase (setup failure/skip, else call)."""
    out: dict[str, str] = {}
    for rep in reports:
        if rep.when == "call" or (rep.when == "setup" and not rep.passed):
            out[rep.nodeid] = rep.outcome
    return out


def trace_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- a pytest run in a subprocess, for module-scoped fixtures and crash isolation ------------------

CLEAN_ENV_DROP = ("FIB_DATASET_PATH", "FIB_SEED", "FIB_DEVICE", "FIB_TIMEOUT", "FIB_CPU_BUDGET",
                  "PYTEST_FIB_GPUS", "PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS",
                  "PYTEST_CURRENT_TEST")


def clean_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV_DROP}
    env["FIB_CACHE_PATH"] = str(cache)
    return env


@dataclass
class Item:
    outcome: str  # passed, failed, skipped, error
    message: str  # failure text or skip reason


@dataclass
class Run:
    returncode: int
    output: str
    items: dict[str, Item]  # "classname::name" as junit spells a node id -> outcome

    def by_suffix(self, suffix: str) -> dict[str, Item]:
        return {k: v for k, v in self.items.items() if suffix in k}


def junit_items(path: Path) -> dict[str, Item]:
    """Node id -> outcome from a junit XML (junit writes ``a::b::c`` as classname ``a.b``)."""
    items: dict[str, Item] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        nodeid = case.get("classname", "").replace(".", "::") + "::" + case.get("name", "")
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (el.text or "") if tag != "skipped" else el.get("message", "")
                break
        items[nodeid] = Item(outcome, message)
    return items


def run_pytest(cwd: Path, *args: str, timeout: float = 240) -> Run:
    """``python -m pytest`` in ``cwd`` with a junit report; the worker and pytest both fresh."""
    junit = cwd / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args, f"--junitxml={junit}", "-p", "no:cacheprovider"],
        cwd=cwd, env=clean_env(cwd / ".fib-cache"), capture_output=True, text=True,
        timeout=timeout)
    output = proc.stdout + proc.stderr
    items = junit_items(junit) if junit.is_file() else {}
    return Run(proc.returncode, output, items)
