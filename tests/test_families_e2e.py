"""Every op family of the public dataset, end to end on the CPU: the mini-dataset
(``tests/minidata``: definitions, references, random/scalar/safetensors workloads with valid index
tensors, a correct and a wrong Python solution per definition) run through pytest-fib in one
subprocess session. Each correct solution must pass every item; each wrong one must fail every
item with the status it declares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import helpers
from minidata.build import build, families

# The op families of the public dataset (../shared/flashinfer-trace/definitions/*): each must
# have a module in tests/minidata/families.
PUBLIC_FAMILIES = ("dsa_paged", "embedding", "gdn", "gemm", "gqa_paged", "gqa_ragged",
                   "mamba_ssu", "mla_paged", "mla_ragged", "moe", "multinomial", "rmsnorm", "rope",
                   "sampling", "silu", "softmax", "topk")


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, dict[str, str]],
                                                               helpers.Run]:
    root = tmp_path_factory.mktemp("families")
    data = build(root / "mini")
    expect = json.loads((data / "expect.json").read_text())
    run = helpers.run_pytest(root, f"--fib-dataset={data}", "--fib-solutions=dataset",
                             "-m", "correctness", "--fib-seed=0", "--fib-trials=2",
                             "-p", "no:randomly", "-q", timeout=1500)
    return expect, run


def test_every_public_family_is_covered() -> None:
    names = {f.name for f in families()}
    assert set(PUBLIC_FAMILIES) <= names, sorted(set(PUBLIC_FAMILIES) - names)
    for fam in families():
        expects = {s.expect for s in fam.solutions}
        assert "PASSED" in expects and expects - {"PASSED"}, f"{fam.name}: needs a right and a wrong"
        blob = any(spec.get("type") == "safetensors" for w in fam.workloads
                   for spec in w.inputs.values())
        public = Path(__file__).parents[2] / "shared" / "flashinfer-trace" / "workloads" / fam.name
        if public.is_dir() and "safetensors" in "".join(p.read_text() for p in public.iterdir()):
            assert blob, f"{fam.name}: the public workloads read safetensors; so must these"


@pytest.mark.parametrize("family", PUBLIC_FAMILIES)
def test_family_verdicts(family: str, session: tuple[dict[str, dict[str, str]],
                                                     helpers.Run]) -> None:
    expect, run = session
    solutions = {name: e for name, e in expect.items() if e["family"] == family}
    assert solutions, f"no solutions for {family}"
    for name, e in solutions.items():
        items = {k: v for k, v in run.items.items() if f"::{name}::correctness[" in k}
        assert items, f"{name}: no correctness items ran\n{run.output[-3000:]}"
        for nodeid, item in items.items():
            if e["expect"] == "PASSED":
                assert item.outcome == "passed", f"{nodeid}: {item.outcome}\n{item.message}"
            else:
                assert item.outcome == "failed", f"{nodeid} ({e['why']}): {item.outcome}"
                assert item.message.lstrip().startswith(e["expect"]), (
                    f"{nodeid}: expected {e['expect']}, got:\n{item.message[:800]}")


def test_timed_calls_of_the_sampling_families_are_rechecked(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every timed call gets perturbed inputs, and the re-check runs the reference on them. On
    the H200 a random replacement value made a probability negative and the sampling references
    refused it (REFERENCE_ERROR on correct solutions); a swap within a row keeps them valid."""
    root = tmp_path_factory.mktemp("sampling-timing")
    data = build(root / "mini")
    run = helpers.run_pytest(root, f"--fib-dataset={data}", "--fib-solutions=dataset",
                             "-m", "timing", "-k", "_py and (sampling or multinomial)",
                             "--fib-device=cpu", "--fib-iterations=4", "--fib-warmup=0",
                             "--fib-seed=0", "-p", "no:randomly", "-q", timeout=900)
    assert len(run.items) >= 6, run.output[-3000:]
    failed = {k: v.message[:300] for k, v in run.items.items() if v.outcome != "passed"}
    assert not failed, failed
