"""rope: rotary position embedding, in the public dataset's three shapes.

* rope_h32_d128 / rope_h64_d128 / rope_h64_d64 (HF style): q [batch, num_q_heads, seq, head_dim],
  k [batch, num_k_heads, seq, head_dim], cos and sin [batch, seq, head_dim], bfloat16, all random;
  out = x * cos + rotate_half(x) * sin. Mirrored as rope_h4_d32 (num_q_heads 4, head_dim 32).
* rope_with_cos_sin_cache_neox_style_d128_rd64: q [num_tokens, num_qo_heads, 128],
  k [num_tokens, num_kv_heads, 128] bfloat16, cos_sin_cache [max_seq_len, 64] float32 (first half
  cos, second half sin), positions [num_tokens] int64; NeoX rotation of the first rotary_dim
  channels, the rest passed through. Mirrored as ..._d32_rd16.
* rope_d128_rd64: the same plus a scalar bool ``is_neox`` (False: GPT-J interleaved pairs).
  Mirrored as rope_d32_rd16.

``positions`` are int64 and must index the cache, so they always come from safetensors blobs
(decode-like scattered positions, prefill-like runs); the cache is random in some workloads and a
real cos/sin table (a blob) in others; ``is_neox`` is a scalar input, both values used.

The HF-style reference here rotates in float32 and rounds once to bfloat16 (the public one chains
bfloat16 ops, whose double rounding can differ from any fp32 kernel by more than 1e-2 where the two
terms cancel). Not mirrored: rope_h32_d128_fp8e4m3 (fp8 in and out).
"""

from __future__ import annotations

from typing import Any

from ..spec import Family, Solution, Workload, const, definition, tensor, var

HQ, HD = 4, 32  # HF style
HS, RD = 32, 16  # cache style: head_size, rotary_dim

HF = definition(
    f"rope_h{HQ}_d{HD}", "rope",
    f"Rotary Position Embedding (HF rotate_half style), {HQ} query heads, head_dim={HD} "
    "(mini-dataset).",
    {"batch_size": var(), "num_q_heads": const(HQ), "num_k_heads": var(), "seq_len": var(),
     "head_dim": const(HD)},
    {"q": tensor(["batch_size", "num_q_heads", "seq_len", "head_dim"], "bfloat16", "Query tensor"),
     "k": tensor(["batch_size", "num_k_heads", "seq_len", "head_dim"], "bfloat16", "Key tensor"),
     "cos": tensor(["batch_size", "seq_len", "head_dim"], "bfloat16", "Cosine positional encoding"),
     "sin": tensor(["batch_size", "seq_len", "head_dim"], "bfloat16", "Sine positional encoding")},
    {"q_embed": tensor(["batch_size", "num_q_heads", "seq_len", "head_dim"], "bfloat16"),
     "k_embed": tensor(["batch_size", "num_k_heads", "seq_len", "head_dim"], "bfloat16")},
    f"""
    import torch

    @torch.no_grad()
    def run(q, k, cos, sin):
        assert q.shape[1] == {HQ} and q.shape[-1] == {HD}
        half = {HD} // 2
        c = cos.to(torch.float32)[:, None]  # [batch, 1, seq, dim]: shared by every head
        s = sin.to(torch.float32)[:, None]

        def rotate(x):
            x = x.to(torch.float32)
            # rotate_half(x) = (-x2, x1)
            rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
            return x * c + rot * s

        return rotate(q).to(q.dtype), rotate(k).to(k.dtype)
    """)

_CACHE_AXES = {"num_tokens": var(), "num_qo_heads": var(), "num_kv_heads": var(),
               "head_size": const(HS), "rotary_dim": const(RD), "max_seq_len": var()}
_CACHE_INPUTS = {
    "q": tensor(["num_tokens", "num_qo_heads", "head_size"], "bfloat16", "Query tensor."),
    "k": tensor(["num_tokens", "num_kv_heads", "head_size"], "bfloat16", "Key tensor."),
    "cos_sin_cache": tensor(["max_seq_len", "rotary_dim"], "float32",
                            "Pre-computed cos/sin cache. First half of last dim is cos, second "
                            "half is sin."),
    "positions": tensor(["num_tokens"], "int64",
                        "Position index for each token, used to index into cos_sin_cache."),
}
_CACHE_OUTPUTS = {"q_out": tensor(["num_tokens", "num_qo_heads", "head_size"], "bfloat16"),
                  "k_out": tensor(["num_tokens", "num_kv_heads", "head_size"], "bfloat16")}

# Shared by both cache-style references: rotate the first RD channels of every head.
_CACHE_BODY = f"""
    assert q.shape[-1] == {HS} and cos_sin_cache.shape[-1] == {RD}
    assert bool(((positions >= 0) & (positions < cos_sin_cache.shape[0])).all())
    cs = cos_sin_cache.to(torch.float32)[positions]  # [num_tokens, rotary_dim]
    cos = cs[:, None, :{RD // 2}]  # [num_tokens, 1, rotary_dim/2]
    sin = cs[:, None, {RD // 2}:]

    def rotate(x):
        x = x.to(torch.float32)
        r, rest = x[..., :{RD}], x[..., {RD}:]
        if is_neox:  # pairs (i, i + rotary_dim/2)
            a, b = r[..., :{RD // 2}], r[..., {RD // 2}:]
        else:  # GPT-J: pairs (2i, 2i + 1)
            a, b = r[..., 0::2], r[..., 1::2]
        ra = a * cos - b * sin
        rb = b * cos + a * sin
        if is_neox:
            r = torch.cat((ra, rb), dim=-1)
        else:
            r = torch.stack((ra, rb), dim=-1).flatten(-2)
        return torch.cat((r, rest), dim=-1)

    return rotate(q).to(q.dtype), rotate(k).to(k.dtype)
"""

NEOX = definition(
    f"rope_with_cos_sin_cache_neox_style_d{HS}_rd{RD}", "rope",
    f"RoPE with a pre-computed cos/sin cache, NeoX style, head_size={HS}, rotary_dim={RD}: only "
    f"the first {RD} channels are rotated (mini-dataset).",
    _CACHE_AXES, _CACHE_INPUTS, _CACHE_OUTPUTS,
    "import torch\n\n\n@torch.no_grad()\ndef run(q, k, cos_sin_cache, positions):\n"
    "    is_neox = True\n" + _CACHE_BODY, constraints=[])

FLAG = definition(
    f"rope_d{HS}_rd{RD}", "rope",
    f"RoPE with a pre-computed cos/sin cache and partial rotary dimension, head_size={HS}, "
    f"rotary_dim={RD}; is_neox picks NeoX halves or GPT-J interleaved pairs (mini-dataset).",
    _CACHE_AXES,
    {**_CACHE_INPUTS,
     "is_neox": tensor(None, "bool", "If true, use NeoX-style rotation (split first/second "
                       "half). If false, use GPT-J interleaved style (even/odd indices).")},
    _CACHE_OUTPUTS,
    "import torch\n\n\n@torch.no_grad()\ndef run(q, k, cos_sin_cache, positions, is_neox=True):\n"
    + _CACHE_BODY, constraints=[])

HF_OK = """
import torch

def run(q, k, cos, sin):
    half = q.shape[-1] // 2
    c1, c2 = cos.float()[:, None, :, :half], cos.float()[:, None, :, half:]
    s1, s2 = sin.float()[:, None, :, :half], sin.float()[:, None, :, half:]
    outs = []
    for x in (q, k):
        x1, x2 = x.float()[..., :half], x.float()[..., half:]
        y = torch.empty(x.shape, dtype=torch.float32, device=x.device)
        y[..., :half] = x1 * c1 - x2 * s1
        y[..., half:] = x2 * c2 + x1 * s2
        outs.append(y.to(x.dtype))
    return tuple(outs)
"""

# rotate_half with the sign on the wrong half: (x2, -x1), i.e. rotating by -theta.
HF_WRONG = """
import torch

def run(q, k, cos, sin):
    half = q.shape[-1] // 2
    c, s = cos.float()[:, None], sin.float()[:, None]
    outs = []
    for x in (q, k):
        x = x.float()
        rot = torch.cat((x[..., half:], -x[..., :half]), dim=-1)
        outs.append((x * c + rot * s).to(torch.bfloat16))
    return tuple(outs)
"""


def _cache_ok(flag: bool) -> str:
    """A per-token, per-pair loop over the rotary channels (the shape of a CUDA kernel)."""
    sig = "q, k, cos_sin_cache, positions, is_neox" if flag else "q, k, cos_sin_cache, positions"
    neox = "bool(is_neox)" if flag else "True"
    return f"""
import torch

def run({sig}, q_out, k_out):
    neox = {neox}
    rd = cos_sin_cache.shape[1]
    half = rd // 2
    cache = cos_sin_cache.float()
    dev = cos_sin_cache.device  # channel indices on the inputs' device
    if neox:
        first = torch.arange(half, device=dev)
        second = first + half
    else:
        first, second = torch.arange(0, rd, 2, device=dev), torch.arange(1, rd, 2, device=dev)
    for x, out in ((q, q_out), (k, k_out)):
        out.copy_(x)  # the channels past rotary_dim pass through unchanged
        xf = x.float()
        for t in range(x.shape[0]):
            row = cache[int(positions[t])]
            c, s = row[:half], row[half:]
            a, b = xf[t][:, first], xf[t][:, second]
            out[t][:, first] = (a * c - b * s).to(out.dtype)
            out[t][:, second] = (b * c + a * s).to(out.dtype)
"""


# GPT-J interleaved pairs where NeoX halves are meant (the other flashinfer layout).
NEOX_WRONG = """
import torch

def run(q, k, cos_sin_cache, positions):
    rd = cos_sin_cache.shape[1]
    cs = cos_sin_cache.float()[positions][:, None]
    c, s = cs[..., :rd // 2], cs[..., rd // 2:]
    outs = []
    for x in (q, k):
        x = x.float()
        a, b = x[..., 0:rd:2], x[..., 1:rd:2]
        r = torch.stack((a * c - b * s, b * c + a * s), dim=-1).flatten(-2)
        outs.append(torch.cat((r, x[..., rd:]), dim=-1).to(torch.bfloat16))
    return tuple(outs)
"""

# Looks the cache up by the token's index in the batch instead of its position id.
FLAG_WRONG = """
import torch

def run(q, k, cos_sin_cache, positions, is_neox):
    rd = cos_sin_cache.shape[1]
    cs = cos_sin_cache.float()[torch.arange(q.shape[0], device=q.device)][:, None]
    c, s = cs[..., :rd // 2], cs[..., rd // 2:]
    outs = []
    for x in (q, k):
        x = x.float()
        if is_neox:
            a, b = x[..., :rd // 2], x[..., rd // 2:rd]
            r = torch.cat((a * c - b * s, b * c + a * s), dim=-1)
        else:
            a, b = x[..., 0:rd:2], x[..., 1:rd:2]
            r = torch.stack((a * c - b * s, b * c + a * s), dim=-1).flatten(-2)
        outs.append(torch.cat((r, x[..., rd:]), dim=-1).to(torch.bfloat16))
    return tuple(outs)
"""


def _real_cache(max_seq_len: int) -> Any:
    """A true RoPE table (base 10000): cos in the first half, sin in the second."""
    import torch

    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, RD, 2, dtype=torch.float64) / RD))
    ang = torch.arange(max_seq_len, dtype=torch.float64)[:, None] * inv_freq[None]
    return torch.cat((ang.cos(), ang.sin()), dim=-1).to(torch.float32)


def _positions(gen: Any, kind: str, n: int, max_seq_len: int) -> Any:
    import torch

    if kind == "decode":  # one token per sequence, each at its own (nonzero) position
        return torch.randint(1, max_seq_len, (n,), generator=gen, dtype=torch.int64)
    # prefill: two sequences' runs 0..a-1 then b..b+(n-a)-1 (a chunk continuing at offset b)
    a = n // 2
    b = int(torch.randint(a + 1, max_seq_len - (n - a) + 1, (1,), generator=gen))
    return torch.cat((torch.arange(a), torch.arange(b, b + n - a))).to(torch.int64)


def make(gen: Any) -> Family:
    import torch

    workloads = [
        Workload(HF["name"], {"batch_size": 1, "num_k_heads": 1, "seq_len": 1}),
        Workload(HF["name"], {"batch_size": 2, "num_k_heads": 2, "seq_len": 5},
                 {n: {"type": "random"} for n in ("q", "k", "cos", "sin")}),
        Workload(HF["name"], {"batch_size": 3, "num_k_heads": 4, "seq_len": 7}),
    ]
    # (num_tokens, qo heads, kv heads, max_seq_len, positions kind, real cache?, is_neox)
    cases = [(1, 4, 1, 64, "decode", True, True), (6, 4, 2, 64, "decode", False, False),
             (11, 8, 2, 48, "prefill", True, False), (13, 2, 1, 40, "prefill", False, True)]
    for d in (NEOX, FLAG):
        for i, (t, hq, hk, msl, kind, real, neox) in enumerate(cases):
            pos = _positions(gen, kind, t, msl)
            # token i must not sit at position i, else a lookup by token index looks right
            assert bool((pos != torch.arange(t)).any())
            file = f"rope_{i}.safetensors"
            tensors = {"positions": pos}
            inputs: dict[str, Any] = {
                "positions": {"type": "safetensors", "file": file, "tensor_key": "positions"},
                "q": {"type": "random"}, "k": {"type": "random"}}
            if real:
                tensors["cos_sin_cache"] = _real_cache(msl)
                inputs["cos_sin_cache"] = {"type": "safetensors", "file": file,
                                           "tensor_key": "cos_sin_cache"}
            if d is FLAG:
                inputs["is_neox"] = {"type": "scalar", "value": neox}
            workloads.append(Workload(
                d["name"], {"num_tokens": t, "num_qo_heads": hq, "num_kv_heads": hk,
                            "max_seq_len": msl}, inputs, {file: tensors}))
    return Family("rope", [HF, NEOX, FLAG], workloads, [
        Solution(f"{HF['name']}_py", HF["name"], HF_OK),
        Solution(f"{HF['name']}_sign_flipped", HF["name"], HF_WRONG, "INCORRECT_NUMERICAL",
                 "rotate_half returns (x2, -x1): rotates by -theta"),
        Solution(f"{NEOX['name']}_py", NEOX["name"], _cache_ok(False), dps=True),
        Solution(f"{NEOX['name']}_gptj_pairs", NEOX["name"], NEOX_WRONG, "INCORRECT_NUMERICAL",
                 "rotates interleaved (2i, 2i+1) pairs, GPT-J style, instead of NeoX halves"),
        Solution(f"{FLAG['name']}_py", FLAG["name"], _cache_ok(True), dps=True),
        Solution(f"{FLAG['name']}_token_index", FLAG["name"], FLAG_WRONG, "INCORRECT_NUMERICAL",
                 "indexes cos_sin_cache by the token's index in the batch, not positions[token]"),
    ])
