"""mla_paged: multi-head latent attention (DeepSeek, absorbed form) over a paged latent cache,
decode and causal prefill.

Mirrors the public mla_paged_decode_h16_ckv512_kpe64_ps1 and
mla_paged_prefill_causal_h16_ckv512_kpe64_ps1: inputs q_nope, q_pe, ckv_cache, kpe_cache,
(qo_indptr,) kv_indptr, kv_indices, sm_scale in that order; outputs output (bf16, the attention
of the compressed cache itself: values are ckv) and lse (fp32, base-2 log-sum-exp); logits are
q_nope . ckv + q_pe . kpe, times sm_scale; prefill's causal mask is bottom-right aligned (query i
of a sequence with qo_len q and kv_len k sees kv positions <= i + (k - q)). Shrunk: 16 heads,
ckv 512, kpe 64 -> 4 heads, ckv 64, kpe 16; page size 1 as in the public ps1 definitions. As in
the captured workloads: sm_scale is a scalar (DeepSeek-V3's 0.1352..., its YaRN-scaled softmax
scale), the indptr/indices arrays come from ONE safetensors file per workload (tensor_key picks
each; the file also carries sm_scale as a tensor no input reads, as the public files do), the
caches hold many more pages than the indices use, and a sequence's pages are runs of consecutive
page ids scattered over the cache. Two workloads of each definition share one index file (same
page table, a larger cache), so a file is read by more than one workload.
"""

from __future__ import annotations

from typing import Any

import torch

from ..spec import Family, Solution, Workload, const, definition, tensor, var

H, CKV, KPE = 4, 64, 16
SCALE = 0.1352337747812271  # the public workloads' value
DECODE = f"mla_paged_decode_h{H}_ckv{CKV}_kpe{KPE}_ps1"
PREFILL = f"mla_paged_prefill_causal_h{H}_ckv{CKV}_kpe{KPE}_ps1"


def _q(rows: str) -> dict[str, Any]:
    return {"q_nope": tensor([rows, "num_qo_heads", "head_dim_ckv"], "bfloat16",
                             "Query tensor without positional encoding component."),
            "q_pe": tensor([rows, "num_qo_heads", "head_dim_kpe"], "bfloat16",
                           "Query positional encoding component.")}


def _out(rows: str) -> dict[str, Any]:
    return {"output": tensor([rows, "num_qo_heads", "head_dim_ckv"], "bfloat16"),
            "lse": tensor([rows, "num_qo_heads"], "float32",
                          "The 2-based log-sum-exp of attention logits.")}


_CACHE = {"ckv_cache": tensor(["num_pages", "page_size", "head_dim_ckv"], "bfloat16",
                              "Compressed key-value cache."),
          "kpe_cache": tensor(["num_pages", "page_size", "head_dim_kpe"], "bfloat16",
                              "Key positional encoding cache.")}
_KV_IDX = {"kv_indptr": tensor(["len_indptr"], "int32", "KV page offsets for each sequence."),
           "kv_indices": tensor(["num_kv_indices"], "int32",
                                "Page indices for KV cache lookups.")}
_SCALE_IN = {"sm_scale": tensor(None, "float32", "Softmax scale.")}
_HEADS = {"num_qo_heads": const(H), "head_dim_ckv": const(CKV), "head_dim_kpe": const(KPE),
          "page_size": const(1)}

# One reference body for both stages: decode is prefill with one query per sequence.
_REF_CORE = f"""
    import math

    import torch


    def _attend(q_nope, q_pe, ckv_cache, kpe_cache, qo_indptr, kv_indptr, kv_indices, sm_scale):
        total_q, num_heads, head_dim_ckv = q_nope.shape
        head_dim_kpe = q_pe.shape[-1]
        page_size = ckv_cache.shape[1]
        assert (num_heads, head_dim_ckv, head_dim_kpe, page_size) == ({H}, {CKV}, {KPE}, 1)
        assert kv_indices.shape[0] == int(kv_indptr[-1].item())
        ckv_all = ckv_cache[:, 0].to(torch.float32)  # [num_pages, ckv]: keys AND values
        kpe_all = kpe_cache[:, 0].to(torch.float32)  # [num_pages, kpe]

        output = torch.zeros((total_q, num_heads, head_dim_ckv), dtype=torch.bfloat16,
                             device=q_nope.device)
        lse = torch.full((total_q, num_heads), float("-inf"), dtype=torch.float32,
                         device=q_nope.device)
        for b in range(kv_indptr.shape[0] - 1):
            qs, qe = int(qo_indptr[b].item()), int(qo_indptr[b + 1].item())
            ks, ke = int(kv_indptr[b].item()), int(kv_indptr[b + 1].item())
            n_q, n_kv = qe - qs, ke - ks
            if n_q <= 0 or n_kv <= 0:  # nothing to attend: output 0, lse -inf
                continue
            pages = kv_indices[ks:ke].to(torch.long)
            ckv, kpe = ckv_all[pages], kpe_all[pages]  # [n_kv, ckv], [n_kv, kpe]
            logits = (torch.einsum("qhc,tc->qht", q_nope[qs:qe].to(torch.float32), ckv)
                      + torch.einsum("qhr,tr->qht", q_pe[qs:qe].to(torch.float32), kpe))
            logits = logits * sm_scale
            # Query i is token (n_kv - n_q + i) of its sequence and sees up to itself.
            q_pos = torch.arange(n_q, device=logits.device)[:, None] + (n_kv - n_q)
            visible = torch.arange(n_kv, device=logits.device)[None, :] <= q_pos
            logits = logits.masked_fill(~visible[:, None, :], float("-inf"))
            lse[qs:qe] = torch.logsumexp(logits, dim=-1) / math.log(2.0)
            probs = torch.softmax(logits, dim=-1)
            output[qs:qe] = torch.einsum("qht,tc->qhc", probs, ckv).to(torch.bfloat16)
        return output, lse
"""

DECODE_DEF = definition(
    DECODE, "mla_paged",
    f"Batched multi-head latent attention decode over a paged compressed KV cache (page size 1), "
    f"{H} heads, ckv {CKV}, kpe {KPE}, absorbed form (mini-dataset).",
    {"batch_size": var(), **_HEADS,
     "num_pages": var("Total number of allocated pages in the KV cache."),
     "len_indptr": var("Length of kv_indptr array."),
     "num_kv_indices": var("Total number of KV page indices.")},
    {**_q("batch_size"), **_CACHE, **_KV_IDX, **_SCALE_IN},
    _out("batch_size"),
    _REF_CORE + """

    @torch.no_grad()
    def run(q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, sm_scale):
        batch_size = q_nope.shape[0]
        assert kv_indptr.shape[0] == batch_size + 1
        # One query per sequence: it is the last token, so it sees the whole sequence.
        qo_indptr = torch.arange(batch_size + 1, dtype=torch.int32, device=q_nope.device)
        return _attend(q_nope, q_pe, ckv_cache, kpe_cache, qo_indptr, kv_indptr, kv_indices,
                       sm_scale)
    """,
    constraints=["len_indptr == batch_size + 1", "num_kv_indices == kv_indptr[-1].item()"])

PREFILL_DEF = definition(
    PREFILL, "mla_paged",
    f"Batched multi-head latent attention prefill over a paged compressed KV cache (page size "
    f"1), causal (bottom-right aligned: query i of a sequence with q queries and k KV tokens "
    f"sees KV positions <= i + k - q), {H} heads, ckv {CKV}, kpe {KPE} (mini-dataset).",
    {**_HEADS, "total_q": var("Total number of query tokens."),
     "num_pages": var("Total allocated pages in KV cache."),
     "len_indptr": var("Length of indptr arrays (batch_size + 1)."),
     "num_kv_indices": var("Total number of KV indices.")},
    {**_q("total_q"), **_CACHE,
     "qo_indptr": tensor(["len_indptr"], "int32", "Query offsets for each sequence."),
     **_KV_IDX, **_SCALE_IN},
    _out("total_q"),
    _REF_CORE + """

    @torch.no_grad()
    def run(q_nope, q_pe, ckv_cache, kpe_cache, qo_indptr, kv_indptr, kv_indices, sm_scale):
        assert qo_indptr.shape == kv_indptr.shape
        assert q_nope.shape[0] == int(qo_indptr[-1].item())
        return _attend(q_nope, q_pe, ckv_cache, kpe_cache, qo_indptr, kv_indptr, kv_indices,
                       sm_scale)
    """,
    constraints=["total_q == qo_indptr[-1].item()", "num_kv_indices == kv_indptr[-1].item()"])

# The kernel's view of absorbed MLA: one key of width ckv + kpe (the two caches side by side),
# one shared KV head for all query heads, values = the ckv half; KV walked in tiles with an
# online softmax in the exp2 domain, fp32 state.
FLASH = """
import math

import torch

BLOCK_KV = 16
LOG2E = 1.4426950408889634


def attend(q, k, v, scale, last_visible=None):
    \"\"\"q [n, H, D], k [T, D], v [T, Dv] (fp32); last_visible [n] (None: all).
    Returns out [n, H, Dv] and lse2 [n, H].\"\"\"
    n, h, _ = q.shape
    dev = q.device
    m = torch.full((n, h), float("-inf"), device=dev)
    l = torch.zeros((n, h), device=dev)
    acc = torch.zeros((n, h, v.shape[-1]), device=dev)
    qs = q * (scale * LOG2E)
    for t0 in range(0, k.shape[0], BLOCK_KV):
        kt, vt = k[t0:t0 + BLOCK_KV], v[t0:t0 + BLOCK_KV]
        s = torch.einsum("nhd,td->nht", qs, kt)
        if last_visible is not None:
            pos = torch.arange(t0, t0 + kt.shape[0], device=dev)
            s = s.masked_fill((pos[None, :] > last_visible[:, None])[:, None, :], float("-inf"))
        m_new = torch.maximum(m, s.amax(-1))
        m_ref = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
        alpha = torch.exp2(m - m_ref)
        p = torch.exp2(s - m_ref[..., None])
        l = l * alpha + p.sum(-1)
        acc = acc * alpha[..., None] + torch.einsum("nht,td->nhd", p, vt)
        m = m_new
    seen = l > 0
    lse = torch.where(seen, m + torch.log2(l.clamp_min(1e-30)), torch.full_like(m, float("-inf")))
    out = torch.where(seen[..., None], acc / l.clamp_min(1e-30)[..., None], torch.zeros_like(acc))
    return out, lse
"""

# Decode, returning (output, lse).
DECODE_BODY = """

def run(q_nope, q_pe, ckv_cache, kpe_cache, kv_indptr, kv_indices, sm_scale):
    batch_size, num_heads, dc = q_nope.shape
    scale = SCALE
    q = QCAT  # [B, H, ckv + kpe]
    output = torch.empty((batch_size, num_heads, dc), dtype=torch.bfloat16, device=q.device)
    lse = torch.empty((batch_size, num_heads), dtype=torch.float32, device=q.device)
    for b in range(batch_size):
        start, end = int(kv_indptr[b]), int(kv_indptr[b + 1])
        pages = PAGES
        ckv = ckv_cache[pages, 0].float()
        k = KCAT
        out, l2 = attend(q[b:b + 1], k, ckv, scale)
        output[b] = out[0].to(torch.bfloat16)
        lse[b] = l2[0]
    return output, lse
"""
D_OK = {"SCALE": "float(sm_scale)",
        "QCAT": "torch.cat([q_nope.float(), q_pe.float()], dim=-1)",
        "PAGES": "kv_indices[start:end].long()",
        "KCAT": "torch.cat([ckv, kpe_cache[pages, 0].float()], dim=-1)"}


def _src(body: str, parts: dict[str, str], **change: str) -> str:
    for key, value in {**parts, **change}.items():
        body = body.replace(key, value)
    return FLASH + body


DECODE_OK = _src(DECODE_BODY, D_OK)
# Drops the rope half of the score (q_pe . kpe): keys are the ckv cache alone.
DECODE_NO_ROPE = _src(DECODE_BODY, D_OK, QCAT="q_nope.float()", KCAT="ckv")
# Ignores sm_scale and uses 1/sqrt of the absorbed query width (ckv + kpe).
DECODE_DEFAULT_SCALE = _src(DECODE_BODY, D_OK,
                            SCALE="1.0 / math.sqrt(q_nope.shape[-1] + q_pe.shape[-1])")
# Takes the pages of sequence b as kv_indptr[b]..kv_indptr[b+1]-1, ignoring kv_indices.
DECODE_NO_PAGES = _src(DECODE_BODY, D_OK, PAGES="torch.arange(start, end, device=q.device)")

# Prefill, destination-passing.
PREFILL_BODY = """

def run(q_nope, q_pe, ckv_cache, kpe_cache, qo_indptr, kv_indptr, kv_indices, sm_scale,
        output, lse):
    q = torch.cat([q_nope.float(), q_pe.float()], dim=-1)
    output.zero_()
    lse.fill_(float("-inf"))
    for b in range(qo_indptr.shape[0] - 1):
        qs, qe = int(qo_indptr[b]), int(qo_indptr[b + 1])
        start, end = int(kv_indptr[b]), int(kv_indptr[b + 1])
        n_q, n_kv = qe - qs, end - start
        if n_q == 0 or n_kv == 0:
            continue
        pages = kv_indices[start:end].long()
        ckv = ckv_cache[pages, 0].float()
        k = torch.cat([ckv, kpe_cache[pages, 0].float()], dim=-1)
        last = LAST
        out, l2 = attend(q[qs:qe], k, ckv, float(sm_scale), last)
        output[qs:qe] = out.to(output.dtype)
        lse[qs:qe] = l2 * LSE_UNIT
"""
P_OK = {"LAST": "torch.arange(n_q, device=q.device) + (n_kv - n_q)", "LSE_UNIT": "1.0"}

PREFILL_OK = _src(PREFILL_BODY, P_OK)
# Top-left aligned causal mask: query i sees KV 0..i, as if there were no cached prefix.
PREFILL_TOP_LEFT = _src(PREFILL_BODY, P_OK, LAST="torch.arange(n_q, device=q.device)")
# Natural-log lse where base 2 is defined.
PREFILL_NAT_LSE = _src(PREFILL_BODY, P_OK, LSE_UNIT="math.log(2.0)")


def _indptr(lens: list[int]) -> torch.Tensor:
    out = [0]
    for n in lens:
        out.append(out[-1] + n)
    return torch.tensor(out, dtype=torch.int32)


def _pages(gen: torch.Generator, num_pages: int, lens: list[int], run: int = 8) -> torch.Tensor:
    """Each sequence gets whole runs of `run` consecutive pages, the runs scattered over the
    cache (a block allocator's free list), no page given twice; never the identity map."""
    blocks = torch.randperm(num_pages // run, generator=gen).tolist()
    out: list[int] = []
    for n in lens:
        mine: list[int] = []
        while len(mine) < n:
            first = blocks.pop() * run
            mine.extend(range(first, first + run))
        out.extend(mine[:n])
    pages = torch.tensor(out, dtype=torch.int32)
    assert not torch.equal(pages.long(), torch.arange(len(out))), "page table is the identity"
    return pages


def _meta(gen: torch.Generator, q_lens: list[int] | None, kv_lens: list[int],
          max_page: int) -> dict[str, torch.Tensor]:
    meta = {"kv_indptr": _indptr(kv_lens), "kv_indices": _pages(gen, max_page, kv_lens),
            "sm_scale": torch.tensor(SCALE, dtype=torch.float32)}
    if q_lens is not None:
        meta["qo_indptr"] = _indptr(q_lens)
    return meta


def _inputs(file: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    random = {name: {"type": "random"} for name in ("q_nope", "q_pe", "ckv_cache", "kpe_cache")}
    blob = {k: {"type": "safetensors", "file": file, "tensor_key": k} for k in keys}
    return {**random, **blob, "sm_scale": {"type": "scalar", "value": SCALE}}


def _decode(file: str, kv_lens: list[int], num_pages: int,
            meta: dict[str, torch.Tensor] | None) -> Workload:
    """``meta`` None: the file was written by another workload of this definition."""
    return Workload(DECODE, {"batch_size": len(kv_lens), "num_pages": num_pages,
                             "len_indptr": len(kv_lens) + 1, "num_kv_indices": sum(kv_lens)},
                    _inputs(file, ["kv_indptr", "kv_indices"]), {file: meta} if meta else {})


def _prefill(file: str, q_lens: list[int], kv_lens: list[int], num_pages: int,
             meta: dict[str, torch.Tensor] | None) -> Workload:
    return Workload(PREFILL, {"total_q": sum(q_lens), "num_pages": num_pages,
                              "len_indptr": len(q_lens) + 1, "num_kv_indices": sum(kv_lens)},
                    _inputs(file, ["qo_indptr", "kv_indptr", "kv_indices"]),
                    {file: meta} if meta else {})


def make(gen: Any) -> Family:
    d_shared, p_shared = "mla_meta_shared.safetensors", "mla_prefill_meta_shared.safetensors"
    q_a, kv_a = [9], [10]
    q_b, kv_b = [1, 12, 5, 3], [34, 14, 5, 9]
    q_c, kv_c = [20, 2], [24, 9]
    workloads = [
        # The same page table against a cache of 512 and one of 4096 pages: one file, two
        # workloads (indices drawn below 512, valid for both).
        _decode(d_shared, [45], 512, _meta(gen, None, [45], 512)),
        _decode(d_shared, [45], 4096, None),
        _decode("mla_meta_b6.safetensors", [1, 30, 7, 64, 2, 19], 1024,
                _meta(gen, None, [1, 30, 7, 64, 2, 19], 1024)),
        _decode("mla_meta_b1_1.safetensors", [1], 256, _meta(gen, None, [1], 256)),
        # Every prefill workload has a cached prefix (kv_len > qo_len) somewhere.
        _prefill(p_shared, q_a, kv_a, 512, _meta(gen, q_a, kv_a, 512)),
        _prefill(p_shared, q_a, kv_a, 2048, None),
        _prefill("mla_prefill_meta_b4.safetensors", q_b, kv_b, 1024, _meta(gen, q_b, kv_b, 1024)),
        _prefill("mla_prefill_meta_b2.safetensors", q_c, kv_c, 256, _meta(gen, q_c, kv_c, 256)),
    ]
    return Family("mla_paged", [DECODE_DEF, PREFILL_DEF], workloads, [
        Solution(f"{DECODE}_py", DECODE, DECODE_OK),
        Solution(f"{DECODE}_no_rope_term", DECODE, DECODE_NO_ROPE, "INCORRECT_NUMERICAL",
                 "drops the q_pe . kpe term of the logits"),
        Solution(f"{DECODE}_default_scale", DECODE, DECODE_DEFAULT_SCALE, "INCORRECT_NUMERICAL",
                 "ignores sm_scale and uses 1/sqrt(head_dim_ckv + head_dim_kpe)"),
        Solution(f"{DECODE}_ignores_kv_indices", DECODE, DECODE_NO_PAGES, "INCORRECT_NUMERICAL",
                 "reads pages kv_indptr[b]..kv_indptr[b+1]-1 directly, ignoring kv_indices"),
        Solution(f"{PREFILL}_py", PREFILL, PREFILL_OK, dps=True),
        Solution(f"{PREFILL}_causal_top_left", PREFILL, PREFILL_TOP_LEFT, "INCORRECT_NUMERICAL",
                 "aligns the causal mask top-left (query i sees KV 0..i), ignoring the cached "
                 "prefix kv_len - qo_len", dps=True),
        Solution(f"{PREFILL}_natural_lse", PREFILL, PREFILL_NAT_LSE, "INCORRECT_NUMERICAL",
                 "returns the natural-log log-sum-exp where base 2 is defined", dps=True),
    ])
