"""gqa_paged: grouped-query attention over a paged KV cache, decode and causal prefill.

Mirrors the public gqa_paged_decode_h32_kv8_d128_ps1 and gqa_paged_prefill_causal_h32_kv8_d128_ps1
(same inputs, outputs, order, dtypes and constraints; lse is the base-2 log-sum-exp; a decode
sequence with no KV gives output 0 and lse -inf; prefill's causal mask is bottom-right aligned:
query i of a sequence with qo_len q and kv_len k sees kv positions <= i + (k - q)). Shrunk:
32 query heads / 8 KV heads / head_dim 128 -> 8 / 2 / 32 (group of 4, and two KV heads so a wrong
query-to-KV head mapping shows). Page size 1 as in the public ps1 definitions; kv_indptr,
kv_indices and qo_indptr come from one safetensors file per workload (tensor_key picks each),
sm_scale is a scalar, q and the caches are random, and the caches hold more pages than the
indices use, as in the captured workloads.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..spec import Family, Solution, Workload, const, definition, tensor, var

H, KV, D = 8, 2, 32
SCALE = 1.0 / math.sqrt(D)
DECODE = f"gqa_paged_decode_h{H}_kv{KV}_d{D}_ps1"
PREFILL = f"gqa_paged_prefill_causal_h{H}_kv{KV}_d{D}_ps1"

_CACHE = {"k_cache": tensor(["num_pages", "page_size", "num_kv_heads", "head_dim"], "bfloat16"),
          "v_cache": tensor(["num_pages", "page_size", "num_kv_heads", "head_dim"], "bfloat16")}
_SCALE_IN = {"sm_scale": tensor(None, "float32", "Softmax scale. Default is (1/sqrt(head_dim)).")}
_KV_IDX = {"kv_indptr": tensor(["len_indptr"], "int32", "KV page offsets for each sequence."),
           "kv_indices": tensor(["num_kv_indices"], "int32", "Page IDs for KV cache lookups.")}
_HEADS = {"num_qo_heads": const(H), "num_kv_heads": const(KV), "head_dim": const(D),
          "page_size": const(1)}

DECODE_DEF = definition(
    DECODE, "gqa_paged",
    f"Batched grouped-query attention decode over a paged KV cache (page size 1), {H} query "
    f"heads sharing {KV} KV heads, head_dim {D} (mini-dataset).",
    {"batch_size": var("Total number of query tokens."), **_HEADS, "num_pages": var(),
     "len_indptr": var("Length of kv_indptr array."),
     "num_kv_indices": var("Total number of KV page indices.")},
    {"q": tensor(["batch_size", "num_qo_heads", "head_dim"], "bfloat16"), **_CACHE, **_KV_IDX,
     **_SCALE_IN},
    {"output": tensor(["batch_size", "num_qo_heads", "head_dim"], "bfloat16"),
     "lse": tensor(["batch_size", "num_qo_heads"], "float32",
                   "The 2-based log-sum-exp of attention logits.")},
    f"""
    import math

    import torch


    @torch.no_grad()
    def run(q, k_cache, v_cache, kv_indptr, kv_indices, sm_scale):
        batch_size, num_qo_heads, head_dim = q.shape
        num_pages, page_size, num_kv_heads, _ = k_cache.shape
        assert (num_qo_heads, num_kv_heads, head_dim, page_size) == ({H}, {KV}, {D}, 1)
        assert kv_indptr.shape[0] == batch_size + 1
        assert kv_indices.shape[0] == int(kv_indptr[-1].item())

        # Query head h reads KV head h // group: expand the KV heads once, in float32.
        group = num_qo_heads // num_kv_heads
        keys = k_cache[:, 0].to(torch.float32).repeat_interleave(group, dim=1)  # [P, H, D]
        values = v_cache[:, 0].to(torch.float32).repeat_interleave(group, dim=1)

        output = torch.zeros((batch_size, num_qo_heads, head_dim), dtype=torch.bfloat16,
                             device=q.device)
        lse = torch.full((batch_size, num_qo_heads), float("-inf"), dtype=torch.float32,
                         device=q.device)
        for b in range(batch_size):
            start, end = int(kv_indptr[b].item()), int(kv_indptr[b + 1].item())
            if start >= end:  # no KV: output stays 0, lse -inf
                continue
            pages = kv_indices[start:end].to(torch.long)
            k, v = keys[pages], values[pages]  # [T, H, D]
            logits = torch.einsum("hd,thd->ht", q[b].to(torch.float32), k) * sm_scale
            lse[b] = torch.logsumexp(logits, dim=-1) / math.log(2.0)
            probs = torch.softmax(logits, dim=-1)
            output[b] = torch.einsum("ht,thd->hd", probs, v).to(torch.bfloat16)
        return output, lse
    """,
    constraints=["len_indptr == batch_size + 1", "num_kv_indices == kv_indptr[-1].item()"])

PREFILL_DEF = definition(
    PREFILL, "gqa_paged",
    f"Batched grouped-query attention prefill over a paged KV cache (page size 1), causal "
    f"(bottom-right aligned: query i of a sequence with q queries and k KV tokens sees KV "
    f"positions <= i + k - q), {H} query heads sharing {KV} KV heads, head_dim {D} (mini-dataset).",
    {**_HEADS,
     "len_indptr": var("Length of indptr arrays. Should be the same for qo_indptr and kv_indptr "
                       "(batch_size + 1)."),
     "total_q": var("Total number of query tokens."),
     "num_kv_indices": var("Total number of KV page indices."), "num_pages": var()},
    {"q": tensor(["total_q", "num_qo_heads", "head_dim"], "bfloat16"), **_CACHE,
     "qo_indptr": tensor(["len_indptr"], "int32", "Query offsets for each sequence."), **_KV_IDX,
     **_SCALE_IN},
    {"output": tensor(["total_q", "num_qo_heads", "head_dim"], "bfloat16"),
     "lse": tensor(["total_q", "num_qo_heads"], "float32",
                   "The 2-based log-sum-exp of attention logits.")},
    f"""
    import math

    import torch


    @torch.no_grad()
    def run(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, sm_scale):
        total_q, num_qo_heads, head_dim = q.shape
        num_pages, page_size, num_kv_heads, _ = k_cache.shape
        assert (num_qo_heads, num_kv_heads, head_dim, page_size) == ({H}, {KV}, {D}, 1)
        assert qo_indptr.shape == kv_indptr.shape
        assert total_q == int(qo_indptr[-1].item())
        assert kv_indices.shape[0] == int(kv_indptr[-1].item())

        group = num_qo_heads // num_kv_heads
        keys = k_cache[:, 0].to(torch.float32).repeat_interleave(group, dim=1)  # [P, H, D]
        values = v_cache[:, 0].to(torch.float32).repeat_interleave(group, dim=1)

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
            pages = kv_indices[ks:ke].to(torch.long)
            k, v = keys[pages], values[pages]  # [n_kv, H, D]
            logits = torch.einsum("qhd,thd->qht", q[qs:qe].to(torch.float32), k) * sm_scale
            # The queries are the last n_q tokens of the sequence: query i sits at KV position
            # i + (n_kv - n_q) and sees everything up to and including it.
            q_pos = torch.arange(n_q, device=q.device)[:, None] + (n_kv - n_q)
            visible = torch.arange(n_kv, device=q.device)[None, :] <= q_pos  # [n_q, n_kv]
            logits = logits.masked_fill(~visible[:, None, :], float("-inf"))
            lse[qs:qe] = torch.logsumexp(logits, dim=-1) / math.log(2.0)
            probs = torch.softmax(logits, dim=-1)
            output[qs:qe] = torch.einsum("qht,thd->qhd", probs, v).to(torch.bfloat16)
        return output, lse
    """,
    constraints=["total_q == qo_indptr[-1].item()", "num_kv_indices == kv_indptr[-1].item()"])

# What a FlashAttention/FlashInfer kernel does, in torch: KV walked in tiles of BLOCK_KV with an
# online softmax in the exp2 domain (running max m, running sum l, rescaled accumulator), fp32
# throughout, query heads grouped per KV head instead of expanding K and V.
FLASH = """
import math

import torch

BLOCK_KV = 8
LOG2E = 1.4426950408889634


def attend(q, k, v, scale, last_visible=None):
    \"\"\"q [n, KV, G, D], k [T, KV, D], v [T, KV, Dv] (fp32). last_visible [n]: the last KV
    position each query may see (None: all). Returns out [n, KV, G, Dv], lse2 [n, KV, G].\"\"\"
    n, num_kv, g, _ = q.shape
    T = k.shape[0]
    dev = q.device
    m = torch.full((n, num_kv, g), float("-inf"), device=dev)
    l = torch.zeros((n, num_kv, g), device=dev)
    acc = torch.zeros((n, num_kv, g, v.shape[-1]), device=dev)
    qs = q * (scale * LOG2E)
    for t0 in range(0, T, BLOCK_KV):
        kt, vt = k[t0:t0 + BLOCK_KV], v[t0:t0 + BLOCK_KV]
        s = torch.einsum("nkgd,tkd->nkgt", qs, kt)
        if last_visible is not None:
            pos = torch.arange(t0, t0 + kt.shape[0], device=dev)
            hidden = pos[None, :] > last_visible[:, None]  # [n, t]
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

# Decode, destination-passing: writes output and lse in place.
DECODE_BODY = """

def run(q, k_cache, v_cache, kv_indptr, kv_indices, sm_scale, output, lse):
    batch_size, num_heads, head_dim = q.shape
    num_kv = k_cache.shape[2]
    group = num_heads // num_kv
    scale = float(sm_scale)
    for b in range(batch_size):
        start, end = int(kv_indptr[b]), int(kv_indptr[b + 1])
        pages = PAGES
        k = k_cache[pages, 0].float()  # [T, KV, D]
        v = v_cache[pages, 0].float()
        qb = QHEADS
        out, l2 = attend(qb, k, v, scale)
        output[b] = OUTHEADS.to(output.dtype)
        lse[b] = LSEHEADS
"""

GROUPED = {"QHEADS": "q[b].float().view(1, num_kv, group, head_dim)",
           "OUTHEADS": "out.reshape(num_heads, head_dim)",
           "LSEHEADS": "l2.reshape(num_heads) * LSE_UNIT"}
# The interleaved mapping (query head h -> KV head h % num_kv), as if the KV heads had been
# expanded with .repeat instead of .repeat_interleave.
INTERLEAVED = {"QHEADS": "q[b].float().view(1, group, num_kv, head_dim).transpose(1, 2)",
               "OUTHEADS": "out.transpose(1, 2).reshape(num_heads, head_dim)",
               "LSEHEADS": "l2.transpose(1, 2).reshape(num_heads) * LSE_UNIT"}
PAGES_OK = "kv_indices[start:end].long()"
# Treats the page table as the identity: the sequence's pages taken as start..end-1.
PAGES_CONTIGUOUS = "torch.arange(start, end, device=q.device)"


def _src(body: str, **subst: str) -> str:
    """FLASH plus ``body`` with its upper-case placeholders filled (values may hold more)."""
    while True:
        filled = body
        for key, value in subst.items():
            filled = filled.replace(key, value)
        if filled == body:
            return FLASH + body
        body = filled


BASE2 = "1.0"  # lse stays in base 2
# Natural-log lse (what torch.logsumexp returns) where base 2 is asked for: log2(x) * ln(2).
NATURAL = "0.6931471805599453"

DECODE_OK = _src(DECODE_BODY, PAGES=PAGES_OK, **GROUPED, LSE_UNIT=BASE2)
DECODE_MODULO = _src(DECODE_BODY, PAGES=PAGES_OK, **INTERLEAVED, LSE_UNIT=BASE2)
DECODE_NAT_LSE = _src(DECODE_BODY, PAGES=PAGES_OK, **GROUPED, LSE_UNIT=NATURAL)
DECODE_NO_PAGES = _src(DECODE_BODY, PAGES=PAGES_CONTIGUOUS, **GROUPED, LSE_UNIT=BASE2)

# Prefill, returning (output, lse).
PREFILL_BODY = """

def run(q, k_cache, v_cache, qo_indptr, kv_indptr, kv_indices, sm_scale):
    total_q, num_heads, head_dim = q.shape
    num_kv = k_cache.shape[2]
    group = num_heads // num_kv
    scale = float(sm_scale)
    output = torch.zeros((total_q, num_heads, head_dim), dtype=torch.bfloat16, device=q.device)
    lse = torch.full((total_q, num_heads), float("-inf"), dtype=torch.float32, device=q.device)
    for b in range(qo_indptr.shape[0] - 1):
        qs, qe = int(qo_indptr[b]), int(qo_indptr[b + 1])
        start, end = int(kv_indptr[b]), int(kv_indptr[b + 1])
        n_q, n_kv = qe - qs, end - start
        if n_q == 0:
            continue
        pages = PAGES
        k = k_cache[pages, 0].float()
        v = v_cache[pages, 0].float()
        qb = q[qs:qe].float().view(n_q, num_kv, group, head_dim)
        last = LAST
        out, l2 = attend(qb, k, v, scale, last)
        output[qs:qe] = out.reshape(n_q, num_heads, head_dim).to(torch.bfloat16)
        lse[qs:qe] = l2.reshape(n_q, num_heads)
    return output, lse
"""
LAST_OK = "torch.arange(n_q, device=q.device) + (n_kv - n_q)"
# Top-left aligned mask (query i sees KV 0..i), right only when there is no cached prefix.
LAST_TOP_LEFT = "torch.arange(n_q, device=q.device)"

PREFILL_OK = _src(PREFILL_BODY, PAGES=PAGES_OK, LAST=LAST_OK)
PREFILL_TOP_LEFT = _src(PREFILL_BODY, PAGES=PAGES_OK, LAST=LAST_TOP_LEFT)
PREFILL_NO_PAGES = _src(PREFILL_BODY, PAGES=PAGES_CONTIGUOUS, LAST=LAST_OK)


def _indptr(lens: list[int]) -> torch.Tensor:
    out = [0]
    for n in lens:
        out.append(out[-1] + n)
    return torch.tensor(out, dtype=torch.int32)


def _pages(gen: torch.Generator, num_pages: int, lens: list[int]) -> torch.Tensor:
    """Distinct pages drawn from the whole cache, each sequence's in allocation order: never the
    identity, so a kernel that ignores kv_indices reads other pages."""
    n = sum(lens)
    pages = torch.randperm(num_pages, generator=gen)[:n].to(torch.int32)
    assert not torch.equal(pages.long(), torch.arange(n)), "page table is the identity"
    return pages


def _decode(gen: torch.Generator, lens: list[int], num_pages: int) -> Workload:
    file = f"decode_b{len(lens)}_{sum(lens)}.safetensors"
    spec = {"type": "safetensors", "file": file}
    return Workload(
        DECODE, {"batch_size": len(lens), "num_pages": num_pages, "len_indptr": len(lens) + 1,
                 "num_kv_indices": sum(lens)},
        {"q": {"type": "random"}, "k_cache": {"type": "random"}, "v_cache": {"type": "random"},
         "kv_indptr": {**spec, "tensor_key": "kv_indptr"},
         "kv_indices": {**spec, "tensor_key": "kv_indices"},
         "sm_scale": {"type": "scalar", "value": SCALE}},
        {file: {"kv_indptr": _indptr(lens), "kv_indices": _pages(gen, num_pages, lens)}})


def _prefill(gen: torch.Generator, q_lens: list[int], prefix: list[int],
             num_pages: int) -> Workload:
    kv_lens = [q + p for q, p in zip(q_lens, prefix)]
    file = f"prefill_b{len(q_lens)}_{sum(q_lens)}_{sum(kv_lens)}.safetensors"
    spec = {"type": "safetensors", "file": file}
    return Workload(
        PREFILL, {"len_indptr": len(q_lens) + 1, "total_q": sum(q_lens),
                  "num_kv_indices": sum(kv_lens), "num_pages": num_pages},
        {"q": {"type": "random"}, "k_cache": {"type": "random"}, "v_cache": {"type": "random"},
         "qo_indptr": {**spec, "tensor_key": "qo_indptr"},
         "kv_indptr": {**spec, "tensor_key": "kv_indptr"},
         "kv_indices": {**spec, "tensor_key": "kv_indices"},
         "sm_scale": {"type": "scalar", "value": SCALE}},
        {file: {"qo_indptr": _indptr(q_lens), "kv_indptr": _indptr(kv_lens),
                "kv_indices": _pages(gen, num_pages, kv_lens)}})


def make(gen: Any) -> Family:
    workloads = [
        _decode(gen, [1], 6),                       # one sequence of one token
        _decode(gen, [37], 64),                     # one sequence, several KV tiles plus a tail
        _decode(gen, [3, 0, 17, 1, 9], 48),         # an empty sequence among others
        _decode(gen, [21, 5, 40, 2, 13, 8, 1, 30, 11], 700),  # irregular batch, big cache
        # Every prefill workload has a sequence with a cached prefix (kv_len > qo_len), where a
        # top-left mask differs; one query against a long prefix is the decode-like case.
        _prefill(gen, [1], [9], 16),
        _prefill(gen, [4, 0, 6], [0, 5, 5], 40),    # no prefix, no new queries, prefix
        _prefill(gen, [1, 7, 3, 1, 12, 2], [5, 0, 9, 2, 3, 0], 300),
    ]
    return Family("gqa_paged", [DECODE_DEF, PREFILL_DEF], workloads, [
        Solution(f"{DECODE}_py", DECODE, DECODE_OK, dps=True),
        Solution(f"{DECODE}_kv_head_modulo", DECODE, DECODE_MODULO, "INCORRECT_NUMERICAL",
                 "maps query head h to KV head h % num_kv_heads instead of h // group", dps=True),
        Solution(f"{DECODE}_natural_lse", DECODE, DECODE_NAT_LSE, "INCORRECT_NUMERICAL",
                 "returns the natural-log log-sum-exp where base 2 is defined", dps=True),
        Solution(f"{DECODE}_ignores_kv_indices", DECODE, DECODE_NO_PAGES, "INCORRECT_NUMERICAL",
                 "reads pages kv_indptr[b]..kv_indptr[b+1]-1 directly, ignoring kv_indices",
                 dps=True),
        Solution(f"{PREFILL}_py", PREFILL, PREFILL_OK),
        Solution(f"{PREFILL}_causal_top_left", PREFILL, PREFILL_TOP_LEFT, "INCORRECT_NUMERICAL",
                 "aligns the causal mask top-left (query i sees KV 0..i), ignoring the cached "
                 "prefix kv_len - qo_len"),
        Solution(f"{PREFILL}_ignores_kv_indices", PREFILL, PREFILL_NO_PAGES,
                 "INCORRECT_NUMERICAL",
                 "reads pages kv_indptr[b]..kv_indptr[b+1]-1 directly, ignoring kv_indices"),
    ])
