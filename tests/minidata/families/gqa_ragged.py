"""gqa_ragged: grouped-query attention prefill over ragged (variable-length) Q/K/V, causal.

Mirrors the public gqa_ragged_prefill_causal_h32_kv8_d128 (same inputs q, k, v, qo_indptr,
kv_indptr, sm_scale; outputs output and lse, the base-2 log-sum-exp; causal mask bottom-right
aligned: query i of a sequence with qo_len q and kv_len k sees kv positions <= i + (k - q)).
Shrunk: 32 query heads / 8 KV heads / head_dim 128 -> 8 / 2 / 32. As in the public workloads,
qo_indptr and kv_indptr come from one safetensors file per workload, sm_scale is a scalar and
q/k/v are random. The captured workloads all have qo_len == kv_len; one workload here also has
cached prefixes (kv_len > qo_len) and a sequence without queries, which the definition allows.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..spec import Family, Solution, Workload, const, definition, tensor, var

H, KV, D = 8, 2, 32
SCALE = 1.0 / math.sqrt(D)
NAME = f"gqa_ragged_prefill_causal_h{H}_kv{KV}_d{D}"

DEF = definition(
    NAME, "gqa_ragged",
    f"Batched grouped-query attention prefill over ragged Q/K/V, causal (bottom-right aligned: "
    f"query i of a sequence with q queries and k KV tokens sees KV positions <= i + k - q), {H} "
    f"query heads sharing {KV} KV heads, head_dim {D} (mini-dataset).",
    {"num_qo_heads": const(H), "num_kv_heads": const(KV), "head_dim": const(D),
     "len_indptr": var("Length of indptr arrays. Should be the same for qo_indptr and kv_indptr "
                       "(batch_size + 1)."),
     "total_q": var("Total number of query tokens."),
     "total_kv": var("Total key-value tokens across all sequences.")},
    {"q": tensor(["total_q", "num_qo_heads", "head_dim"], "bfloat16"),
     "k": tensor(["total_kv", "num_kv_heads", "head_dim"], "bfloat16"),
     "v": tensor(["total_kv", "num_kv_heads", "head_dim"], "bfloat16"),
     "qo_indptr": tensor(["len_indptr"], "int32", "Query offsets for each sequence."),
     "kv_indptr": tensor(["len_indptr"], "int32", "Key-value offsets for each sequence."),
     "sm_scale": tensor(None, "float32", "Softmax scale. Default is (1/sqrt(head_dim)).")},
    {"output": tensor(["total_q", "num_qo_heads", "head_dim"], "bfloat16",
                      "Attention output tensor."),
     "lse": tensor(["total_q", "num_qo_heads"], "float32",
                   "The 2-based log-sum-exp of attention logits.")},
    f"""
    import math

    import torch


    @torch.no_grad()
    def run(q, k, v, qo_indptr, kv_indptr, sm_scale):
        total_q, num_qo_heads, head_dim = q.shape
        total_kv, num_kv_heads, _ = k.shape
        assert (num_qo_heads, num_kv_heads, head_dim) == ({H}, {KV}, {D})
        assert qo_indptr.shape == kv_indptr.shape
        assert total_q == int(qo_indptr[-1].item())
        assert total_kv == int(kv_indptr[-1].item())

        # Query head h reads KV head h // group.
        group = num_qo_heads // num_kv_heads
        keys = k.to(torch.float32).repeat_interleave(group, dim=1)  # [total_kv, H, D]
        values = v.to(torch.float32).repeat_interleave(group, dim=1)

        output = torch.zeros((total_q, num_qo_heads, head_dim), dtype=torch.bfloat16,
                             device=q.device)
        lse = torch.full((total_q, num_qo_heads), float("-inf"), dtype=torch.float32,
                         device=q.device)
        for b in range(qo_indptr.shape[0] - 1):
            qs, qe = int(qo_indptr[b].item()), int(qo_indptr[b + 1].item())
            ks, ke = int(kv_indptr[b].item()), int(kv_indptr[b + 1].item())
            n_q, n_kv = qe - qs, ke - ks
            if n_q <= 0 or n_kv <= 0:
                continue
            logits = torch.einsum("qhd,thd->qht", q[qs:qe].to(torch.float32), keys[ks:ke])
            logits = logits * sm_scale
            # Query i is the (n_kv - n_q + i)-th token of its sequence and sees up to itself.
            q_pos = torch.arange(n_q, device=q.device)[:, None] + (n_kv - n_q)
            visible = torch.arange(n_kv, device=q.device)[None, :] <= q_pos  # [n_q, n_kv]
            logits = logits.masked_fill(~visible[:, None, :], float("-inf"))
            lse[qs:qe] = torch.logsumexp(logits, dim=-1) / math.log(2.0)
            probs = torch.softmax(logits, dim=-1)
            output[qs:qe] = torch.einsum("qht,thd->qhd", probs, values[ks:ke]).to(torch.bfloat16)
        return output, lse
    """,
    constraints=["total_q == qo_indptr[-1].item()", "total_kv == kv_indptr[-1].item()"])

# A FlashAttention-style kernel in torch: KV tiles of BLOCK_KV, online softmax in the exp2
# domain, fp32 state, query heads grouped per KV head.
FLASH = """
import torch

BLOCK_KV = 8
LOG2E = 1.4426950408889634


def attend(q, k, v, scale, last_visible=None):
    \"\"\"q [n, KV, G, D], k [T, KV, D], v [T, KV, Dv] (fp32); last_visible [n]: the last KV
    position each query may see (None: all). Returns out [n, KV, G, Dv], lse2 [n, KV, G].\"\"\"
    n, num_kv, g, _ = q.shape
    dev = q.device
    m = torch.full((n, num_kv, g), float("-inf"), device=dev)
    l = torch.zeros((n, num_kv, g), device=dev)
    acc = torch.zeros((n, num_kv, g, v.shape[-1]), device=dev)
    qs = q * (scale * LOG2E)
    for t0 in range(0, k.shape[0], BLOCK_KV):
        kt, vt = k[t0:t0 + BLOCK_KV], v[t0:t0 + BLOCK_KV]
        s = torch.einsum("nkgd,tkd->nkgt", qs, kt)
        if last_visible is not None:
            pos = torch.arange(t0, t0 + kt.shape[0], device=dev)
            hidden = pos[None, :] > last_visible[:, None]
            s = s.masked_fill(hidden[:, None, None, :], float("-inf"))
        m_new = torch.maximum(m, s.amax(-1))
        m_ref = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
        alpha = torch.exp2(m - m_ref)
        p = torch.exp2(s - m_ref[..., None])
        l = l * alpha + p.sum(-1)
        acc = acc * alpha[..., None] + torch.einsum("nkgt,tkd->nkgd", p, vt)
        m = m_new
    seen = l > 0
    lse = torch.where(seen, m + torch.log2(l.clamp_min(1e-30)), torch.full_like(m, float("-inf")))
    out = torch.where(seen[..., None], acc / l.clamp_min(1e-30)[..., None], torch.zeros_like(acc))
    return out, lse
"""

# Destination-passing: writes output and lse (every row, including rows of no sequence).
BODY = """

def run(q, k, v, qo_indptr, kv_indptr, sm_scale, output, lse):
    total_q, num_heads, head_dim = q.shape
    num_kv = k.shape[1]
    group = num_heads // num_kv
    scale = float(sm_scale)
    output.zero_()
    lse.fill_(float("-inf"))
    for b in range(qo_indptr.shape[0] - 1):
        qs, qe = int(qo_indptr[b]), int(qo_indptr[b + 1])
        ks, ke = int(kv_indptr[b]), int(kv_indptr[b + 1])
        n_q, n_kv = qe - qs, ke - ks
        if n_q == 0 or n_kv == 0:
            continue
        qb = QHEADS
        last = LAST
        out, l2 = attend(qb, k[ks:ke].float(), v[ks:ke].float(), scale, last)
        output[qs:qe] = OUT.to(output.dtype)
        lse[qs:qe] = LSE
"""

OK_PARTS = {"QHEADS": "q[qs:qe].float().view(n_q, num_kv, group, head_dim)",
            "LAST": "torch.arange(n_q, device=q.device) + (n_kv - n_q)",
            "OUT": "out.reshape(n_q, num_heads, head_dim)",
            "LSE": "l2.reshape(n_q, num_heads)"}


def _src(**change: str) -> str:
    body = BODY
    for key, value in {**OK_PARTS, **change}.items():
        body = body.replace(key, value)
    return FLASH + body


OK = _src()
# No causal mask at all: every query sees its whole sequence.
NO_MASK = _src(LAST="None")
# Interleaved head mapping (query head h -> KV head h % num_kv), as after K.repeat(1, group, 1).
MODULO = _src(QHEADS="q[qs:qe].float().view(n_q, group, num_kv, head_dim).transpose(1, 2)",
              OUT="out.transpose(1, 2).reshape(n_q, num_heads, head_dim)",
              LSE="l2.transpose(1, 2).reshape(n_q, num_heads)")
# Returns instead of writing, with lse kept in the output's dtype (bfloat16).
LSE_BF16 = FLASH + """

def run(q, k, v, qo_indptr, kv_indptr, sm_scale):
    total_q, num_heads, head_dim = q.shape
    num_kv = k.shape[1]
    group = num_heads // num_kv
    output = torch.zeros_like(q)
    lse = torch.full((total_q, num_heads), float("-inf"), dtype=q.dtype, device=q.device)
    for b in range(qo_indptr.shape[0] - 1):
        qs, qe = int(qo_indptr[b]), int(qo_indptr[b + 1])
        ks, ke = int(kv_indptr[b]), int(kv_indptr[b + 1])
        n_q, n_kv = qe - qs, ke - ks
        if n_q == 0 or n_kv == 0:
            continue
        qb = q[qs:qe].float().view(n_q, num_kv, group, head_dim)
        last = torch.arange(n_q, device=q.device) + (n_kv - n_q)
        out, l2 = attend(qb, k[ks:ke].float(), v[ks:ke].float(), float(sm_scale), last)
        output[qs:qe] = out.reshape(n_q, num_heads, head_dim).to(q.dtype)
        lse[qs:qe] = l2.reshape(n_q, num_heads).to(q.dtype)
    return output, lse
"""


def _indptr(lens: list[int]) -> torch.Tensor:
    out = [0]
    for n in lens:
        out.append(out[-1] + n)
    return torch.tensor(out, dtype=torch.int32)


def _workload(q_lens: list[int], kv_lens: list[int] | None = None) -> Workload:
    kv_lens = kv_lens or q_lens
    file = f"ragged_b{len(q_lens)}_{sum(q_lens)}_{sum(kv_lens)}.safetensors"
    spec = {"type": "safetensors", "file": file}
    return Workload(
        NAME, {"len_indptr": len(q_lens) + 1, "total_q": sum(q_lens), "total_kv": sum(kv_lens)},
        {"q": {"type": "random"}, "k": {"type": "random"}, "v": {"type": "random"},
         "qo_indptr": {**spec, "tensor_key": "qo_indptr"},
         "kv_indptr": {**spec, "tensor_key": "kv_indptr"},
         "sm_scale": {"type": "scalar", "value": SCALE}},
        {file: {"qo_indptr": _indptr(q_lens), "kv_indptr": _indptr(kv_lens)}})


def make(gen: Any) -> Family:
    # Every workload holds a sequence of >= 2 queries, where a missing causal mask shows.
    workloads = [
        _workload([13]),                            # one sequence
        _workload([5, 1, 17, 9]),                   # a one-token sequence among others
        _workload([3, 0, 6], [8, 4, 6]),            # cached prefixes and a query-less sequence
        _workload([2, 33, 1, 8, 4, 19, 3]),         # irregular batch
    ]
    return Family("gqa_ragged", [DEF], workloads, [
        Solution(f"{NAME}_py", NAME, OK, dps=True),
        Solution(f"{NAME}_no_causal_mask", NAME, NO_MASK, "INCORRECT_NUMERICAL",
                 "applies no causal mask: queries see later tokens of their sequence", dps=True),
        Solution(f"{NAME}_kv_head_modulo", NAME, MODULO, "INCORRECT_NUMERICAL",
                 "maps query head h to KV head h % num_kv_heads instead of h // group", dps=True),
        Solution(f"{NAME}_lse_bf16", NAME, LSE_BF16, "INCORRECT_DTYPE",
                 "returns lse in bfloat16 (the output's dtype) instead of float32"),
    ])
