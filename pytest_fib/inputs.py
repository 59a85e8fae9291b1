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

import collections
import zlib
from pathlib import Path
from typing import Any


def trial_seed(seed: int, definition: str, workload_uuid: str, trial: int) -> int:
    return zlib.crc32(f"{seed}:{definition}:{workload_uuid}:{trial}".encode()) & 0x7FFFFFFF


class WorkloadError(Exception):
    """The workload is wrong (its line, or a blob file it names), not the solution: reported
    against the workload, naming the file and key. ``missing`` marks a blob that is not there
    (a skip: fetch it), as opposed to one that is there and wrong (a failure)."""

    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


LFS_POINTER = b"version https://git-lfs"
# Blob tensors kept per process, per device (a KV cache shared by many workloads is read once);
# least recently used first out past this many bytes.
BLOB_CACHE_BYTES = {"cpu": 512 * 2**20, "cuda": 8 * 2**30}


class _BlobCache:
    def __init__(self) -> None:
        self.items: collections.OrderedDict[tuple[Any, ...], Any] = collections.OrderedDict()

    def get(self, path: Path, key: str, device: str) -> Any:
        stat = path.stat()
        ident = (str(path), stat.st_mtime_ns, stat.st_size, key, device)
        if ident in self.items:
            self.items.move_to_end(ident)
            return self.items[ident]
        tensor = _read_tensor(path, key, device)
        self.items[ident] = tensor
        limit = BLOB_CACHE_BYTES["cuda" if device.startswith("cuda") else "cpu"]
        while len(self.items) > 1 and sum(
                t.numel() * t.element_size() for t in self.items.values()) > limit:
            self.items.popitem(last=False)
        return tensor


_BLOBS = _BlobCache()  # per process: the worker's and the controller's own


def blob_file(root: str | Path, rel: str) -> Path:
    path = Path(rel)
    return path if path.is_absolute() else Path(root) / path


def _read_tensor(path: Path, key: str, device: str) -> Any:
    """One tensor of a safetensors file, read straight onto ``device`` (no host copy of a large
    KV cache on a GPU; only the named tensor is read, not the whole file)."""
    from safetensors import safe_open

    with path.open("rb") as fh:
        if fh.read(len(LFS_POINTER)) == LFS_POINTER:
            raise WorkloadError(f"{path} is a git-lfs pointer, not the data: run `git lfs pull "
                                f"--include \"{path.name}\"` in the dataset", missing=True)
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            keys = list(f.keys())
            if key not in keys:
                raise WorkloadError(f"{path}: no tensor named {key!r} (tensor_key); the file "
                                    f"holds {keys[:12]}")
            return f.get_tensor(key)
    except WorkloadError:
        raise
    except Exception as e:  # noqa: BLE001 -- a corrupt or truncated file: name it
        raise WorkloadError(f"{path}: not a readable safetensors file ({type(e).__name__}: "
                            f"{str(e)[:200]})") from None


def load_blobs(definition: Any, workload: Any, root: str | Path, device: str) -> dict[str, Any]:
    """The workload's safetensors inputs by input name, checked against the definition's shape
    and dtype at the workload's axes. Raises WorkloadError naming the file and key."""
    from flashinfer_bench.utils import dtype_str_to_torch_dtype

    shapes = dict(zip(definition.inputs, definition.get_input_shapes(workload.axes),
                      strict=False))
    out = {}
    for name, spec in workload.inputs.items():
        if spec.type != "safetensors":
            continue
        path = blob_file(root, spec.path)
        if not path.is_file():
            raise WorkloadError(f"input blob {spec.path} is not in the dataset at {root}: run "
                                f"`git lfs pull --include \"{spec.path}\"` there", missing=True)
        tensor = _BLOBS.get(path, spec.tensor_key, device)
        where = f"{path} [{spec.tensor_key!r}] (input {name!r})"
        want = shapes.get(name)
        if want is not None and tuple(tensor.shape) != tuple(want):
            raise WorkloadError(f"{where}: shape {list(tensor.shape)}, but the definition wants "
                                f"{list(want)} at the workload's axes {dict(workload.axes)}")
        dtype = dtype_str_to_torch_dtype(definition.inputs[name].dtype)
        if tensor.dtype != dtype:
            raise WorkloadError(f"{where}: dtype {tensor.dtype}, but the definition wants {dtype}")
        out[name] = tensor
    return out


def check_workload(definition: Any, workload: Any) -> None:
    """What flashinfer-bench would only find out inside a solution or reference call."""
    for name, spec in workload.inputs.items():
        tensor_input = definition.inputs[name].shape is not None
        if spec.type == "scalar" and tensor_input:
            raise WorkloadError(f"input {name!r} is a tensor of shape "
                                f"{definition.inputs[name].shape} in {definition.name}, but the "
                                f"workload gives a scalar ({spec.value!r}): use \"random\" or "
                                "\"safetensors\"")


def index_summary(definition: Any, workload: Any, inputs: list[Any]) -> str:
    """The range of each integer input a blob supplies, naming its file and key: what to look at
    when a reference fails indexing with them."""
    import torch

    parts = []
    for name, value in zip(definition.inputs, inputs, strict=False):
        spec = workload.inputs.get(name)
        if (spec is not None and spec.type == "safetensors" and isinstance(value, torch.Tensor)
                and not value.is_floating_point() and value.numel()):
            parts.append(f"{name} = {spec.path} [{spec.tensor_key!r}]: values "
                         f"{int(value.min())}..{int(value.max())}")
    if not parts:
        return ""
    return ("\nThe workload's index inputs (one may be out of range for what it indexes, at axes "
            f"{dict(workload.axes)}):\n  " + "\n  ".join(parts))


def make_inputs(definition: Any, workload: Any, device: str, seed: int, root: str) -> list[Any]:
    """Fresh input values for one trial (new tensors, so new addresses, every call)."""
    import torch
    from flashinfer_bench.bench.utils import gen_inputs

    check_workload(definition, workload)
    blobs = load_blobs(definition, workload, root, device)
    devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        values = gen_inputs(definition, workload, device=device, safe_tensors=blobs)
    values = [probabilities(definition, workload, name, v)
              for name, v in zip(definition.inputs, values, strict=False)]
    # gen_inputs hands out the cached blob itself (already on the device): copy it, so no caller
    # can change what the next one sees.
    return [v.clone() if isinstance(v, torch.Tensor) and v.data_ptr() in
            {b.data_ptr() for b in blobs.values()} else v for v in values]


# Op types whose "probs" input is a probability distribution. flashinfer-bench 0.1.2 softmaxes a
# random "probs" only for op_type "sampling", so multinomial references get randn (negative)
# "probabilities" there and fail.
SAMPLING_OP_TYPES = ("sampling", "multinomial")


def probabilities(definition: Any, workload: Any, name: str, value: Any) -> Any:
    spec = workload.inputs.get(name)
    if (definition.op_type != "sampling" and definition.op_type in SAMPLING_OP_TYPES
            and name == "probs" and (spec is None or spec.type == "random")):
        import torch

        return torch.softmax(value.float(), dim=-1).to(value.dtype)
    return value


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
    """Change the first floating-point input in place, deterministically: swap two different
    elements of one row (its last dimension).

    Applied before every timed call (outside the timed span), so no timed call ever sees inputs
    identical to an earlier call's: an answer cached by address or by a sampled fingerprint and
    replayed is stale, and the re-check of the timed outputs catches it. A swap within a row
    keeps every value the input had, and each row's sum: probabilities stay probabilities (a
    random value there made the reference of a sampling definition fail on a negative one).
    """
    import random

    import torch

    for value in inputs:
        if isinstance(value, torch.Tensor) and value.dtype.is_floating_point and value.numel():
            rng = random.Random(seed * 1_000_003 + cycle)
            flat = value.view(-1)
            row = value.shape[-1] if value.dim() and value.shape[-1] > 1 else flat.numel()
            for _ in range(8):  # a pair of different values; a constant row has none
                i = rng.randrange(flat.numel())
                j = i - i % row + rng.randrange(row)
                a, b = flat[i].item(), flat[j].item()
                if a != b:
                    flat[i], flat[j] = b, a
                    return
            flat[i] = a / 2 if a else 0.5  # constant: a change that keeps the value's sign
            return


def timed_cycles(k: int, n_sets: int, iterations: int) -> list[int]:
    """The perturbation cycles applied to input set k over ``iterations`` timed calls."""
    return [i // n_sets + 1 for i in range(k, iterations, n_sets)]
