"""topk: the k largest entries of each row, values (descending) and their indices (public:
topk_d128_k4 in bfloat16 with a scalar int64 input ``k``; topk_d128_k8 in float32 without a ``k``
input; topk_d128256_k50 / _d151936_k50 / _d201088_k50 in float32 over a ``vocab_size`` axis with a
scalar ``k``, and _d151936_k20 without one; no public workloads). Mirrored: topk_d64_k4 (bfloat16,
scalar k), topk_d64_k8 (float32, no k input) and topk_d512_k10 (float32, ``vocab_size`` shrunk to
512, scalar k). ``k`` is always given as a scalar workload input equal to the constant axis (a
random int64 scalar would be randint(-1024, 1024)).

Indices are judged as per-row multisets, so tie order does not matter; a tie *at the k-th value*
can still make two correct kernels pick different indices. bfloat16 rows of random numbers tie
often enough (about 1 row in 75 at d=64, k=4) that the bfloat16 definition reads its input from
safetensors blobs whose rows hold distinct values; the float32 definitions use random inputs.
"""

from __future__ import annotations

from typing import Any

from ..spec import Family, Solution, Workload, const, definition, tensor, var


def _def(d: int, k: int, dtype: str, axis: str, k_input: bool) -> dict[str, Any]:
    inputs = {"input": tensor(["batch_size", axis], dtype, "Input tensor")}
    if k_input:
        inputs["k"] = tensor(None, "int64", "Number of top elements to select")
    args = "input, k" if k_input else "input"
    check = f"\n            assert int(k) == {k}" if k_input else ""
    return definition(
        f"topk_d{d}_k{k}", "topk",
        f"Top-k selection over the last axis, {axis}={d}, k={k}, {dtype}: values in descending "
        "order and their indices (mini-dataset).",
        {"batch_size": var("Batch size"), axis: const(d), "k": const(k)},
        inputs,
        {"values": tensor(["batch_size", "k"], dtype, "Top-k values"),
         "indices": tensor(["batch_size", "k"], "int64", "Top-k indices")},
        f"""
        import torch

        @torch.no_grad()
        def run({args}):
            assert input.shape[-1] == {d}{check}
            order = torch.argsort(input.to(torch.float32), dim=-1, descending=True, stable=True)
            indices = order[:, :{k}]
            return torch.gather(input, 1, indices), indices
        """)


BF16 = _def(64, 4, "bfloat16", "dim", True)
F32 = _def(64, 8, "float32", "dim", False)
VOCAB = _def(512, 10, "float32", "vocab_size", True)

# Selection by repeated arg-max with masking (k rounds of a block-wide reduction, the shape of a
# small-k kernel); values come out in descending order by construction.
OK_K = """
import torch

def run(input, k):
    x = input.float().clone()
    rows = torch.arange(x.shape[0], device=x.device)
    idx = []
    for _ in range(int(k)):
        j = x.argmax(dim=1)
        idx.append(j)
        x[rows, j] = float("-inf")
    indices = torch.stack(idx, dim=1)
    return input[rows[:, None], indices], indices
"""

OK_NO_K = OK_K.replace("def run(input, k):", "def run(input):\n    k = 8")

# Heap-based selection that emits its heap in ascending order (min at the root) and never sorts:
# right elements, indices pass as a set, values in the wrong order.
WRONG_ASCENDING = """
import torch

def run(input, k):
    vals, idx = torch.sort(input.float(), dim=1, descending=True)
    idx = idx[:, :int(k)].flip(1)
    return input.gather(1, idx), idx
"""

# Writes the indices as int32 (what most CUDA kernels compute them in).
WRONG_INT32 = """
import torch

def run(input):
    vals, idx = torch.sort(input, dim=1, descending=True)
    return vals[:, :8].contiguous(), idx[:, :8].to(torch.int32)
"""

# Launches its per-tile partial top-k over the first 256 entries only (grid sized for one tile).
WRONG_FIRST_TILE = """
import torch

def run(input, k):
    part = input[:, :256]
    vals, idx = torch.sort(part, dim=1, descending=True)
    return vals[:, :int(k)].contiguous(), idx[:, :int(k)].contiguous()
"""


def _distinct_bf16(gen: Any, rows: int, d: int) -> Any:
    """Rows of d distinct bfloat16 values: the first d distinct values of a longer randn draw
    rounded to bfloat16 (in draw order, so positions stay random)."""
    import torch

    out = []
    for _ in range(rows):
        keep: list[float] = []
        for v in torch.randn(4 * d, generator=gen).to(torch.bfloat16).tolist():
            if v not in keep:
                keep.append(v)
        assert len(keep) >= d
        out.append(torch.tensor(keep[:d], dtype=torch.bfloat16))
    return torch.stack(out)


def make(gen: Any) -> Family:
    workloads = []
    for b in (1, 6, 31):
        file = f"input_b{b}.safetensors"
        workloads.append(Workload(
            BF16["name"], {"batch_size": b},
            {"input": {"type": "safetensors", "file": file, "tensor_key": "input"},
             "k": {"type": "scalar", "value": 4}},
            {file: {"input": _distinct_bf16(gen, b, 64)}}))
    for b in (1, 6, 31):
        workloads.append(Workload(F32["name"], {"batch_size": b}, {"input": {"type": "random"}}))
    for b in (1, 3, 17):
        workloads.append(Workload(VOCAB["name"], {"batch_size": b},
                                  {"input": {"type": "random"},
                                   "k": {"type": "scalar", "value": 10}}))
    return Family("topk", [BF16, F32, VOCAB], workloads, [
        Solution(f"{BF16['name']}_py", BF16["name"], OK_K),
        Solution(f"{BF16['name']}_ascending", BF16["name"], WRONG_ASCENDING,
                 "INCORRECT_NUMERICAL", "returns the right k elements in ascending order (an "
                 "unsorted min-heap): values differ element by element"),
        Solution(f"{F32['name']}_py", F32["name"], OK_NO_K),
        Solution(f"{F32['name']}_int32_indices", F32["name"], WRONG_INT32, "INCORRECT_DTYPE",
                 "returns the indices as int32 instead of int64"),
        Solution(f"{VOCAB['name']}_py", VOCAB["name"], OK_K),
        Solution(f"{VOCAB['name']}_first_tile", VOCAB["name"], WRONG_FIRST_TILE,
                 "INCORRECT_NUMERICAL", "only the first 256 of 512 entries are scanned"),
    ])
