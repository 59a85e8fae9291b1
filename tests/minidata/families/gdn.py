"""gdn: Gated Delta Net decode and prefill, grouped value heads, k-last state [.., HV, V, K].

Mirrors the public ``gdn_decode_qk4_v8_d128_k_last`` and ``gdn_prefill_qk4_v8_d128_k_last``
(Qwen3-Next linear attention at TP=4). Shrunk: 2 q/k heads, 4 v heads (the same 1:2 grouping),
head size 16. Semantics kept: g = exp(-exp(A_log) * softplus(a + dt_bias)), beta = sigmoid(b),
per token S <- g*S; S <- S + beta * (v - S k) k^T; o = scale * S q, value head h reading q/k head
h // (HV / HQ); prefill runs each sequence of ``cu_seqlens`` from its own initial state.

Input kinds as in the public workloads: every tensor (q, k, v, state, A_log, a, dt_bias, b, and
cu_seqlens for prefill) from safetensors, ``scale`` a scalar. The blobs hold values shaped like the
captured ones: q and k L2-normalised per head (the model normalises them before the kernel; the
reference itself does not), A_log = log(U(1, 16)), dt_bias = softplus^-1(dt) with dt log-uniform
in [1e-3, 1e-1] (Mamba-style initialisation), so the recurrence stays bounded over a sequence.
"""

from __future__ import annotations

import math
from typing import Any

from ..spec import Family, Solution, Workload, const, definition, tensor, var

HQ, HV, D = 2, 4, 16
SCALE = 1.0 / math.sqrt(D)
DECODE = f"gdn_decode_qk{HQ}_v{HV}_d{D}_k_last"
PREFILL = f"gdn_prefill_qk{HQ}_v{HV}_d{D}_k_last"

_GATES = {
    "A_log": tensor(["num_v_heads"], "float32",
                    "Log decay rate: g = exp(-exp(A_log) * softplus(a + dt_bias))."),
    "dt_bias": tensor(["num_v_heads"], "float32", "Added to a before the softplus."),
}

DECODE_DEF = definition(
    DECODE, "gdn",
    f"Gated Delta Net decode, one token per sequence, {HQ} q/k heads, {HV} v heads, head size "
    f"{D}, k-last state [B, HV, V, K] (mini-dataset).",
    {"batch_size": var(), "seq_len": const(1), "num_q_heads": const(HQ), "num_k_heads": const(HQ),
     "num_v_heads": const(HV), "head_size": const(D)},
    {"q": tensor(["batch_size", "seq_len", "num_q_heads", "head_size"], "bfloat16"),
     "k": tensor(["batch_size", "seq_len", "num_k_heads", "head_size"], "bfloat16"),
     "v": tensor(["batch_size", "seq_len", "num_v_heads", "head_size"], "bfloat16"),
     "state": {**tensor(["batch_size", "num_v_heads", "head_size", "head_size"], "float32",
                        "Recurrent state, k-last [B, HV, V, K]."), "optional": True},
     "A_log": _GATES["A_log"],
     "a": tensor(["batch_size", "seq_len", "num_v_heads"], "bfloat16"),
     "dt_bias": _GATES["dt_bias"],
     "b": tensor(["batch_size", "seq_len", "num_v_heads"], "bfloat16", "beta = sigmoid(b)."),
     "scale": tensor(None, "float32", "Output scale; 0 means 1/sqrt(head_size).")},
    {"output": tensor(["batch_size", "seq_len", "num_v_heads", "head_size"], "bfloat16"),
     "new_state": tensor(["batch_size", "num_v_heads", "head_size", "head_size"], "float32",
                         "Updated state, k-last [B, HV, V, K].")},
    f"""
    import math

    import torch
    import torch.nn.functional as F

    @torch.no_grad()
    def run(q, k, v, state, A_log, a, dt_bias, b, scale):
        B, T, HQ, K = q.shape
        HV, V = v.shape[2], v.shape[3]
        assert T == 1 and HQ == {HQ} and k.shape[2] == {HQ} and HV == {HV} and K == V == {D}
        if scale is None or scale == 0.0:
            scale = 1.0 / math.sqrt(K)
        group = HV // HQ
        out = torch.empty(B, HV, V, dtype=torch.float32, device=q.device)
        new_state = torch.empty(B, HV, V, K, dtype=torch.float32, device=q.device)
        for i in range(B):
            for h in range(HV):
                qh = q[i, 0, h // group].float()
                kh = k[i, 0, h // group].float()
                vh = v[i, 0, h].float()
                g = torch.exp(-torch.exp(A_log[h].float())
                              * F.softplus(a[i, 0, h].float() + dt_bias[h].float()))
                beta = torch.sigmoid(b[i, 0, h].float())
                s = torch.zeros(V, K, device=q.device) if state is None else state[i, h].float()
                s = g * s                                   # [V, K]
                predicted = s @ kh                          # [V]
                s = s + torch.outer(beta * (vh - predicted), kh)
                out[i, h] = scale * (s @ qh)
                new_state[i, h] = s
        return out.unsqueeze(1).to(torch.bfloat16), new_state
    """,
    constraints=["num_v_heads >= num_q_heads", "num_v_heads % num_q_heads == 0",
                 "num_k_heads == num_q_heads"])

PREFILL_DEF = definition(
    PREFILL, "gdn",
    f"Gated Delta Net prefill over variable-length sequences (cu_seqlens), {HQ} q/k heads, {HV} v "
    f"heads, head size {D}, k-last state [N, HV, V, K] (mini-dataset).",
    {"total_seq_len": var(), "num_seqs": var(), "num_q_heads": const(HQ),
     "num_k_heads": const(HQ), "num_v_heads": const(HV), "head_size": const(D),
     "len_cu_seqlens": var("num_seqs + 1")},
    {"q": tensor(["total_seq_len", "num_q_heads", "head_size"], "bfloat16"),
     "k": tensor(["total_seq_len", "num_k_heads", "head_size"], "bfloat16"),
     "v": tensor(["total_seq_len", "num_v_heads", "head_size"], "bfloat16"),
     "state": {**tensor(["num_seqs", "num_v_heads", "head_size", "head_size"], "float32",
                        "Initial state per sequence, k-last [N, HV, V, K]."), "optional": True},
     "A_log": _GATES["A_log"],
     "a": tensor(["total_seq_len", "num_v_heads"], "bfloat16"),
     "dt_bias": _GATES["dt_bias"],
     "b": tensor(["total_seq_len", "num_v_heads"], "bfloat16", "beta = sigmoid(b)."),
     "cu_seqlens": tensor(["len_cu_seqlens"], "int64", "Sequence boundaries, from 0."),
     "scale": tensor(None, "float32", "Output scale; 0 means 1/sqrt(head_size).")},
    {"output": tensor(["total_seq_len", "num_v_heads", "head_size"], "bfloat16"),
     "new_state": tensor(["num_seqs", "num_v_heads", "head_size", "head_size"], "float32",
                         "Final state per sequence, k-last [N, HV, V, K].")},
    f"""
    import math

    import torch
    import torch.nn.functional as F

    @torch.no_grad()
    def run(q, k, v, state, A_log, a, dt_bias, b, cu_seqlens, scale):
        T, HQ, K = q.shape
        HV, V = v.shape[1], v.shape[2]
        N = cu_seqlens.shape[0] - 1
        assert HQ == {HQ} and k.shape[1] == {HQ} and HV == {HV} and K == V == {D}
        if scale is None or scale == 0.0:
            scale = 1.0 / math.sqrt(K)
        group = HV // HQ
        g = torch.exp(-torch.exp(A_log.float()) * F.softplus(a.float() + dt_bias.float()))  # [T, HV]
        beta = torch.sigmoid(b.float())                                                   # [T, HV]
        out = torch.zeros(T, HV, V, dtype=torch.float32, device=q.device)
        new_state = torch.zeros(N, HV, V, K, dtype=torch.float32, device=q.device)
        for n in range(N):
            start, end = int(cu_seqlens[n]), int(cu_seqlens[n + 1])
            for h in range(HV):
                s = torch.zeros(V, K, device=q.device) if state is None else state[n, h].float()
                for t in range(start, end):
                    qt, kt = q[t, h // group].float(), k[t, h // group].float()
                    s = g[t, h] * s
                    s = s + torch.outer(beta[t, h] * (v[t, h].float() - s @ kt), kt)
                    out[t, h] = scale * (s @ qt)
                new_state[n, h] = s
        return out.to(torch.bfloat16), new_state
    """,
    constraints=["len_cu_seqlens == num_seqs + 1", "total_seq_len == cu_seqlens[-1].item()"])

# All sequences and heads at once, destination-passing, fp32: the shape of a fused decode kernel.
DECODE_OK = """
import math
import torch

def run(q, k, v, state, A_log, a, dt_bias, b, scale, output, new_state):
    B, _, HQ, K = q.shape
    HV = v.shape[2]
    if not scale:
        scale = 1.0 / math.sqrt(K)
    r = HV // HQ
    qh = q[:, 0].float()[:, :, None, :].expand(B, HQ, r, K).reshape(B, HV, K)
    kh = k[:, 0].float()[:, :, None, :].expand(B, HQ, r, K).reshape(B, HV, K)
    x = a[:, 0].float() + dt_bias.float()
    softplus = torch.where(x > 20, x, torch.log1p(torch.exp(x)))
    decay = torch.exp(-torch.exp(A_log.float()) * softplus)             # [B, HV]
    beta = 1.0 / (1.0 + torch.exp(-b[:, 0].float()))
    S = state.float() * decay[..., None, None]                           # [B, HV, V, K]
    err = v[:, 0].float() - torch.einsum("bhvk,bhk->bhv", S, kh)
    S = S + (beta[..., None] * err)[..., None] * kh[:, :, None, :]
    new_state.copy_(S)
    output.copy_((scale * torch.einsum("bhvk,bhk->bhv", S, qh))[:, None].to(output.dtype))
"""

# Expands q/k heads with repeat (head h reads h % HQ) instead of repeat_interleave (h // 2).
DECODE_WRONG_HEADS = DECODE_OK.replace(
    'qh = q[:, 0].float()[:, :, None, :].expand(B, HQ, r, K).reshape(B, HV, K)',
    'qh = q[:, 0].float().repeat(1, r, 1)').replace(
    'kh = k[:, 0].float()[:, :, None, :].expand(B, HQ, r, K).reshape(B, HV, K)',
    'kh = k[:, 0].float().repeat(1, r, 1)')

# Reads and writes the state as v-last [B, HV, K, V] while the contract is k-last [.., V, K].
DECODE_WRONG_LAYOUT = DECODE_OK.replace(
    "S = state.float() * decay[..., None, None]",
    "S = state.float().transpose(-1, -2) * decay[..., None, None]")
assert DECODE_OK not in (DECODE_WRONG_HEADS, DECODE_WRONG_LAYOUT)

# Recurrent over each sequence, all heads per step (a fused-recurrent prefill kernel), fp32.
PREFILL_OK = """
import math
import torch

def run(q, k, v, state, A_log, a, dt_bias, b, cu_seqlens, scale):
    T, HQ, K = q.shape
    HV = v.shape[1]
    if not scale:
        scale = 1.0 / math.sqrt(K)
    r = HV // HQ
    qh = q.float().repeat_interleave(r, dim=1)                           # [T, HV, K]
    kh = k.float().repeat_interleave(r, dim=1)
    vh = v.float()
    decay = torch.exp(-torch.exp(A_log.float()) * torch.nn.functional.softplus(a.float() + dt_bias.float()))
    beta = torch.sigmoid(b.float())
    bounds = cu_seqlens.tolist()
    out = torch.empty(T, HV, K, device=q.device)
    final = torch.empty(len(bounds) - 1, HV, K, K, device=q.device)
    for n in range(len(bounds) - 1):
        S = state[n].float().clone()                                     # [HV, V, K]
        for t in range(bounds[n], bounds[n + 1]):
            S = S * decay[t][:, None, None]
            pred = (S * kh[t][:, None, :]).sum(-1)                       # [HV, V]
            S = S + (beta[t][:, None] * (vh[t] - pred))[:, :, None] * kh[t][:, None, :]
            out[t] = scale * (S * qh[t][:, None, :]).sum(-1)
        final[n] = S
    return out.to(torch.bfloat16), final
"""

# Reads the output from the state before this token's delta update (after the decay only).
PREFILL_WRONG_READ_BEFORE = PREFILL_OK.replace(
    "            S = S + (beta[t][:, None] * (vh[t] - pred))[:, :, None] * kh[t][:, None, :]\n"
    "            out[t] = scale * (S * qh[t][:, None, :]).sum(-1)\n",
    "            out[t] = scale * (S * qh[t][:, None, :]).sum(-1)\n"
    "            S = S + (beta[t][:, None] * (vh[t] - pred))[:, :, None] * kh[t][:, None, :]\n")

# Applies the decay after the delta update (the prediction S k uses the undecayed state).
PREFILL_WRONG_DECAY_LATE = PREFILL_OK.replace(
    "            S = S * decay[t][:, None, None]\n"
    "            pred = (S * kh[t][:, None, :]).sum(-1)                       # [HV, V]\n"
    "            S = S + (beta[t][:, None] * (vh[t] - pred))[:, :, None] * kh[t][:, None, :]\n",
    "            pred = (S * kh[t][:, None, :]).sum(-1)                       # [HV, V]\n"
    "            S = S + (beta[t][:, None] * (vh[t] - pred))[:, :, None] * kh[t][:, None, :]\n"
    "            S = S * decay[t][:, None, None]\n")
assert PREFILL_OK not in (PREFILL_WRONG_READ_BEFORE, PREFILL_WRONG_DECAY_LATE)


def _l2(x: Any) -> Any:
    return x / x.norm(dim=-1, keepdim=True)


def _gates(gen: Any) -> dict[str, Any]:
    import torch

    A_log = torch.log(1.0 + 15.0 * torch.rand(HV, generator=gen))
    dt = torch.exp(math.log(1e-3) + (math.log(1e-1) - math.log(1e-3)) * torch.rand(HV, generator=gen))
    return {"A_log": A_log, "dt_bias": torch.log(torch.expm1(dt))}


def _workload(name: str, axes: dict[str, int], blob: dict[str, Any], file: str) -> Workload:
    inputs = {k: {"type": "safetensors", "file": file, "tensor_key": k} for k in blob}
    inputs["scale"] = {"type": "scalar", "value": SCALE}
    return Workload(name, axes, inputs, {file: blob})


def _decode_workloads(gen: Any) -> list[Workload]:
    import torch

    bf = torch.bfloat16
    out = []
    for B in (1, 5, 12):
        blob = {"q": _l2(torch.randn(B, 1, HQ, D, generator=gen)).to(bf),
                "k": _l2(torch.randn(B, 1, HQ, D, generator=gen)).to(bf),
                "v": torch.randn(B, 1, HV, D, generator=gen).to(bf),
                "state": torch.randn(B, HV, D, D, generator=gen),
                "a": torch.randn(B, 1, HV, generator=gen).to(bf),
                "b": torch.randn(B, 1, HV, generator=gen).to(bf),
                **_gates(gen)}
        out.append(_workload(DECODE, {"batch_size": B}, blob, f"decode_b{B}.safetensors"))
    return out


def _prefill_workloads(gen: Any) -> list[Workload]:
    import torch

    bf = torch.bfloat16
    out = []
    # One sequence; three with a length-1 one; four of irregular lengths.
    for lens in ([7], [1, 9, 20], [5, 1, 12, 3]):
        T, N = sum(lens), len(lens)
        cu = torch.tensor([0] + lens, dtype=torch.int64).cumsum(0)
        blob = {"q": _l2(torch.randn(T, HQ, D, generator=gen)).to(bf),
                "k": _l2(torch.randn(T, HQ, D, generator=gen)).to(bf),
                "v": torch.randn(T, HV, D, generator=gen).to(bf),
                "state": torch.randn(N, HV, D, D, generator=gen),
                "a": torch.randn(T, HV, generator=gen).to(bf),
                "b": torch.randn(T, HV, generator=gen).to(bf),
                "cu_seqlens": cu, **_gates(gen)}
        out.append(_workload(PREFILL, {"total_seq_len": T, "num_seqs": N, "len_cu_seqlens": N + 1},
                             blob, f"prefill_t{T}_n{N}.safetensors"))
    return out


def make(gen: Any) -> Family:
    return Family("gdn", [DECODE_DEF, PREFILL_DEF], _decode_workloads(gen) + _prefill_workloads(gen), [
        Solution(f"{DECODE}_py", DECODE, DECODE_OK, dps=True),
        Solution(f"{DECODE}_head_modulo", DECODE, DECODE_WRONG_HEADS, "INCORRECT_NUMERICAL",
                 "maps value head h to q/k head h % num_q_heads instead of h // (HV / HQ)",
                 dps=True),
        Solution(f"{DECODE}_v_last_state", DECODE, DECODE_WRONG_LAYOUT, "INCORRECT_NUMERICAL",
                 "treats the k-last state [.., V, K] as v-last [.., K, V]", dps=True),
        Solution(f"{PREFILL}_py", PREFILL, PREFILL_OK),
        Solution(f"{PREFILL}_output_before_update", PREFILL, PREFILL_WRONG_READ_BEFORE,
                 "INCORRECT_NUMERICAL",
                 "computes each token's output from the state before its delta update"),
        Solution(f"{PREFILL}_decay_after_update", PREFILL, PREFILL_WRONG_DECAY_LATE,
                 "INCORRECT_NUMERICAL",
                 "applies the decay g after the delta-rule update instead of before"),
    ])
