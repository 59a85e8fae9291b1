"""gemm: C = A @ B.T (public: gemm_n*_k*, 53 in float16 and 7 in bfloat16, M variable, N and K
constant; every input random in the public workloads). Mirrored here as one float16 definition
with N=48, K=80: K is deliberately not a multiple of a typical 32/64 K-tile, so a kernel that
drops the tail of the K loop is visibly wrong. The bfloat16 variants are the same operator and are
not mirrored separately."""

from __future__ import annotations

from typing import Any

from ..spec import Family, Solution, Workload, const, definition, tensor, var

N, K = 48, 80
NAME = f"gemm_n{N}_k{K}"

GEMM = definition(
    NAME, "gemm",
    f"General matrix multiply C = A @ B.T, N={N}, K={K}, float16 (mini-dataset).",
    {"M": var(), "N": const(N), "K": const(K)},
    {"A": tensor(["M", "K"], "float16"), "B": tensor(["N", "K"], "float16")},
    {"C": tensor(["M", "N"], "float16")},
    f"""
    import torch

    @torch.no_grad()
    def run(A, B):
        assert A.shape[1] == {K} and B.shape == ({N}, {K})
        # fp32 accumulation, one rounding to fp16 at the end: what a tensor-core GEMM does.
        return torch.matmul(A.to(torch.float32), B.to(torch.float32).t()).to(torch.float16)
    """)

# A tiled GEMM in the shape of a Triton kernel: K walked in 32-wide tiles, fp32 accumulator.
OK = """
import torch

BLOCK_K = 32

def run(A, B):
    M, K = A.shape
    acc = torch.zeros(M, B.shape[0], dtype=torch.float32, device=A.device)
    for k0 in range(0, K, BLOCK_K):
        a = A[:, k0:k0 + BLOCK_K].float()
        b = B[:, k0:k0 + BLOCK_K].float()
        acc += a @ b.t()
    return acc.to(torch.float16)
"""

# The K loop runs K // BLOCK_K full tiles and never the ragged tail (the missing mask on the
# last tile of a Triton kernel, turned into a skipped tile): K=80 loses its last 16 columns.
WRONG_TAIL = """
import torch

BLOCK_K = 32

def run(A, B):
    M, K = A.shape
    acc = torch.zeros(M, B.shape[0], dtype=torch.float32, device=A.device)
    for t in range(K // BLOCK_K):
        k0 = t * BLOCK_K
        acc += A[:, k0:k0 + BLOCK_K].float() @ B[:, k0:k0 + BLOCK_K].float().t()
    return acc.to(torch.float16)
"""

# Returns the fp32 accumulator without the final cast to the output dtype.
WRONG_DTYPE = """
import torch

def run(A, B):
    return A.float() @ B.float().t()
"""


def make(gen: Any) -> Family:
    workloads = [Workload(NAME, {"M": m}, {"A": {"type": "random"}, "B": {"type": "random"}})
                 for m in (1, 7, 33)]
    return Family("gemm", [GEMM], workloads, [
        Solution(f"{NAME}_py", NAME, OK),
        Solution(f"{NAME}_k_tail_dropped", NAME, WRONG_TAIL, "INCORRECT_NUMERICAL",
                 "the K loop skips the last partial 32-wide tile (K=80: columns 64..79 ignored)"),
        Solution(f"{NAME}_fp32_out", NAME, WRONG_DTYPE, "INCORRECT_DTYPE",
                 "returns the fp32 accumulator instead of casting C to float16"),
    ])
