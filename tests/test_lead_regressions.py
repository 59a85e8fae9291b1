"""Regressions found while building pytest-fib, each pinned by a test that fails without its fix."""

from __future__ import annotations

import json

from pytest_fib.models import validate


def test_validation_keeps_the_definitions_argument_order() -> None:
    """A definition's inputs order is the solution's call signature: validating must not sort it
    (it once did, and every solution whose input names were not alphabetical got shuffled
    arguments)."""
    raw = {
        "name": "order", "op_type": "t", "axes": {"n": {"type": "var"}},
        "inputs": {"q": {"shape": ["n"], "dtype": "float32"},
                   "A_log": {"shape": ["n"], "dtype": "float32"},
                   "b": {"shape": ["n"], "dtype": "float32"}},
        "outputs": {"z": {"shape": ["n"], "dtype": "float32"},
                    "out": {"shape": ["n"], "dtype": "float32"}},
        "reference": "def run(q, A_log, b):\n    return q, q\n",
    }
    model = validate("definition", json.loads(json.dumps(raw)), "order.json")
    assert list(model.inputs) == ["q", "A_log", "b"]
    assert list(model.outputs) == ["z", "out"]


def test_a_missing_destination_passing_style_gets_a_hint() -> None:
    """Public-dataset solutions often omit destination_passing_style while returning their
    outputs; flashinfer-bench 0.1.2 then passes outputs as arguments and the call fails with an
    argument error, which must say how to fix the file."""
    from types import SimpleNamespace

    from pytest_fib.hints import dps_hint

    error = "TypeError: run(): incompatible function arguments. The following are supported"
    missing = SimpleNamespace(solution=SimpleNamespace(raw={"spec": {}}, path="s.json"))
    given = SimpleNamespace(solution=SimpleNamespace(
        raw={"spec": {"destination_passing_style": True}}, path="s.json"))
    assert '"destination_passing_style": false' in dps_hint(missing, error)  # type: ignore[arg-type]
    assert dps_hint(given, error) == ""  # type: ignore[arg-type]
    assert dps_hint(missing, "RuntimeError: CUDA error") == ""  # type: ignore[arg-type]
    # a hand-written argument check (gpt-5.2_rmsnorm_h2048 in the public dataset)
    own = "RuntimeError: Expected either positional (hidden_states, weight) or kwargs"
    assert "destination_passing_style" in dps_hint(missing, own)  # type: ignore[arg-type]
