"""Hostile solutions cannot touch the next one (issue 13): each solution runs in a process of its
own, forked from the worker (zygote.py), in a private working directory, and what it spawned dies
with it. Items run in name order: each hostile solution comes before the ones that check."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Iterator
from unittest import mock

import pytest

import helpers

HOSTILE = {
    # right answers, then it breaks torch for whoever comes next
    "a_patch": ("import torch\n\ndef run(x, y):\n    y.copy_(x * 2)\n"
                "    torch.Tensor.__mul__ = lambda a, b: a + 1000\n"
                "    torch.Tensor.copy_ = lambda a, b: a\n"),
    # right answers, then it changes the process's environment, folder and import path, and
    # leaves a process of its own running
    "b_env": ("import os, subprocess, sys\n\nSLEEP = '3171'\n\ndef run(x, y):\n    y.copy_(x * 2)\n"
              "    os.environ['FIB_LEAK'] = '1'\n    sys.path.insert(0, '/nonexistent-fib')\n"
              "    open('pid', 'w').write(str(subprocess.Popen(['sleep', SLEEP]).pid))\n"
              "    os.chdir('/')\n"),
}
# what the next solution checks, besides computing x * 2 with torch (which a_patch broke)
CHECK = ("import os, sys, tempfile\n\ndef run(x, y):\n"
         "    assert 'FIB_LEAK' not in os.environ, 'environment leaked'\n"
         "    assert '/nonexistent-fib' not in sys.path, 'sys.path leaked'\n"
         "    assert 'pytest-fib-solution-' in os.getcwd(), os.getcwd()\n"
         "    assert tempfile.gettempdir() == os.getcwd()\n"
         "    y.copy_(x * 2)\n")


@pytest.fixture(scope="module", params=["fork", "exec"])
def session(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[helpers.Run, float]]:
    """Both ways a solution's process starts: forked from the worker (CPU sessions), or a fresh
    interpreter exec'd from that fork (GPU sessions: CUDA cannot run in a plain fork)."""
    with mock.patch.dict(os.environ, {"PYTEST_FIB_EXEC_CHILDREN": "1"}
                         if request.param == "exec" else {}):
        yield _hostile_session(tmp_path_factory.mktemp(f"hostile-{request.param}"))


def _hostile_session(root: Path) -> tuple[helpers.Run, float]:
    helpers.project(root, kits=(), ns=(1, 7))
    for name, code in HOSTILE.items():
        helpers.add_kit(root / "kernels", name, code)
    helpers.add_kit(root / "kernels", "c_check", CHECK)
    helpers.add_kit(root / "kernels", "d_ok", kind="ok")
    start = time.monotonic()
    run = helpers.run_pytest(root, "--fib-dataset=data", *helpers.FAST, "-m", "correctness",
                             "--fib-trials=2", timeout=300)
    return run, start


def test_a_correct_solution_after_each_hostile_one_passes(session: tuple[helpers.Run,
                                                                          float]) -> None:
    run, _ = session
    for name in ("c_check", "d_ok", "b_env"):
        items = run.by_suffix(f"::{name}::")
        assert len(items) == 2 and all(i.outcome == "passed" for i in items.values()), (
            {k: v.message[:400] for k, v in items.items()}, run.output[-2000:])


def test_a_hostile_solution_only_breaks_itself(session: tuple[helpers.Run, float]) -> None:
    run, _ = session
    outcomes = [i.outcome for i in run.by_suffix("::a_patch::").values()]
    assert "failed" in outcomes  # its second trial ran in the process it had broken


def test_what_a_solution_spawned_dies_with_it(session: tuple[helpers.Run, float]) -> None:
    """b_env left a `sleep 3171` running; it went with b_env's process."""
    for entry in os.listdir("/proc"):
        try:
            cmd = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        assert cmd[:2] != [b"sleep", b"3171"], f"pid {entry} outlived the solution that spawned it"


# References come from a downloaded dataset: as hostile as any solution.
BAD_REFERENCES = {
    "hang": "import torch\n\ndef run(x):\n    while True:\n        pass\n",
    "exits": "import os\n\ndef run(x):\n    os._exit(0)\n",
    "raises": "def run(x):\n    raise ValueError('broken reference')\n",
}


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> helpers.Run:
    root = tmp_path_factory.mktemp("references")
    data = helpers.make_dataset(root / "data", ns=(1,))
    for name, code in BAD_REFERENCES.items():
        helpers.make_dataset(data, ns=(1,), name=f"ref_{name}", tag=name[0])
        path = data / "definitions" / helpers.OP_TYPE / f"ref_{name}.json"
        raw = json.loads(path.read_text())
        path.write_text(json.dumps({**raw, "reference": code}))
    kernels = root / "kernels"
    for name in ["ok", *BAD_REFERENCES]:
        helpers.add_kit(kernels, f"k_{name}", kind="ok",
                        definition_name="scale2" if name == "ok" else f"ref_{name}")
    return helpers.run_pytest(root, "--fib-dataset=data", *helpers.FAST, "-m", "correctness",
                              "--fib-timeout=10", timeout=300)


def test_a_hanging_reference_times_out_its_items_only(references: helpers.Run) -> None:
    (item,) = references.by_suffix("::ref_hang::").values()
    assert item.outcome == "failed" and item.message.startswith("TIMEOUT"), item.message[:500]
    assert "reference" in item.message


@pytest.mark.parametrize("name, words", [("exits", "exited with status 0"),
                                         ("raises", "ValueError: broken reference")])
def test_a_reference_that_dies_or_raises_is_a_reference_error(references: helpers.Run, name: str,
                                                              words: str) -> None:
    (item,) = references.by_suffix(f"::ref_{name}::").values()
    assert item.outcome == "failed" and item.message.startswith("REFERENCE_ERROR")
    assert words in item.message, item.message[:600]


def test_the_session_goes_on_and_fails(references: helpers.Run) -> None:
    (ok,) = references.by_suffix("::scale2::").values()
    assert ok.outcome == "passed"
    assert references.returncode == 1 and "INTERNALERROR" not in references.output
