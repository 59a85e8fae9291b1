"""The shipped self-test corpus as CI runs it: ``pytest --fib-selftest`` on the CPU exits 0, and
each exploit that does not need a GPU is caught by the check and at the stage its config.toml
names (one workload and the property items keep it to about 40 s here)."""

from __future__ import annotations

import re
from pytest_fib._toml import tomllib
from pathlib import Path

import pytest

import helpers
import pytest_fib

CORPUS = Path(pytest_fib.__file__).parent / "selftest"
EXPLOITS = {
    (cfg := tomllib.loads(path.read_text()))["solution"]["name"]: cfg["selftest"]
    for path in sorted(CORPUS.glob("*/*/config.toml"))
}
CAUGHT = re.compile(r"^(exploit_\w+)\s+caught by (\w+)\s+at (\w+)", re.MULTILINE)


@pytest.fixture(scope="module")
def selftest(tmp_path_factory: pytest.TempPathFactory) -> helpers.Run:
    return helpers.run_pytest(
        tmp_path_factory.mktemp("selftest"), "--fib-selftest", "-k", "batch_size:7- or property",
        "--fib-device=cpu", "--fib-iterations=5", "--fib-warmup=1", "--fib-trials=1",
        "--fib-hypothesis-examples=5", "-p", "no:randomly", timeout=600)


def test_the_selftest_passes(selftest: helpers.Run) -> None:
    assert selftest.returncode == 0, selftest.output[-4000:]


@pytest.mark.parametrize("name", sorted(n for n, e in EXPLOITS.items() if not e.get("gpu")))
def test_each_exploit_is_caught_by_its_check(selftest: helpers.Run, name: str) -> None:
    caught = {m[0]: (m[1], m[2]) for m in CAUGHT.findall(selftest.output)}
    expect = EXPLOITS[name]
    assert caught.get(name) == (expect["expect"], expect["stage"]), selftest.output[-4000:]


@pytest.mark.parametrize("name", sorted(n for n, e in EXPLOITS.items() if e.get("gpu")))
def test_gpu_exploits_skip_with_the_reason(selftest: helpers.Run, name: str) -> None:
    mine = [item for key, item in selftest.items.items() if f"::{name}::" in key]
    assert mine and all(item.outcome == "skipped" for item in mine)
    assert any("needs a GPU" in item.message for item in mine)
