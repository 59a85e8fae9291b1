"""rmsnorm: RMSNorm and fused add + RMSNorm (public: rmsnorm_h*/fused_add_rmsnorm_h*, bf16, eps
1e-6; all inputs random there). Hidden size 64 here."""

from __future__ import annotations

from typing import Any

from ..spec import Family, Solution, Workload, const, definition, tensor, var

H = 64

RMSNORM = definition(
    f"rmsnorm_h{H}", "rmsnorm",
    f"Root Mean Square Normalization, hidden_size={H}, eps 1e-6 (mini-dataset).",
    {"batch_size": var(), "hidden_size": const(H)},
    {"hidden_states": tensor(["batch_size", "hidden_size"], "bfloat16"),
     "weight": tensor(["hidden_size"], "bfloat16")},
    {"output": tensor(["batch_size", "hidden_size"], "bfloat16")},
    f"""
    import torch

    @torch.no_grad()
    def run(hidden_states, weight):
        assert hidden_states.shape[-1] == {H}
        x = hidden_states.to(torch.float32)
        inv_rms = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + 1e-6)
        return ((x * inv_rms) * weight.to(torch.float32)).to(hidden_states.dtype)
    """)

FUSED = definition(
    f"fused_add_rmsnorm_h{H}", "rmsnorm",
    f"residual + hidden_states, then RMSNorm; hidden_size={H}, eps 1e-6 (mini-dataset).",
    {"batch_size": var(), "hidden_size": const(H)},
    {"hidden_states": tensor(["batch_size", "hidden_size"], "bfloat16"),
     "residual": tensor(["batch_size", "hidden_size"], "bfloat16"),
     "weight": tensor(["hidden_size"], "bfloat16")},
    {"output": tensor(["batch_size", "hidden_size"], "bfloat16")},
    f"""
    import torch

    @torch.no_grad()
    def run(hidden_states, residual, weight):
        assert hidden_states.shape[-1] == {H}
        x = hidden_states.to(torch.float32) + residual.to(torch.float32)
        inv_rms = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + 1e-6)
        return ((x * inv_rms) * weight.to(torch.float32)).to(hidden_states.dtype)
    """)

OK = """
import torch

def run(hidden_states, weight):
    x = hidden_states.float()
    y = x / torch.sqrt(x.square().mean(-1, keepdim=True) + 1e-6)
    return (y * weight.float()).to(torch.bfloat16)
"""

# Forgets the square root's epsilon and normalises by the mean absolute value: plausible, wrong.
WRONG = """
import torch

def run(hidden_states, weight):
    x = hidden_states.float()
    y = x / x.abs().mean(-1, keepdim=True)
    return (y * weight.float()).to(torch.bfloat16)
"""

FUSED_OK = """
import torch

def run(hidden_states, residual, weight, output):
    x = hidden_states.float() + residual.float()
    y = x * torch.rsqrt(x.square().mean(-1, keepdim=True) + 1e-6)
    output.copy_((y * weight.float()).to(output.dtype))
"""

# Drops the residual: right shape and dtype, wrong values.
FUSED_WRONG = """
import torch

def run(hidden_states, residual, weight, output):
    x = hidden_states.float()
    y = x * torch.rsqrt(x.square().mean(-1, keepdim=True) + 1e-6)
    output.copy_((y * weight.float()).to(output.dtype))
"""


def make(gen: Any) -> Family:
    workloads = [Workload(d["name"], {"batch_size": b}) for d in (RMSNORM, FUSED) for b in (1, 7, 33)]
    return Family("rmsnorm", [RMSNORM, FUSED], workloads, [
        Solution(f"rmsnorm_h{H}_py", RMSNORM["name"], OK),
        Solution(f"rmsnorm_h{H}_mean_abs", RMSNORM["name"], WRONG, "INCORRECT_NUMERICAL",
                 "normalises by the mean absolute value, not the root mean square"),
        Solution(f"fused_add_rmsnorm_h{H}_py", FUSED["name"], FUSED_OK, dps=True),
        Solution(f"fused_add_rmsnorm_h{H}_no_residual", FUSED["name"], FUSED_WRONG,
                 "INCORRECT_NUMERICAL", "ignores the residual", dps=True),
    ])
