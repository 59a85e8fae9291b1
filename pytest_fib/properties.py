"""Property-based correctness: shapes the workloads do not list, drawn by hypothesis.

A solution special-cased for the tested shapes passes every workload item; here hypothesis draws
var-axis values satisfying the definition's ``constraints`` (which flashinfer-bench never
evaluates) within a size the machine can afford, runs solution and reference on fresh inputs,
shrinks a failure to the smallest failing case and reproduces it from ``--fib-seed``.
Correctness only, never timing. Imports hypothesis lazily (only when such an item is built).
"""

from __future__ import annotations

import ast
from typing import Any

from .dataset import DefinitionRec, WorkloadRec

PROFILE = "fib"
CPU_BUDGET = 4 * 2**20  # bytes of inputs+outputs per drawn example without a GPU
GPU_BUDGET = 256 * 2**20


def register_profile() -> None:
    from hypothesis import HealthCheck, settings

    # No deadline: a first example includes the build (nvcc, triton JIT) and a worker round trip.
    settings.register_profile(PROFILE, deadline=None, suppress_health_check=[
        HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture])


def constraint_check(definition: DefinitionRec) -> tuple[list[Any], list[str]]:
    """Compiled constraints over axis names, and the ones that name anything else (ignored)."""
    axes = set(definition.raw["axes"])
    usable, ignored = [], []
    for text in definition.raw.get("constraints", []) or []:
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError:
            ignored.append(text)
            continue
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        if names <= axes:
            usable.append(compile(tree, "<constraint>", "eval"))
        else:
            ignored.append(text)
    return usable, ignored


def satisfies(codes: list[Any], values: dict[str, int]) -> bool:
    try:
        return all(eval(code, {"__builtins__": {}}, dict(values)) for code in codes)
    except Exception:  # noqa: BLE001 -- a constraint that cannot be evaluated is not met
        return False


def axis_caps(definition: DefinitionRec, workloads: list[WorkloadRec],
              budget: int) -> dict[str, int]:
    """Per var axis: the largest value that keeps one example within the budget (others at their
    smallest seen value), never above the largest value the workloads use."""
    lows = {a: max(1, min((w.axes.get(a, 1) for w in workloads), default=1))
            for a in definition.var_axes}
    caps = {}
    for axis in definition.var_axes:
        seen = max((w.axes.get(axis, 1) for w in workloads), default=1)
        hi = max(1, seen)
        while hi > 1 and definition.nbytes({**lows, axis: hi}) > budget:
            hi //= 2
        caps[axis] = max(1, hi)
    return caps


def blocked_reason(definition: DefinitionRec, workloads: list[WorkloadRec]) -> str | None:
    if not definition.var_axes:
        return "the definition has no var axes: its workloads already cover every shape"
    if any(w.blobs for w in workloads):
        return ("its workloads use captured inputs (safetensors): valid inputs cannot be drawn "
                "from the axes alone")
    for spec in definition.raw["inputs"].values():
        if spec["dtype"] in ("int32", "int64") and spec.get("shape"):
            return ("integer tensor inputs (indices, lengths) need structure random draws don't "
                    "have")
    return None


def synthetic_workload(template: WorkloadRec, axes: dict[str, int], tag: str) -> WorkloadRec:
    """A workload with drawn axes; scalar inputs as the template gives them, the rest random."""
    inputs = {k: v for k, v in template.raw.get("inputs", {}).items()
              if isinstance(v, dict) and v.get("type") == "scalar"}
    uuid = f"property-{tag}"
    raw = {"uuid": uuid, "axes": dict(axes), "inputs": inputs}
    return WorkloadRec(template.definition, uuid, dict(axes), template.path, template.line, raw)


def make_test(definition: DefinitionRec, workloads: list[WorkloadRec], budget: int,
              examples: int, seed: int, run: Any) -> Any:
    """The @given-decorated test function for one (definition, solution)."""
    from hypothesis import assume, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    codes, _ = constraint_check(definition)
    caps = axis_caps(definition, workloads, budget)
    consts = {k: a["value"] for k, a in definition.raw["axes"].items() if a.get("type") == "const"}
    axes_strategy = st.fixed_dictionaries({a: st.integers(1, caps[a]) for a in definition.var_axes})

    @hseed(seed)
    @settings(settings.get_profile(PROFILE), max_examples=examples)
    @given(axes=axes_strategy)
    def check_property(request: Any, axes: dict[str, int]) -> None:
        """Correct on drawn shapes (hypothesis), not only on the listed workloads."""
        assume(satisfies(codes, {**consts, **axes}))
        assume(definition.nbytes(axes) <= budget)
        run(request.node, axes)

    return check_property
