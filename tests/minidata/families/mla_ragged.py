"""mla_ragged: DeepSeek multi-head latent attention prefill over ragged Q/K/V, causal, in the
non-absorbed form (per-head keys of width qk_nope + qk_rope, values of width v_head_dim).

Mirrors the public mla_ragged_prefill_causal_h16_qk192_vo128 (inputs q, k, v, qo_indptr,
kv_indptr, sm_scale; outputs output (bf16) and lse (fp32, base-2 log-sum-exp); as many KV heads
as query heads; causal mask bottom-right aligned: query i of a sequence with qo_len q and kv_len k
sees kv positions <= i + (k - q)). Shrunk with the same pattern: 16 heads, qk 192 (128 + 64),
vo 128 -> 4 heads, qk 48 (32 + 16), vo 32. The public dataset has no mla_ragged workloads; these
follow the other ragged and MLA families: qo_indptr and kv_indptr from one safetensors file per
workload, sm_scale a scalar (DeepSeek's YaRN-scaled scale, mscale^2 / sqrt(qk_dim)), q/k/v random,
qo_len == kv_len ("total prefill, no prefix cache" in the public description).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..spec import Family, Solution, Workload, const, definition, tensor, var

H, QK, VO = 4, 48, 32
# DeepSeek-V3's softmax scale rule at this qk_dim: mscale = 0.1 * ln(40) + 1, squared.
SCALE = (0.1 * math.log(40.0) + 1.0) ** 2 / math.sqrt(QK)
NAME = f"mla_ragged_prefill_causal_h{H}_qk{QK}_vo{VO}"

DEF = definition(
    NAME, "mla_ragged",
    f"Batched multi-head latent attention prefill over ragged Q/K/V, causal (bottom-right "
    f"aligned), {H} heads, qk_dim {QK} (nope {QK - 16} + rope 16), vo_dim {VO} (mini-dataset).",
    {"num_qo_heads": const(H), "num_kv_heads": const(H, "Equal to num_qo_heads."),
     "qk_dim": const(QK, "qk_nope_head_dim + qk_rope_head_dim."),
     "vo_dim": const(VO, "Value/output head dimension."),
     "total_q": var("Total number of query tokens across all sequences."),
     "total_kv": var("Total number of key-value tokens across all sequences."),
     "len_indptr": var("Length of indptr arrays (batch_size + 1).")},
    {"q": tensor(["total_q", "num_qo_heads", "qk_dim"], "bfloat16"),
     "k": tensor(["total_kv", "num_kv_heads", "qk_dim"], "bfloat16"),
     "v": tensor(["total_kv", "num_kv_heads", "vo_dim"], "bfloat16"),
     "qo_indptr": tensor(["len_indptr"], "int32", "Query offsets for each sequence."),
     "kv_indptr": tensor(["len_indptr"], "int32", "Key-value offsets for each sequence."),
     "sm_scale": tensor(None, "float32", "Softmax scale. Default is 1/sqrt(qk_dim).")},
    {"output": tensor(["total_q", "num_qo_heads", "vo_dim"], "bfloat16",
                      "Attention output tensor."),
     "lse": tensor(["total_q", "num_qo_heads"], "float32",
                   "The 2-based log-sum-exp of attention logits.")},
    f"""
    import math

    import torch


    @torch.no_grad()
    def run(q, k, v, qo_indptr, kv_indptr, sm_scale):
        total_q, num_qo_heads, qk_dim = q.shape
        total_kv, num_kv_heads, vo_dim = v.shape
        assert (num_qo_heads, num_kv_heads, qk_dim, vo_dim) == ({H}, {H}, {QK}, {VO})
        assert qo_indptr.shape == kv_indptr.shape
        assert total_q == int(qo_indptr[-1].item())
        assert total_kv == int(kv_indptr[-1].item())

        output = torch.zeros((total_q, num_qo_heads, vo_dim), dtype=torch.bfloat16,
                             device=q.device)
        lse = torch.full((total_q, num_qo_heads), float("-inf"), dtype=torch.float32,
                         device=q.device)
        for b in range(qo_indptr.shape[0] - 1):
            qs, qe = int(qo_indptr[b].item()), int(qo_indptr[b + 1].item())
            ks, ke = int(kv_indptr[b].item()), int(kv_indptr[b + 1].item())
            n_q, n_kv = qe - qs, ke - ks
            if n_q <= 0 or n_kv <= 0:
                continue
            # One KV head per query head: no grouping.
            logits = torch.einsum("qhd,thd->qht", q[qs:qe].to(torch.float32),
                                  k[ks:ke].to(torch.float32)) * sm_scale
            q_pos = torch.arange(n_q, device=q.device)[:, None] + (n_kv - n_q)
            visible = torch.arange(n_kv, device=q.device)[None, :] <= q_pos
            logits = logits.masked_fill(~visible[:, None, :], float("-inf"))
            lse[qs:qe] = torch.logsumexp(logits, dim=-1) / math.log(2.0)
            probs = torch.softmax(logits, dim=-1)
            output[qs:qe] = torch.einsum("qht,thd->qhd", probs,
                                         v[ks:ke].to(torch.float32)).to(torch.bfloat16)
        return output, lse
    """,
    constraints=["total_q == qo_indptr[-1].item()", "total_kv == kv_indptr[-1].item()"])

# A FlashAttention-style kernel in torch, one program per (sequence, head): KV in tiles of
# BLOCK_KV, online softmax in the exp2 domain, fp32 state, returning (output, lse).
SRC = """
import math

import torch

BLOCK_KV = 8
LOG2E = 1.4426950408889634


def head_attention(q, k, v, scale, last_visible):
    \"\"\"q [n, D], k [T, D], v [T, Dv] fp32; last_visible [n]. Returns out [n, Dv], lse2 [n].\"\"\"
    n = q.shape[0]
    dev = q.device
    m = torch.full((n,), float("-inf"), device=dev)
    l = torch.zeros((n,), device=dev)
    acc = torch.zeros((n, v.shape[-1]), device=dev)
    qs = q * (scale * LOG2E)
    for t0 in range(0, k.shape[0], BLOCK_KV):
        kt, vt = k[t0:t0 + BLOCK_KV], v[t0:t0 + BLOCK_KV]
        s = qs @ kt.t()  # [n, t]
        pos = torch.arange(t0, t0 + kt.shape[0], device=dev)
        s = s.masked_fill(pos[None, :] > last_visible[:, None], float("-inf"))
        m_new = torch.maximum(m, s.amax(-1))
        m_ref = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
        alpha = torch.exp2(m - m_ref)
        p = torch.exp2(s - m_ref[:, None])
        l = l * alpha + p.sum(-1)
        acc = acc * alpha[:, None] + p @ vt
        m = m_new
    seen = l > 0
    lse = torch.where(seen, m + torch.log2(l.clamp_min(1e-30)), torch.full_like(m, float("-inf")))
    out = torch.where(seen[:, None], acc / l.clamp_min(1e-30)[:, None], torch.zeros_like(acc))
    return out, lse


def run(q, k, v, qo_indptr, kv_indptr, sm_scale):
    total_q, num_heads, qk_dim = q.shape
    vo_dim = v.shape[-1]
    scale = SCALE
    output = torch.zeros((total_q, num_heads, vo_dim), dtype=torch.bfloat16, device=q.device)
    lse = torch.full((total_q, num_heads), float("-inf"), dtype=torch.float32, device=q.device)
    for b in range(qo_indptr.shape[0] - 1):
        qs, qe = int(qo_indptr[b]), int(qo_indptr[b + 1])
        ks, ke = int(kv_indptr[b]), int(kv_indptr[b + 1])
        n_q, n_kv = qe - qs, ke - ks
        if n_q == 0 or n_kv == 0:
            continue
        last = LAST
        for h in range(num_heads):
            out, l2 = head_attention(q[qs:qe, h].float(), k[ks:ke, h].float(),
                                     v[ks:ke, h].float(), scale, last)
            output[qs:qe, h] = out.to(torch.bfloat16)
            lse[qs:qe, h] = l2
    return output, LSE_OUT
"""
OK_PARTS = {"SCALE": "float(sm_scale)",
            "LAST": "torch.arange(n_q, device=q.device) + (n_kv - n_q)",
            "LSE_OUT": "lse"}


def _src(**change: str) -> str:
    src = SRC
    for key, value in {**OK_PARTS, **change}.items():
        src = src.replace(key, value)
    return src


OK = _src()
# `<` where `<=` belongs, the other way round: each query also sees the token after it.
OFF_BY_ONE = _src(LAST="torch.arange(n_q, device=q.device) + (n_kv - n_q) + 1")
# Ignores sm_scale and uses the textbook 1/sqrt(qk_dim), missing DeepSeek's YaRN mscale^2.
DEFAULT_SCALE = _src(SCALE="1.0 / math.sqrt(qk_dim)")
# lse laid out head-major [num_heads, total_q], as some kernels keep it internally.
LSE_HEAD_MAJOR = _src(LSE_OUT="lse.t().contiguous()")


def _indptr(lens: list[int]) -> torch.Tensor:
    out = [0]
    for n in lens:
        out.append(out[-1] + n)
    return torch.tensor(out, dtype=torch.int32)


def _workload(lens: list[int]) -> Workload:
    # total_q != num_heads (4) everywhere, so a transposed lse always has the wrong shape.
    assert sum(lens) != H
    file = f"ragged_b{len(lens)}_{sum(lens)}.safetensors"
    spec = {"type": "safetensors", "file": file}
    return Workload(
        NAME, {"total_q": sum(lens), "total_kv": sum(lens), "len_indptr": len(lens) + 1},
        {"q": {"type": "random"}, "k": {"type": "random"}, "v": {"type": "random"},
         "qo_indptr": {**spec, "tensor_key": "qo_indptr"},
         "kv_indptr": {**spec, "tensor_key": "kv_indptr"},
         "sm_scale": {"type": "scalar", "value": SCALE}},
        {file: {"qo_indptr": _indptr(lens), "kv_indptr": _indptr(lens)}})


def make(gen: Any) -> Family:
    # Every workload has a sequence of >= 2 tokens, where a causal off-by-one shows.
    workloads = [
        _workload([11]),                         # one sequence
        _workload([1, 6, 23, 2]),                # a one-token sequence among others
        _workload([3, 1, 9, 1, 15, 2, 7]),       # irregular batch
    ]
    return Family("mla_ragged", [DEF], workloads, [
        Solution(f"{NAME}_py", NAME, OK),
        Solution(f"{NAME}_causal_off_by_one", NAME, OFF_BY_ONE, "INCORRECT_NUMERICAL",
                 "causal mask lets each query see the next token too (< vs <= slip)"),
        Solution(f"{NAME}_default_scale", NAME, DEFAULT_SCALE, "INCORRECT_NUMERICAL",
                 "ignores sm_scale and uses 1/sqrt(qk_dim), dropping the YaRN mscale^2 factor"),
        Solution(f"{NAME}_lse_head_major", NAME, LSE_HEAD_MAJOR, "INCORRECT_SHAPE",
                 "returns lse as [num_qo_heads, total_q] instead of [total_q, num_qo_heads]"),
    ])
