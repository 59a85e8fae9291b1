"""softmax: row softmax over the last axis (public: softmax_d4 .. softmax_d27 in bfloat16 with a
``dim`` axis; softmax_d128 in float32 with a ``dim`` axis; softmax_d128256/_d151936/_d201088 in
float32 over a ``vocab_size`` axis; all inputs random, no public workloads). Mirrored by one
definition of each kind: softmax_d13 (bfloat16, an odd small dim), softmax_d64 (float32, ``dim``)
and softmax_d200 (float32, ``vocab_size`` shrunk from 128k+ to 200).

The vocabulary is kept at 200 so that the largest probability of a row of softmax(randn) stays
well above the 1e-2 absolute tolerance: an all-zeros output must fail (else NOT_DISCRIMINATIVE).
"""

from __future__ import annotations

from typing import Any

from ..spec import Family, Solution, Workload, const, definition, tensor, var


def _def(d: int, dtype: str, axis: str) -> dict[str, Any]:
    return definition(
        f"softmax_d{d}", "softmax",
        f"Softmax over the last axis ({axis}={d}), {dtype} (mini-dataset).",
        {"batch_size": var("Batch size (can include sequence dimensions)"), axis: const(d)},
        {"input": tensor(["batch_size", axis], dtype, "Input tensor")},
        {"output": tensor(["batch_size", axis], dtype, "Softmax output (probabilities)")},
        f"""
        import torch

        @torch.no_grad()
        def run(input):
            assert input.shape[-1] == {d}
            x = input.to(torch.float32)
            e = torch.exp(x - x.max(dim=-1, keepdim=True).values)
            return (e / e.sum(dim=-1, keepdim=True)).to(input.dtype)
        """)


SMALL = _def(13, "bfloat16", "dim")
MID = _def(64, "float32", "dim")
VOCAB = _def(200, "float32", "vocab_size")

# Online (single-pass) softmax as a kernel does it: running max and running sum over 32-wide
# tiles, the sum rescaled whenever the max grows; fp32 throughout.
OK = """
import torch

TILE = 32

def run(input):
    x = input.float()
    rows = x.shape[0]
    # running max and sum live on the input's device (they meet its tiles in every step)
    m = torch.full((rows, 1), float("-inf"), device=x.device)
    s = torch.zeros(rows, 1, device=x.device)
    for c0 in range(0, x.shape[1], TILE):
        t = x[:, c0:c0 + TILE]
        m_new = torch.maximum(m, t.max(dim=1, keepdim=True).values)
        s = s * torch.exp(m - m_new) + torch.exp(t - m_new).sum(dim=1, keepdim=True)
        m = m_new
    return (torch.exp(x - m) / s).to(input.dtype)
"""

# Forgets the division by the row sum: returns exp(x - max), so the largest entry is 1.
WRONG_UNNORMALISED = """
import torch

def run(input):
    x = input.float()
    return torch.exp(x - x.max(dim=-1, keepdim=True).values).to(input.dtype)
"""

# Reduces over the batch axis instead of the feature axis (a row/column-major mix-up).
WRONG_AXIS = """
import torch

def run(input):
    x = input.float()
    e = torch.exp(x - x.max(dim=0, keepdim=True).values)
    return (e / e.sum(dim=0, keepdim=True)).to(input.dtype)
"""

# Destination-passing kernel whose store grid is vocab // BLOCK (floor, not ceil): the row is
# reduced in full but the last ragged block (columns 192..199) is never written. (A wrong scale
# such as exp2 for exp is no good here: over 200 entries most errors stay under 1e-2 absolute.)
WRONG_TAIL = """
import torch

BLOCK = 64

def run(input, output):
    x = input.float()
    e = torch.exp(x - x.max(dim=-1, keepdim=True).values)
    p = e / e.sum(dim=-1, keepdim=True)
    for b in range(x.shape[1] // BLOCK):
        output[:, b * BLOCK:(b + 1) * BLOCK] = p[:, b * BLOCK:(b + 1) * BLOCK]
"""


def make(gen: Any) -> Family:
    workloads = []
    for d in (SMALL, MID, VOCAB):
        for b in (1, 6, 37):
            workloads.append(Workload(d["name"], {"batch_size": b}, {"input": {"type": "random"}}))
    sols = []
    for d in (SMALL, MID, VOCAB):
        n = d["name"]
        sols.append(Solution(f"{n}_py", n, OK))
    sols += [
        Solution(f"{SMALL['name']}_unnormalised", SMALL["name"], WRONG_UNNORMALISED,
                 "INCORRECT_NUMERICAL", "never divides by the row sum: returns exp(x - max)"),
        Solution(f"{MID['name']}_batch_axis", MID["name"], WRONG_AXIS, "INCORRECT_NUMERICAL",
                 "normalises over the batch axis instead of the last axis"),
        Solution(f"{VOCAB['name']}_tail_unwritten", VOCAB["name"], WRONG_TAIL,
                 "INCORRECT_NUMERICAL", "store grid is vocab // 64: the last 8 columns are never "
                 "written", dps=True),
    ]
    return Family("softmax", [SMALL, MID, VOCAB], workloads, sols)
