"""Seeded inputs and poisoned outputs, identical in every process that asks for the same seed.

Inputs come from flashinfer-bench's own generator (``bench.utils.gen_inputs``: randn for floats,
bounded randint for integers, softmax for sampling probabilities, safetensors blobs as captured) run
under a freshly seeded RNG, so the controller (which computes the reference and the verdict) and the
worker (which runs the solution) build bit-identical inputs without shipping them. Whatever RNG
draws a solution made at import time cannot shift them: the RNG is re-seeded right before.

Each trial's seed is derived from the session seed and the case (definition, workload uuid, trial),
never from the order of items, so one failing item reproduces alone with ``--fib-seed``.
"""

from __future__ import annotations

import functools
import zlib
from pathlib import Path
from typing import Any


def trial_seed(seed: int, definition: str, workload_uuid: str, trial: int) -> int:
    return zlib.crc32(f"{seed}:{definition}:{workload_uuid}:{trial}".encode()) & 0x7FFFFFFF


@functools.lru_cache(maxsize=4)
def _blobs(definition: Any, workload: Any, root: str) -> dict[str, Any]:
    from flashinfer_bench.bench.utils import load_safetensors

    return load_safetensors(definition, workload, Path(root))


def make_inputs(definition: Any, workload: Any, device: str, seed: int, root: str) -> list[Any]:
    """Fresh input values for one trial (new tensors, so new addresses, every call)."""
    import torch
    from flashinfer_bench.bench.utils import gen_inputs

    blobs = {}
    if any(spec.type == "safetensors" for spec in workload.inputs.values()):
        blobs = _blobs(definition, workload, root)
    devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        values = gen_inputs(definition, workload, device=device, safe_tensors=blobs)
    # gen_inputs hands out the cached blob itself when it is already on the device: copy it, so no
    # caller can change what the next one sees.
    return [v.clone() if isinstance(v, torch.Tensor) else v for v in values]


def poison(tensor: Any) -> Any:
    """Fill an output buffer with values no correct kernel leaves behind (NaN, or the dtype's
    minimum for integers), so an unwritten element can never pass by accident."""
    import torch

    if tensor.dtype.is_floating_point:
        if tensor.element_size() == 1:  # fp8: NaN where representable, else the max
            try:
                return tensor.fill_(float("nan"))
            except RuntimeError:
                return tensor.fill_(torch.finfo(tensor.dtype).max)
        return tensor.fill_(float("nan"))
    if tensor.dtype == torch.bool:
        return tensor.fill_(True)
    return tensor.fill_(torch.iinfo(tensor.dtype).min)


def poisoned_outputs(definition: Any, inputs: list[Any], device: str) -> list[Any]:
    from flashinfer_bench.bench.evaluators.utils import allocate_outputs

    return [poison(t) for t in allocate_outputs(definition, inputs, device)]


def perturb(inputs: list[Any], seed: int, cycle: int) -> None:
    """Change one element of the first floating-point input in place, deterministically.

    Applied before every timed call (outside the timed span), so no timed call ever sees inputs
    identical to an earlier call's: an answer cached by address or by a sampled fingerprint and
    replayed is stale, and the re-check of the timed outputs catches it.
    """
    import random

    import torch

    for value in inputs:
        if isinstance(value, torch.Tensor) and value.dtype.is_floating_point and value.numel():
            rng = random.Random(seed * 1_000_003 + cycle)
            flat = value.view(-1)
            flat[rng.randrange(flat.numel())] = rng.gauss(0.0, 1.0)
            return


def timed_cycles(k: int, n_sets: int, iterations: int) -> list[int]:
    """The perturbation cycles applied to input set k over ``iterations`` timed calls."""
    return [i // n_sets + 1 for i in range(k, iterations, n_sets)]
