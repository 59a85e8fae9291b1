"""The shape of one op family of the mini-dataset: definitions, workloads, solutions.

A family module (``families/<name>.py``) exposes ``make(gen: torch.Generator) -> Family``. All
values it builds derive from ``gen`` (seeded by ``build.py``), so the dataset is the same bytes on
every machine. ``build.py`` turns Families into a FlashInfer-Trace folder.
"""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Any


@dataclasses.dataclass
class Workload:
    """One workload line. ``inputs`` maps input name -> spec: ``{"type": "random"}``,
    ``{"type": "scalar", "value": v}`` or ``{"type": "safetensors", "file": F, "tensor_key": K}``
    (``file`` is a bare file name: build.py writes ``blobs[F]`` under
    ``blob/workloads/<op_type>/<definition>/F`` and rewrites the spec to flashinfer-bench's
    ``path``). Inputs not named are random."""

    definition: str
    axes: dict[str, int]
    inputs: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    blobs: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # file -> tensors


@dataclasses.dataclass
class Solution:
    """A Python solution (``main.py::run``). ``expect`` is "PASSED" or the status its correctness
    items must fail with (INCORRECT_NUMERICAL, INCORRECT_SHAPE, INCORRECT_DTYPE, ...); ``why``
    says what is wrong with a wrong one."""

    name: str
    definition: str
    source: str
    expect: str = "PASSED"
    why: str = ""
    dps: bool = False  # destination passing style: run(*inputs, *outputs)


@dataclasses.dataclass
class Family:
    name: str  # the op family, e.g. "gqa_paged" (names the tests)
    definitions: list[dict[str, Any]]
    workloads: list[Workload]
    solutions: list[Solution]


def definition(name: str, op_type: str, description: str, axes: dict[str, Any],
               inputs: dict[str, Any], outputs: dict[str, Any], reference: str,
               constraints: list[str] | None = None, tags: list[str] | None = None
               ) -> dict[str, Any]:
    """A Definition JSON object (flashinfer-bench 0.1.2 schema); ``reference`` is dedented."""
    raw: dict[str, Any] = {"name": name, "op_type": op_type, "description": description,
                           "tags": tags or ["status:verified", "source:pytest-fib-minidata"],
                           "axes": axes}
    if constraints:
        raw["constraints"] = constraints
    raw.update(inputs=inputs, outputs=outputs, reference=textwrap.dedent(reference).lstrip())
    return raw


def var(description: str = "") -> dict[str, Any]:
    return {"type": "var", **({"description": description} if description else {})}


def const(value: int, description: str = "") -> dict[str, Any]:
    return {"type": "const", "value": value, **({"description": description} if description else {})}


def tensor(shape: list[str] | None, dtype: str, description: str = "") -> dict[str, Any]:
    return {"shape": shape, "dtype": dtype, **({"description": description} if description else {})}
