"""embedding: token-embedding lookup output = weight[input_ids] (public: embedding_v128256_d4096,
_v128256_d8192, _v151936_d2048, _v201088_d2880 in bfloat16; _v128256_d4096_fp8e4m3 and
_d8192_fp8e4m3 in float8_e4m3fn; _v128256_d4096_mxfp4 in float4_e2m1; no public workloads).
Mirrored: embedding_v512_d64 (bfloat16) and embedding_v512_d64_fp8e4m3. vocab_size shrunk to 512,
embedding_dim to 64.

``input_ids`` is int64: a random int input would be randint(-1024, 1024), out of range, so every
workload gives the ids as a safetensors blob of valid ids in [0, 512) (with repeats, and the first
and last row of the table). The weight table stays random. Not mirrored: the mxfp4 variant (packed
float4 dtype)."""

from __future__ import annotations

from typing import Any

from ..spec import Family, Solution, Workload, const, definition, tensor, var

V, D = 512, 64


def _def(suffix: str, dtype: str) -> dict[str, Any]:
    return definition(
        f"embedding_v{V}_d{D}{suffix}", "embedding",
        f"Token embedding lookup, vocab_size={V}, embedding_dim={D}, {dtype} (mini-dataset).",
        {"batch_size": var(), "vocab_size": const(V), "embedding_dim": const(D)},
        {"input_ids": tensor(["batch_size"], "int64", "Token indices to look up"),
         "weight": tensor(["vocab_size", "embedding_dim"], dtype, "Embedding weight matrix")},
        {"output": tensor(["batch_size", "embedding_dim"], dtype)},
        f"""
        import torch

        @torch.no_grad()
        def run(input_ids, weight):
            assert weight.shape == ({V}, {D})
            assert bool(((input_ids >= 0) & (input_ids < {V})).all())
            # index_select copies rows bit for bit, for fp8 too
            return torch.index_select(weight, 0, input_ids)
        """)


BF16 = _def("", "bfloat16")
FP8 = _def("_fp8e4m3", "float8_e4m3fn")

# Gathers row by row into a preallocated output, as a kernel with one program per token does.
OK = """
import torch

def run(input_ids, weight, output):
    for t in range(input_ids.shape[0]):
        output[t].copy_(weight[int(input_ids[t])])
"""

# Treats the ids as 1-based (id 0, the first row, wraps around to the last row).
WRONG_ONE_BASED = """
import torch

def run(input_ids, weight, output):
    for t in range(input_ids.shape[0]):
        output[t].copy_(weight[int(input_ids[t]) - 1])
"""

FP8_OK = """
import torch

def run(input_ids, weight):
    # move the bytes, not the values: an fp8 gather is a uint8 gather
    rows = weight.view(torch.uint8)[input_ids.long()]
    return rows.view(weight.dtype)
"""

# Upcasts the fp8 table for the gather and returns the wider rows.
WRONG_UPCAST = """
import torch

def run(input_ids, weight):
    return weight.to(torch.bfloat16)[input_ids]
"""


def _ids(gen: Any, n: int) -> Any:
    import torch

    ids = torch.randint(0, V, (n,), generator=gen, dtype=torch.int64)
    if n >= 3:
        ids[0], ids[-1] = 0, V - 1  # both ends of the table
        ids[1] = ids[-2]  # a repeated token
    return ids


def make(gen: Any) -> Family:
    workloads = []
    for d in (BF16, FP8):
        for n in (1, 9, 50):
            workloads.append(Workload(
                d["name"], {"batch_size": n},
                {"input_ids": {"type": "safetensors", "file": f"ids_b{n}.safetensors",
                               "tensor_key": "input_ids"},
                 "weight": {"type": "random"}},
                {f"ids_b{n}.safetensors": {"input_ids": _ids(gen, n)}}))
    return Family("embedding", [BF16, FP8], workloads, [
        Solution(f"{BF16['name']}_py", BF16["name"], OK, dps=True),
        Solution(f"{BF16['name']}_one_based", BF16["name"], WRONG_ONE_BASED, "INCORRECT_NUMERICAL",
                 "indexes weight[id - 1], as if token ids were 1-based", dps=True),
        Solution(f"{FP8['name']}_py", FP8["name"], FP8_OK),
        Solution(f"{FP8['name']}_upcast", FP8["name"], WRONG_UPCAST, "INCORRECT_DTYPE",
                 "returns the rows upcast to bfloat16 instead of float8_e4m3fn"),
    ])
