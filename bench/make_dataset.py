"""Write the embedded default dataset (pytest_fib/data/default/) from the specs below.

Run from the repository root: ``python bench/make_dataset.py``. The uuids are fixed here,
so re-running rewrites byte-identical files; every file is validated with flashinfer-bench's
own models (Definition, Trace) before it is written.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "pytest_fib" / "data" / "default"

RMSNORM_REF = '''import torch


@torch.no_grad()
def run(hidden_states, weight):
    batch_size, hidden_size = hidden_states.shape
    assert hidden_size == 4096

    EPS = 1e-5

    x = hidden_states.to(torch.float32)
    inv_rms = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + EPS)
    y = (x * inv_rms) * weight.to(torch.float32)
    return y.to(hidden_states.dtype)
'''

FUSED_ADD_RMSNORM_REF = '''import torch


@torch.no_grad()
def run(hidden_states, residual, weight):
    batch_size, hidden_size = hidden_states.shape
    assert hidden_size == 4096
    assert residual.shape == hidden_states.shape

    EPS = 1e-5

    x = hidden_states.to(torch.float32) + residual.to(torch.float32)
    inv_rms = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + EPS)
    y = (x * inv_rms) * weight.to(torch.float32)
    return y.to(hidden_states.dtype)
'''

GDN_DECODE_REF = '''import math

import torch
import torch.nn.functional as F


@torch.no_grad()
def run(q, k, v, state, A_log, a, dt_bias, b, scale):
    """Gated Delta Net decode, one token, k-last state [B, HV, V, K], all math in float32.

    g     = exp(-exp(A_log) * softplus(a + dt_bias))        per (batch, v head)
    beta  = sigmoid(b)                                      per (batch, v head)
    S     = g * state                                       decay
    old_v = S @ k                                           what the state predicts for k  [V]
    S'    = S + outer(beta * (v - old_v), k)                delta-rule update             [V, K]
    out   = scale * S' @ q                                                                [V]

    Value head h reads query/key head h // (HV // HQ) (grouped value attention).
    """
    B, T, HQ, K = q.shape
    HK = k.shape[2]
    HV, V = v.shape[2], v.shape[3]
    assert T == 1
    assert HQ == 4 and HK == 4 and HV == 8
    assert K == 128 and V == 128
    assert HV % HQ == 0 and HK == HQ

    if scale is None or scale == 0.0:
        scale = 1.0 / math.sqrt(K)

    g = torch.exp(-torch.exp(A_log.float()) * F.softplus(a.float()[:, 0] + dt_bias.float()))
    beta = torch.sigmoid(b.float()[:, 0])  # [B, HV]

    q_f = q.float()[:, 0].repeat_interleave(HV // HQ, dim=1)  # [B, HV, K]
    k_f = k.float()[:, 0].repeat_interleave(HV // HK, dim=1)  # [B, HV, K]
    v_f = v.float()[:, 0]  # [B, HV, V]

    if state is None:
        s = torch.zeros(B, HV, V, K, dtype=torch.float32, device=q.device)
    else:
        s = state.float()

    s = g[:, :, None, None] * s
    old_v = (s * k_f[:, :, None, :]).sum(dim=-1)  # [B, HV, V]
    delta = beta[:, :, None] * (v_f - old_v)  # [B, HV, V]
    new_state = s + delta[:, :, :, None] * k_f[:, :, None, :]
    output = scale * (new_state * q_f[:, :, None, :]).sum(dim=-1)  # [B, HV, V]
    return output.unsqueeze(1).to(torch.bfloat16), new_state
'''

DEFINITIONS = [
    {
        "name": "rmsnorm_h4096",
        "op_type": "rmsnorm",
        "description": "Root Mean Square Normalization with hidden_size=4096 (Llama-3.1-8B). "
        "Epsilon is fixed at 1e-5.",
        "tags": ["status:verified", "model:llama-3.1-8b", "fi_api:flashinfer.norm.rmsnorm"],
        "axes": {
            "batch_size": {"type": "var", "description": "Number of tokens."},
            "hidden_size": {"type": "const", "value": 4096},
        },
        "inputs": {
            "hidden_states": {"shape": ["batch_size", "hidden_size"], "dtype": "bfloat16"},
            "weight": {"shape": ["hidden_size"], "dtype": "bfloat16"},
        },
        "outputs": {
            "output": {"shape": ["batch_size", "hidden_size"], "dtype": "bfloat16"},
        },
        "reference": RMSNORM_REF,
    },
    {
        "name": "fused_add_rmsnorm_h4096",
        "op_type": "rmsnorm",
        "description": "Fused residual add + RMSNorm with hidden_size=4096 (Llama-3.1-8B): "
        "output = rmsnorm(hidden_states + residual) * weight. Epsilon is fixed at 1e-5.",
        "tags": [
            "status:verified",
            "model:llama-3.1-8b",
            "fused",
            "fi_api:flashinfer.norm.fused_add_rmsnorm",
        ],
        "axes": {
            "batch_size": {"type": "var", "description": "Number of tokens."},
            "hidden_size": {"type": "const", "value": 4096},
        },
        "inputs": {
            "hidden_states": {"shape": ["batch_size", "hidden_size"], "dtype": "bfloat16"},
            "residual": {"shape": ["batch_size", "hidden_size"], "dtype": "bfloat16"},
            "weight": {"shape": ["hidden_size"], "dtype": "bfloat16"},
        },
        "outputs": {
            "output": {"shape": ["batch_size", "hidden_size"], "dtype": "bfloat16"},
        },
        "reference": FUSED_ADD_RMSNORM_REF,
    },
    {
        "name": "gdn_decode_qk4_v8_d128_k_last",
        "op_type": "gdn",
        "description": "Gated Delta Net decode with grouped value heads and k-last state layout "
        "[B, HV, V, K]: one token per sequence, recurrent state update. Qwen3-Next linear "
        "attention layers at TP=4 (4 q/k heads, 8 v heads, head size 128).",
        "tags": [
            "stage:decode",
            "status:verified",
            "model:qwen3-next",
            "layout:k-last",
            "fi_api:flashinfer.gdn.gated_delta_rule_decode",
            "tp:4",
        ],
        "axes": {
            "batch_size": {"type": "var", "description": "Sequences decoded concurrently."},
            "seq_len": {"type": "const", "value": 1, "description": "Always 1 for decode."},
            "num_q_heads": {"type": "const", "value": 4, "description": "Query heads (16/TP4)."},
            "num_k_heads": {"type": "const", "value": 4, "description": "Key heads (16/TP4)."},
            "num_v_heads": {"type": "const", "value": 8, "description": "Value heads (32/TP4)."},
            "head_size": {"type": "const", "value": 128, "description": "K and V head size."},
        },
        "constraints": [
            "num_v_heads >= num_q_heads",
            "num_v_heads % num_q_heads == 0",
            "num_k_heads == num_q_heads",
        ],
        "inputs": {
            "q": {
                "shape": ["batch_size", "seq_len", "num_q_heads", "head_size"],
                "dtype": "bfloat16",
                "description": "Query for the decoded token.",
            },
            "k": {
                "shape": ["batch_size", "seq_len", "num_k_heads", "head_size"],
                "dtype": "bfloat16",
                "description": "Key for the decoded token.",
            },
            "v": {
                "shape": ["batch_size", "seq_len", "num_v_heads", "head_size"],
                "dtype": "bfloat16",
                "description": "Value for the decoded token.",
            },
            "state": {
                "shape": ["batch_size", "num_v_heads", "head_size", "head_size"],
                "dtype": "float32",
                "description": "Recurrent state, k-last layout [B, HV, V, K]; None means zeros.",
                "optional": True,
            },
            "A_log": {
                "shape": ["num_v_heads"],
                "dtype": "float32",
                "description": "Log decay: g = exp(-exp(A_log) * softplus(a + dt_bias)).",
            },
            "a": {
                "shape": ["batch_size", "seq_len", "num_v_heads"],
                "dtype": "bfloat16",
                "description": "Input-dependent decay from the projection.",
            },
            "dt_bias": {
                "shape": ["num_v_heads"],
                "dtype": "float32",
                "description": "Decay bias, added to a before the softplus.",
            },
            "b": {
                "shape": ["batch_size", "seq_len", "num_v_heads"],
                "dtype": "bfloat16",
                "description": "Update gate input: beta = sigmoid(b).",
            },
            "scale": {
                "shape": None,
                "dtype": "float32",
                "description": "Output scale; 0 or None means 1/sqrt(head_size).",
            },
        },
        "outputs": {
            "output": {
                "shape": ["batch_size", "seq_len", "num_v_heads", "head_size"],
                "dtype": "bfloat16",
                "description": "Attention output, one row per value head.",
            },
            "new_state": {
                "shape": ["batch_size", "num_v_heads", "head_size", "head_size"],
                "dtype": "float32",
                "description": "Updated state, k-last layout [B, HV, V, K].",
            },
        },
        "reference": GDN_DECODE_REF,
    },
]

# Fixed uuids (uuid4, generated once). Batch sizes: the rmsnorm ones cover the launch-bound
# end (1, 7, 64) and the bandwidth-bound end (1024, 8192, 14509 = a real prefill chunk).
RMSNORM_BATCHES = {
    1: "5b0c2f7e-8d6a-4b1e-9f3c-2a7d41e8c901",
    7: "c3e1a9d4-27b5-4f08-8e6a-b9d05f13a742",
    64: "8f27d6b1-4c3e-4a95-b0d8-16e2f7a93c55",
    1024: "1d94e5c7-a0b2-4e6f-93d1-7c58b2e40f16",
    8192: "e6a5b3f0-91d8-4c27-a4e3-5f0c9d1b8a67",
    14509: "47c2f1a8-6e3d-4b90-8d15-a2e7c6f04b38",
}
FUSED_BATCHES = {
    1: "a2d7e4f9-5b1c-4e83-9a06-3f8b1c7d2e54",
    7: "6e0b9c3a-d4f2-4a17-b85e-91c3a7f6d028",
    64: "f49a1e6d-83c0-4b5f-a2d7-0e6b58c91f3a",
    1024: "0c8e3b57-f1a9-4d62-9e4b-d7a25f6c13e8",
    8192: "b5f16d2c-7a3e-4e98-81c0-4d9e2b7a5f61",
    14509: "39d0a7e2-c5b4-4f1d-a6e8-8b1f0c3d9e75",
}
GDN_BATCHES = {
    1: "7a4c9e1b-2d6f-4c83-b0a5-e9f2d83c6b17",
    8: "d1e85f3a-9b0c-4a26-8f7d-5c3b1a9e0d42",
    32: "2f6b0d94-e8a1-4c5e-97b3-a0d4c6e2f851",
    64: "95e3c1a7-4f2d-4b08-a6c9-3e7f1b5d0a28",
    256: "c80d2b6e-1a7f-4e95-bd34-f5a9e0c7d163",
    1024: "4b7e9f0c-d36a-4185-9e2b-78c1d5a3f0e9",
}
GDN_SCALE = 0.08838834764831843  # 1/sqrt(128), the value the official workloads carry


def _random(names: list[str]) -> dict[str, dict[str, object]]:
    return {n: {"type": "random"} for n in names}


def workloads() -> dict[tuple[str, str], list[dict[str, object]]]:
    out: dict[tuple[str, str], list[dict[str, object]]] = {}
    for name, batches, inputs in [
        ("rmsnorm_h4096", RMSNORM_BATCHES, ["hidden_states", "weight"]),
        ("fused_add_rmsnorm_h4096", FUSED_BATCHES, ["hidden_states", "residual", "weight"]),
    ]:
        out[("rmsnorm", name)] = [
            {
                "definition": name,
                "solution": None,
                "workload": {"uuid": uid, "axes": {"batch_size": bs}, "inputs": _random(inputs)},
                "evaluation": None,
            }
            for bs, uid in batches.items()
        ]
    gdn_random = ["q", "k", "v", "state", "A_log", "a", "dt_bias", "b"]
    name = "gdn_decode_qk4_v8_d128_k_last"
    out[("gdn", name)] = [
        {
            "definition": name,
            "solution": None,
            "workload": {
                "uuid": uid,
                "axes": {"batch_size": bs},
                "inputs": {**_random(gdn_random), "scale": {"type": "scalar", "value": GDN_SCALE}},
            },
            "evaluation": None,
        }
        for bs, uid in GDN_BATCHES.items()
    ]
    return out


def main() -> None:
    from flashinfer_bench.data import Definition, Trace

    assert math.isclose(GDN_SCALE, 1 / math.sqrt(128))
    for d in DEFINITIONS:
        Definition.model_validate(d)
        path = ROOT / "definitions" / d["op_type"] / f"{d['name']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(d, indent=2) + "\n")
        print("wrote", path.relative_to(ROOT.parent.parent.parent))
    for (op_type, name), traces in workloads().items():
        for t in traces:
            Trace.model_validate(t)
        path = ROOT / "workloads" / op_type / f"{name}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(t) + "\n" for t in traces))
        print("wrote", path.relative_to(ROOT.parent.parent.parent), len(traces), "workloads")


if __name__ == "__main__":
    main()
