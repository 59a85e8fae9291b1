"""silu: plain elementwise SiLU, x * sigmoid(x) -- not the gated SiLU-and-mul (public:
silu_h768/_h2880/_h14336/_h28672 in bfloat16, silu_h14336_fp8e4m3/_h28672_fp8e4m3 in float8_e4m3fn,
silu_h14336_mxfp4 in float4_e2m1; all inputs random, no public workloads). Mirrored: silu_h96
(bfloat16) and silu_h96_fp8e4m3 (fp8 in, fp8 out). hidden_size shrunk to 96.

Not mirrored: the mxfp4 variant (a packed float4 dtype the random-input generator and the
comparison cannot express elementwise). For fp8, the fused SiLU in fp16 (the public reference) and
SiLU in fp32 (what a kernel does, and this reference) give the same fp8 result for every one of
the 256 fp8 inputs, checked exhaustively, so the fp32 solution below is exact."""

from __future__ import annotations

from typing import Any

from ..spec import Family, Solution, Workload, const, definition, tensor, var

H = 96

BF16 = definition(
    f"silu_h{H}", "silu",
    f"SiLU (Swish) activation x * sigmoid(x), hidden_size={H}, bfloat16 (mini-dataset).",
    {"batch_size": var(), "hidden_size": const(H)},
    {"input": tensor(["batch_size", "hidden_size"], "bfloat16", "Input tensor")},
    {"output": tensor(["batch_size", "hidden_size"], "bfloat16")},
    f"""
    import torch

    @torch.no_grad()
    def run(input):
        assert input.shape[-1] == {H}
        x = input.to(torch.float32)
        return (x / (1.0 + torch.exp(-x))).to(input.dtype)
    """)

FP8 = definition(
    f"silu_h{H}_fp8e4m3", "silu",
    f"SiLU (Swish) activation, hidden_size={H}, float8_e4m3fn in and out (mini-dataset).",
    {"batch_size": var(), "hidden_size": const(H)},
    {"input": tensor(["batch_size", "hidden_size"], "float8_e4m3fn", "Input tensor in FP8")},
    {"output": tensor(["batch_size", "hidden_size"], "float8_e4m3fn")},
    f"""
    import torch

    @torch.no_grad()
    def run(input):
        assert input.shape[-1] == {H}
        # fp32 SiLU, one rounding to fp8 (the public reference's fused F.silu in fp16 gives the
        # same fp8 for all 256 inputs; a separately rounded fp16 sigmoid would not, at x=0.4375)
        x = input.to(torch.float32)
        return (x * torch.sigmoid(x)).to(input.dtype)
    """)

OK = """
import torch

def run(input):
    x = input.float()
    return (x * torch.sigmoid(x)).to(input.dtype)
"""

# The "quick GELU" approximation x * sigmoid(1.702 x), mistaken for SiLU.
WRONG_QUICK_GELU = """
import torch

def run(input):
    x = input.float()
    return (x * torch.sigmoid(1.702 * x)).to(input.dtype)
"""

# Writes the gate sigmoid(x) and forgets the multiplication by x.
WRONG_NO_MUL = """
import torch

def run(input, output):
    output.copy_(torch.sigmoid(input.float()).to(output.dtype))
"""

FP8_OK = """
import torch

def run(input, output):
    x = input.float()
    output.copy_((x / (1.0 + torch.exp(-x))).to(torch.float8_e4m3fn))
"""


def make(gen: Any) -> Family:
    workloads = [Workload(d["name"], {"batch_size": b}, {"input": {"type": "random"}})
                 for d in (BF16, FP8) for b in (1, 5, 40)]
    return Family("silu", [BF16, FP8], workloads, [
        Solution(f"silu_h{H}_py", BF16["name"], OK),
        Solution(f"silu_h{H}_quick_gelu", BF16["name"], WRONG_QUICK_GELU, "INCORRECT_NUMERICAL",
                 "computes x * sigmoid(1.702 x) (quick GELU), not x * sigmoid(x)"),
        Solution(f"silu_h{H}_fp8e4m3_py", FP8["name"], FP8_OK, dps=True),
        Solution(f"silu_h{H}_fp8e4m3_no_mul", FP8["name"], WRONG_NO_MUL, "INCORRECT_NUMERICAL",
                 "writes sigmoid(x), forgetting the multiplication by x", dps=True),
    ])
