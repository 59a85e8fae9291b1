"""dsa_paged: DeepSeek-V3.2 sparse attention (DSA) and its fp8 top-k indexer.

Mirrors the public ``dsa_sparse_attention_h16_ckv512_kpe64_topk2048_ps64`` (and its ps1 twin: the
same operator, since the indices are token-level either way) and
``dsa_topk_indexer_fp8_h64_d128_topk2048_ps64``. Shrunk: 4 query heads, compressed-KV dim 32,
rope dim 8, top-k 16, page size 4 for the attention; 16 indexer heads of dim 16 (so 20 bytes per
token with the fp32 scale), top-k 16, page size 4 for the indexer.

Input kinds as in the public workloads: q/caches random, ``sparse_indices`` from safetensors,
``sm_scale`` a scalar; for the indexer q and weights random, ``seq_lens`` and ``block_table`` from
safetensors. One deliberate difference: the public indexer workloads make the packed fp8 key cache
``random`` (int8 noise, so the fp32 scale bytes decode to NaN/inf/denormals and the reference's
scores are garbage); here it is a safetensors blob holding a validly quantised cache.
"""

from __future__ import annotations

import math
from typing import Any

from ..spec import Family, Solution, Workload, const, definition, tensor, var

# --------------------------------------------------------------------------- sparse attention
H, CKV, KPE, TOPK, PS = 4, 32, 8, 16, 4
ATTN = f"dsa_sparse_attention_h{H}_ckv{CKV}_kpe{KPE}_topk{TOPK}_ps{PS}"
# The public scale is 1/sqrt(qk_nope_head_dim + rope dim) before absorption (1/sqrt(128 + 64));
# the mini model's analogue is 1/sqrt(8 + 8).
SM_SCALE = 1.0 / math.sqrt(8 + KPE)

ATTN_DEF = definition(
    ATTN, "dsa_paged",
    f"DSA sparse attention over top-{TOPK} selected tokens of a paged MLA cache (compressed KV "
    f"{CKV} + rope {KPE}, {H} heads, page size {PS}); works for prefill and decode (mini-dataset).",
    {"num_tokens": var("Number of query tokens."),
     "num_qo_heads": const(H), "head_dim_ckv": const(CKV), "head_dim_kpe": const(KPE),
     "page_size": const(PS), "topk": const(TOPK),
     "num_pages": var("Total number of allocated pages in the KV cache.")},
    {"q_nope": tensor(["num_tokens", "num_qo_heads", "head_dim_ckv"], "bfloat16"),
     "q_pe": tensor(["num_tokens", "num_qo_heads", "head_dim_kpe"], "bfloat16"),
     "ckv_cache": tensor(["num_pages", "page_size", "head_dim_ckv"], "bfloat16"),
     "kpe_cache": tensor(["num_pages", "page_size", "head_dim_kpe"], "bfloat16"),
     "sparse_indices": tensor(["num_tokens", "topk"], "int32",
                              "Selected token slots (page * page_size + offset); -1 is padding."),
     "sm_scale": tensor(None, "float32", "Softmax scale.")},
    {"output": tensor(["num_tokens", "num_qo_heads", "head_dim_ckv"], "bfloat16"),
     "lse": tensor(["num_tokens", "num_qo_heads"], "float32",
                   "Base-2 log-sum-exp of the scaled logits; -inf for a token with no index.")},
    f"""
    import math

    import torch

    @torch.no_grad()
    def run(q_nope, q_pe, ckv_cache, kpe_cache, sparse_indices, sm_scale):
        T, H, D = q_nope.shape
        assert H == {H} and D == {CKV} and q_pe.shape[-1] == {KPE}
        assert ckv_cache.shape[1] == {PS} and sparse_indices.shape == (T, {TOPK})
        # Token-level view of the paged caches: slot = page * page_size + offset.
        ckv = ckv_cache.reshape(-1, D).float()
        kpe = kpe_cache.reshape(-1, kpe_cache.shape[-1]).float()
        out = torch.zeros(T, H, D, dtype=torch.float32, device=q_nope.device)
        lse = torch.full((T, H), -math.inf, dtype=torch.float32, device=q_nope.device)
        for t in range(T):
            slots = sparse_indices[t]
            slots = slots[slots >= 0].long()
            if slots.numel() == 0:
                continue  # nothing selected: zero output, lse -inf
            logits = q_nope[t].float() @ ckv[slots].T + q_pe[t].float() @ kpe[slots].T
            logits = logits * sm_scale  # [H, n]
            lse[t] = torch.logsumexp(logits, dim=-1) / math.log(2.0)
            out[t] = torch.softmax(logits, dim=-1) @ ckv[slots]
        return out.to(torch.bfloat16), lse
    """,
    constraints=["sparse_indices.shape[0] == num_tokens", "sparse_indices.shape[-1] == topk",
                 "ckv_cache.shape[1] == page_size"])

# Kernel-shaped: all tokens at once, padding masked to -inf, base-2 online-softmax bookkeeping
# (scale folded with log2(e), exp2, running max), fp32 throughout.
ATTN_OK = """
import math
import torch

LOG2E = 1.4426950408889634

def run(q_nope, q_pe, ckv_cache, kpe_cache, sparse_indices, sm_scale):
    T, H, D = q_nope.shape
    ckv = ckv_cache.flatten(0, 1).float()
    kpe = kpe_cache.flatten(0, 1).float()
    valid = sparse_indices >= 0                               # [T, K]
    slots = sparse_indices.clamp(min=0).long()
    kc, kp = ckv[slots], kpe[slots]                           # [T, K, D], [T, K, P]
    s = torch.einsum("thd,tkd->thk", q_nope.float(), kc)
    s = s + torch.einsum("thp,tkp->thk", q_pe.float(), kp)
    s = s * (sm_scale * LOG2E)
    s = s.masked_fill(~valid[:, None, :], -math.inf)
    m = s.amax(-1, keepdim=True)
    m_safe = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    p = torch.exp2(s - m_safe)                                # 0 where masked
    l = p.sum(-1, keepdim=True)
    o = torch.einsum("thk,tkd->thd", p, kc) / l.clamp(min=1e-30)
    lse = (m_safe + torch.log2(l)).squeeze(-1)                # log2(0) = -inf for empty rows
    return o.to(torch.bfloat16), lse
"""

# Returns the natural-log LSE (torch.logsumexp as is) where the contract is base 2.
ATTN_WRONG_LN = """
import torch

def run(q_nope, q_pe, ckv_cache, kpe_cache, sparse_indices, sm_scale):
    T, H, D = q_nope.shape
    ckv = ckv_cache.flatten(0, 1).float()
    kpe = kpe_cache.flatten(0, 1).float()
    valid = sparse_indices >= 0
    slots = sparse_indices.clamp(min=0).long()
    s = torch.einsum("thd,tkd->thk", q_nope.float(), ckv[slots])
    s = (s + torch.einsum("thp,tkp->thk", q_pe.float(), kpe[slots])) * sm_scale
    s = s.masked_fill(~valid[:, None, :], float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.softmax(s, dim=-1).nan_to_num(0.0)
    o = torch.einsum("thk,tkd->thd", p, ckv[slots])
    return o.to(torch.bfloat16), lse
"""

# Gathers with the raw indices: padding (-1) wraps around to the cache's last token, which then
# takes part in the softmax of every padded row.
ATTN_WRONG_PAD = """
import math
import torch

def run(q_nope, q_pe, ckv_cache, kpe_cache, sparse_indices, sm_scale):
    ckv = ckv_cache.flatten(0, 1).float()
    kpe = kpe_cache.flatten(0, 1).float()
    slots = sparse_indices.long()
    s = torch.einsum("thd,tkd->thk", q_nope.float(), ckv[slots])
    s = (s + torch.einsum("thp,tkp->thk", q_pe.float(), kpe[slots])) * sm_scale
    lse = torch.logsumexp(s, dim=-1) / math.log(2.0)
    o = torch.einsum("thk,tkd->thd", torch.softmax(s, dim=-1), ckv[slots])
    return o.to(torch.bfloat16), lse
"""


def _sparse_indices(gen: Any, counts: list[int], num_slots: int) -> Any:
    """One row per token: ``count`` distinct valid slots in random order, then -1 padding."""
    import torch

    rows = torch.full((len(counts), TOPK), -1, dtype=torch.int32)
    for t, n in enumerate(counts):
        rows[t, :n] = torch.randperm(num_slots, generator=gen)[:n].to(torch.int32)
    return rows


def _attn_workloads(gen: Any) -> list[Workload]:
    # (num_pages, valid indices per token). Every workload has a padded row (the ATTN_WRONG_PAD
    # bug shows on each); the second has a length-1 and an empty (all -1) row.
    cases = [(8, [11]), (10, [16, 1, 0]), (13, [16, 5, 16, 9, 16, 2, 14]), (6, [16, 16, 3, 12, 7])]
    out = []
    for num_pages, counts in cases:
        file = f"sparse_indices_t{len(counts)}_p{num_pages}.safetensors"
        out.append(Workload(
            ATTN, {"num_tokens": len(counts), "num_pages": num_pages},
            {"q_nope": {"type": "random"}, "q_pe": {"type": "random"},
             "ckv_cache": {"type": "random"}, "kpe_cache": {"type": "random"},
             "sparse_indices": {"type": "safetensors", "file": file, "tensor_key": "sparse_indices"},
             "sm_scale": {"type": "scalar", "value": SM_SCALE}},
            {file: {"sparse_indices": _sparse_indices(gen, counts, num_pages * PS)}}))
    return out


# --------------------------------------------------------------------------- top-k indexer
IH, ID, IPS, ITOPK = 16, 16, 4, 16
IDS = ID + 4  # fp8 bytes + one fp32 scale per token
INDEXER = f"dsa_topk_indexer_fp8_h{IH}_d{ID}_topk{ITOPK}_ps{IPS}"

INDEXER_DEF = definition(
    INDEXER, "dsa_paged",
    f"DSA top-k indexer with fp8 keys (deep_gemm paged layout): score = sum_h w[h] * relu(q[h] . "
    f"k), top-{ITOPK} token slots per sequence through the block table; {IH} heads of dim {ID}, "
    f"page size {IPS} (mini-dataset).",
    {"batch_size": var(), "num_index_heads": const(IH), "index_head_dim": const(ID),
     "page_size": const(IPS), "topk": const(ITOPK),
     "max_num_pages": var("Maximum number of pages per sequence (block table width)."),
     "num_pages": var("Total number of allocated pages in the KV cache."),
     "kv_cache_num_heads": const(1), "head_dim_with_scale": const(IDS)},
    {"q_index_fp8": tensor(["batch_size", "num_index_heads", "index_head_dim"], "float8_e4m3fn"),
     "k_index_cache_fp8": tensor(
         ["num_pages", "page_size", "kv_cache_num_heads", "head_dim_with_scale"], "int8",
         f"Packed fp8 key cache, bytes read as uint8. Per page: page_size * {ID} fp8 values "
         f"(token-major) first, then page_size fp32 scales; the [page_size, 1, {IDS}] view does not "
         "put a token's scale next to its values."),
     "weights": tensor(["batch_size", "num_index_heads"], "float32"),
     "seq_lens": tensor(["batch_size"], "int32"),
     "block_table": tensor(["batch_size", "max_num_pages"], "int32")},
    {"topk_indices": tensor(["batch_size", "topk"], "int32",
                            "Selected global token slots (page * page_size + offset); -1 pads a "
                            "sequence shorter than topk.")},
    f"""
    import torch

    @torch.no_grad()
    def run(q_index_fp8, k_index_cache_fp8, weights, seq_lens, block_table):
        B, H, D = q_index_fp8.shape
        P, S = k_index_cache_fp8.shape[:2]
        assert H == {IH} and D == {ID} and S == {IPS}
        # Undo the per-page packing: values first, then one fp32 scale per token.
        raw = k_index_cache_fp8.view(torch.uint8).reshape(P, S * (D + 4))
        vals = raw[:, :S * D].contiguous().view(torch.float8_e4m3fn).reshape(P, S, D).float()
        scales = raw[:, S * D:].contiguous().view(torch.float32).reshape(P, S, 1)
        keys = vals * scales
        q = q_index_fp8.float()
        result = torch.full((B, {ITOPK}), -1, dtype=torch.int32, device=q.device)
        for b in range(B):
            n = int(seq_lens[b])
            if n == 0:
                continue
            pages = block_table[b, :(n + S - 1) // S].long()
            k = keys[pages].reshape(-1, D)[:n]
            score = (torch.relu(q[b] @ k.T) * weights[b][:, None]).sum(0)
            take = min({ITOPK}, n)
            pos = torch.topk(score, take).indices
            result[b, :take] = (pages[pos // S] * S + pos % S).to(torch.int32)
        return result
    """,
    constraints=["topk <= max_num_pages * page_size"])

# Batched like a kernel: dequantise, score all sequences padded to the block-table width, mask
# the tail, select, then map positions through the block table. Emits indices best-first.
INDEXER_OK = """
import torch

TOPK = 16

def dequant(cache):
    P, S, _, W = cache.shape
    D = W - 4
    flat = cache.view(torch.uint8).reshape(P, S * W)
    fp8 = flat[:, :S * D].contiguous().view(torch.float8_e4m3fn).reshape(P, S, D)
    scale = flat[:, S * D:].contiguous().view(torch.float32).reshape(P, S)
    return fp8.float() * scale[..., None]

def run(q_index_fp8, k_index_cache_fp8, weights, seq_lens, block_table):
    B = q_index_fp8.shape[0]
    S = k_index_cache_fp8.shape[1]
    keys = dequant(k_index_cache_fp8)                          # [P, S, D]
    kb = keys[block_table.long()].flatten(1, 2)                # [B, max_pages * S, D]
    logits = torch.einsum("bhd,bnd->bhn", q_index_fp8.float(), kb)
    score = torch.einsum("bhn,bh->bn", logits.clamp(min=0), weights)
    pos = torch.arange(kb.shape[1], device=kb.device)  # masks built on the inputs' device
    live = pos[None, :] < seq_lens.long()[:, None]
    score = score.masked_fill(~live, float("-inf"))
    best = torch.topk(score, TOPK, dim=1).indices               # [B, TOPK]
    slot = torch.gather(block_table.long(), 1, best // S) * S + best % S
    rank = torch.arange(TOPK, device=seq_lens.device)
    keep = rank[None, :] < seq_lens.long().clamp(max=TOPK)[:, None]
    return torch.where(keep, slot, torch.full_like(slot, -1)).to(torch.int32)
"""

# Same selection, written out per sequence and emitted in ascending slot order (what a
# radix-select kernel that compacts by position gives): a top-k's order is not part of the
# contract, so this must pass as well.
INDEXER_OK_UNORDERED = """
import torch

def run(q_index_fp8, k_index_cache_fp8, weights, seq_lens, block_table):
    B, H, D = q_index_fp8.shape
    P, S, _, W = k_index_cache_fp8.shape
    flat = k_index_cache_fp8.view(torch.uint8).reshape(P, S * W)
    k8 = flat[:, :S * D].contiguous().view(torch.float8_e4m3fn).reshape(P * S, D).float()
    ks = flat[:, S * D:].contiguous().view(torch.float32).reshape(P * S)
    out = torch.full((B, 16), -1, dtype=torch.int32, device=q_index_fp8.device)
    for b in range(B):
        n = int(seq_lens[b])
        if n <= 0:
            continue
        npages = -(-n // S)
        in_page = torch.arange(S, device=block_table.device)
        slots = (block_table[b, :npages].long()[:, None] * S + in_page).reshape(-1)[:n]
        dots = (q_index_fp8[b].float() @ k8[slots].T) * ks[slots]   # scale after the dot
        score = (weights[b][:, None] * torch.relu(dots)).sum(0)
        chosen = slots[torch.topk(score, min(16, n)).indices]
        out[b, :chosen.numel()] = torch.sort(chosen).values.to(torch.int32)
    return out
"""

# Returns positions within the sequence: never maps them through the block table.
INDEXER_WRONG_NO_TABLE = """
import torch

def run(q_index_fp8, k_index_cache_fp8, weights, seq_lens, block_table):
    B, H, D = q_index_fp8.shape
    P, S, _, W = k_index_cache_fp8.shape
    flat = k_index_cache_fp8.view(torch.uint8).reshape(P, S * W)
    k8 = flat[:, :S * D].contiguous().view(torch.float8_e4m3fn).reshape(P, S, D).float()
    ks = flat[:, S * D:].contiguous().view(torch.float32).reshape(P, S, 1)
    keys = k8 * ks
    out = torch.full((B, 16), -1, dtype=torch.int32, device=q_index_fp8.device)
    for b in range(B):
        n = int(seq_lens[b])
        if n <= 0:
            continue
        k = keys[block_table[b].long()].reshape(-1, D)[:n]
        score = (weights[b][:, None] * torch.relu(q_index_fp8[b].float() @ k.T)).sum(0)
        pos = torch.topk(score, min(16, n)).indices
        out[b, :pos.numel()] = pos.to(torch.int32)
    return out
"""

# Reads each token's 20 bytes as [16 fp8 values, fp32 scale] (the layout the [.., 1, 20] view
# suggests) instead of the per-page "all values, then all scales" packing.
INDEXER_WRONG_LAYOUT = """
import torch

def run(q_index_fp8, k_index_cache_fp8, weights, seq_lens, block_table):
    B, H, D = q_index_fp8.shape
    P, S, _, W = k_index_cache_fp8.shape
    tok = k_index_cache_fp8.view(torch.uint8).reshape(P, S, W)
    k8 = tok[..., :D].contiguous().view(torch.float8_e4m3fn).float()
    ks = tok[..., D:].contiguous().view(torch.float32)
    keys = (k8 * ks).nan_to_num(0.0, 0.0, 0.0)
    out = torch.full((B, 16), -1, dtype=torch.int32, device=q_index_fp8.device)
    for b in range(B):
        n = int(seq_lens[b])
        if n <= 0:
            continue
        pages = block_table[b, :-(-n // S)].long()
        k = keys[pages].reshape(-1, D)[:n]
        score = (weights[b][:, None] * torch.relu(q_index_fp8[b].float() @ k.T)).sum(0)
        pos = torch.topk(score, min(16, n)).indices
        out[b, :pos.numel()] = (pages[pos // S] * S + pos % S).to(torch.int32)
    return out
"""

# Drops the ReLU: heads with a negative dot product pull the score down instead of adding 0.
INDEXER_WRONG_NO_RELU = """
import torch

def run(q_index_fp8, k_index_cache_fp8, weights, seq_lens, block_table):
    B, H, D = q_index_fp8.shape
    P, S, _, W = k_index_cache_fp8.shape
    flat = k_index_cache_fp8.view(torch.uint8).reshape(P, S * W)
    k8 = flat[:, :S * D].contiguous().view(torch.float8_e4m3fn).reshape(P, S, D).float()
    ks = flat[:, S * D:].contiguous().view(torch.float32).reshape(P, S, 1)
    keys = k8 * ks
    out = torch.full((B, 16), -1, dtype=torch.int32, device=q_index_fp8.device)
    for b in range(B):
        n = int(seq_lens[b])
        if n <= 0:
            continue
        pages = block_table[b, :-(-n // S)].long()
        k = keys[pages].reshape(-1, D)[:n]
        score = weights[b] @ (q_index_fp8[b].float() @ k.T)
        pos = torch.topk(score, min(16, n)).indices
        out[b, :pos.numel()] = (pages[pos // S] * S + pos % S).to(torch.int32)
    return out
"""


def _pack_cache(gen: Any, num_pages: int) -> Any:
    """A validly quantised cache in the packed layout: per token scale = amax / 448 (e4m3 max)."""
    import torch

    k = torch.randn(num_pages, IPS, ID, generator=gen)
    scale = k.abs().amax(-1, keepdim=True) / 448.0
    fp8 = (k / scale).to(torch.float8_e4m3fn)
    vals = fp8.view(torch.uint8).reshape(num_pages, IPS * ID)
    sbytes = scale.reshape(num_pages, IPS).contiguous().view(torch.uint8).reshape(num_pages, IPS * 4)
    packed = torch.cat([vals, sbytes], dim=1).contiguous()
    return packed.view(torch.int8).reshape(num_pages, IPS, 1, IDS)


def _indexer_workloads(gen: Any) -> list[Workload]:
    import torch

    # (seq_lens, max_num_pages, num_pages). Every workload has a sequence longer than topk (so
    # the selection matters) and its pages scattered through the cache; the second has an empty
    # sequence and one shorter than topk (-1 padding).
    cases = [([37], 10, 12), ([30, 0, 7], 8, 24), ([45, 17, 16, 33, 2], 12, 40)]
    out = []
    for seq_lens, width, num_pages in cases:
        pool = torch.randperm(num_pages, generator=gen)
        table = torch.zeros(len(seq_lens), width, dtype=torch.int32)  # unused entries: page 0
        used = 0
        for b, n in enumerate(seq_lens):
            need = -(-n // IPS)
            table[b, :need] = pool[used:used + need].to(torch.int32)
            used += need
        assert used <= num_pages and width * IPS >= ITOPK
        assert any(bool((table[b, :-(-n // IPS)] != torch.arange(-(-n // IPS))).any())
                   for b, n in enumerate(seq_lens) if n > ITOPK)
        file = f"indexer_b{len(seq_lens)}_p{num_pages}.safetensors"
        blob = {"seq_lens": torch.tensor(seq_lens, dtype=torch.int32), "block_table": table,
                "k_index_cache_fp8": _pack_cache(gen, num_pages)}
        out.append(Workload(
            INDEXER, {"batch_size": len(seq_lens), "max_num_pages": width, "num_pages": num_pages},
            {"q_index_fp8": {"type": "random"}, "weights": {"type": "random"},
             **{k: {"type": "safetensors", "file": file, "tensor_key": k} for k in blob}},
            {file: blob}))
    return out


def make(gen: Any) -> Family:
    return Family("dsa_paged", [ATTN_DEF, INDEXER_DEF], _attn_workloads(gen) + _indexer_workloads(gen), [
        Solution(f"{ATTN}_py", ATTN, ATTN_OK),
        Solution(f"{ATTN}_natural_log_lse", ATTN, ATTN_WRONG_LN, "INCORRECT_NUMERICAL",
                 "returns the natural-log LSE; the contract is base 2"),
        Solution(f"{ATTN}_padding_unmasked", ATTN, ATTN_WRONG_PAD, "INCORRECT_NUMERICAL",
                 "gathers -1 padding as an index (the cache's last token joins the softmax)"),
        Solution(f"{INDEXER}_py", INDEXER, INDEXER_OK),
        Solution(f"{INDEXER}_py_slot_order", INDEXER, INDEXER_OK_UNORDERED),
        Solution(f"{INDEXER}_no_block_table", INDEXER, INDEXER_WRONG_NO_TABLE,
                 "INCORRECT_NUMERICAL",
                 "returns positions within the sequence, not slots mapped through block_table"),
        Solution(f"{INDEXER}_per_token_layout", INDEXER, INDEXER_WRONG_LAYOUT,
                 "INCORRECT_NUMERICAL",
                 "reads each token's 20 bytes as [values, scale] instead of the per-page packing"),
        Solution(f"{INDEXER}_no_relu", INDEXER, INDEXER_WRONG_NO_RELU, "INCORRECT_NUMERICAL",
                 "sums the weighted head scores without the ReLU"),
    ])
