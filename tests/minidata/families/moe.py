"""moe: fused mixture-of-experts with DeepSeek-V3 routing, fp8 block-scale weights; and the
unquantised bf16 MoE with given routing.

Mirrors the public ``moe_fp8_block_scale_ds_routing_topk8_ng8_kg4_e32_h7168_i2048`` (256 experts,
32 local, hidden 7168, intermediate 2048, 128-wide scale blocks, top-8 of 4 of 8 groups) and
``moe_bf16_topk8_e256_h2048_i256``. Shrunk to 32 experts of which 8 are local, hidden 64,
intermediate 32, 16-wide scale blocks, top-4 experts from the best 2 of 4 groups (group score =
sum of the group's top-2 biased scores: kept); bf16: 16 experts, hidden 64, intermediate 32, top-4.

Input kinds as in the public fp8 workloads: ``routing_logits`` and ``routing_bias`` from
safetensors, fp8 activations/weights and their block scales random, ``local_expert_offset`` and
``routed_scaling_factor`` scalars. The public dataset has no bf16 workloads; here its routing
(``gating_output``, ``topk_ids``, ``topk_weights``) comes from safetensors, activations and
weights are random.
"""

from __future__ import annotations

from typing import Any

from ..spec import Family, Solution, Workload, const, definition, tensor, var

# --------------------------------------------------------------------------- fp8 block scale
E, EL, HID, INTER, BLK = 32, 8, 64, 32, 16
TOPK, NG, KG = 4, 4, 2
FP8 = f"moe_fp8_block_scale_ds_routing_topk{TOPK}_ng{NG}_kg{KG}_e{EL}_h{HID}_i{INTER}"

FP8_DEF = definition(
    FP8, "moe",
    f"FP8 block-scale MoE with DeepSeek-V3 no-aux routing (sigmoid scores + bias, best {KG} of "
    f"{NG} groups by top-2 sum, top-{TOPK} experts, weights from unbiased scores renormalised and "
    f"scaled), then per local expert GEMM1 -> SwiGLU -> GEMM2; {E} experts, {EL} local, hidden "
    f"{HID}, intermediate {INTER}, {BLK}-wide scale blocks (mini-dataset).",
    {"seq_len": var("Number of tokens."),
     "num_experts": const(E), "num_local_experts": const(EL),
     "hidden_size": const(HID), "intermediate_size": const(INTER),
     "gemm1_out_size": const(2 * INTER, "2 * intermediate_size: [up; gate] rows."),
     "num_hidden_blocks": const(HID // BLK), "num_intermediate_blocks": const(INTER // BLK),
     "num_gemm1_out_blocks": const(2 * INTER // BLK)},
    {"routing_logits": tensor(["seq_len", "num_experts"], "float32"),
     "routing_bias": tensor(["num_experts"], "bfloat16"),
     "hidden_states": tensor(["seq_len", "hidden_size"], "float8_e4m3fn"),
     "hidden_states_scale": tensor(["num_hidden_blocks", "seq_len"], "float32",
                                   "Per (hidden block, token) scale; note the transposed layout."),
     "gemm1_weights": tensor(["num_local_experts", "gemm1_out_size", "hidden_size"],
                             "float8_e4m3fn"),
     "gemm1_weights_scale": tensor(
         ["num_local_experts", "num_gemm1_out_blocks", "num_hidden_blocks"], "float32"),
     "gemm2_weights": tensor(["num_local_experts", "hidden_size", "intermediate_size"],
                             "float8_e4m3fn"),
     "gemm2_weights_scale": tensor(
         ["num_local_experts", "num_hidden_blocks", "num_intermediate_blocks"], "float32"),
     "local_expert_offset": tensor(None, "int32", "Global id of local expert 0."),
     "routed_scaling_factor": tensor(None, "float32")},
    {"output": tensor(["seq_len", "hidden_size"], "bfloat16")},
    f"""
    import torch

    E, EL, H, I, BLK, TOPK, NG, KG = {E}, {EL}, {HID}, {INTER}, {BLK}, {TOPK}, {NG}, {KG}


    def dequant(x, scale):
        # scale[i, j] covers the BLK x BLK tile (i, j) of the last two dims of x.
        s = scale.float().repeat_interleave(BLK, dim=-2).repeat_interleave(BLK, dim=-1)
        return x.float() * s


    @torch.no_grad()
    def run(routing_logits, routing_bias, hidden_states, hidden_states_scale, gemm1_weights,
            gemm1_weights_scale, gemm2_weights, gemm2_weights_scale, local_expert_offset,
            routed_scaling_factor):
        T = routing_logits.shape[0]
        assert routing_logits.shape[1] == E and gemm1_weights.shape == (EL, 2 * I, H)
        assert hidden_states_scale.shape == (H // BLK, T)

        # Routing (DeepSeek-V3 no-aux): select on biased sigmoid scores, weight by unbiased ones.
        score = torch.sigmoid(routing_logits.float())                       # [T, E]
        biased = score + routing_bias.float()
        grouped = biased.view(T, NG, E // NG)
        group_score = grouped.topk(2, dim=-1).values.sum(-1)               # [T, NG]
        keep = torch.zeros(T, NG, dtype=torch.bool, device=score.device)
        keep.scatter_(1, group_score.topk(KG, dim=-1).indices, True)
        allowed = keep[:, :, None].expand(T, NG, E // NG).reshape(T, E)
        chosen = biased.masked_fill(~allowed, float("-inf")).topk(TOPK, dim=-1).indices
        picked = torch.zeros(T, E, dtype=torch.bool, device=score.device)
        picked.scatter_(1, chosen, True)
        w = torch.where(picked, score, torch.zeros_like(score))
        w = w / (w.sum(-1, keepdim=True) + 1e-20) * routed_scaling_factor   # [T, E]

        # Dequantised operands (activation scales are stored [hidden block, token]).
        x = hidden_states.float() * hidden_states_scale.float().T.repeat_interleave(BLK, dim=1)
        w13 = dequant(gemm1_weights, gemm1_weights_scale)                  # [EL, 2I, H]
        w2 = dequant(gemm2_weights, gemm2_weights_scale)                   # [EL, H, I]

        out = torch.zeros(T, H, dtype=torch.float32, device=x.device)
        for le in range(EL):
            ge = int(local_expert_offset) + le
            if not 0 <= ge < E:
                continue
            tok = picked[:, ge].nonzero().flatten()
            if tok.numel() == 0:
                continue
            h = x[tok] @ w13[le].T                                          # [n, 2I]
            up, gate = h[:, :I], h[:, I:]
            act = up * (gate * torch.sigmoid(gate))                         # SwiGLU: silu on 2nd half
            out[tok] += (act @ w2[le].T) * w[tok, ge][:, None]
        return out.to(torch.bfloat16)
    """)

# Kernel-shaped: routing vectorised; tokens permuted (sorted) by expert; GEMM1 accumulated one
# 16-wide K block at a time with the activation and weight block scales applied to each partial
# product (how a block-scale fp8 GEMM accumulates); GEMM2 on block-dequantised weights; results
# scattered back with the routing weight. fp32 throughout.
FP8_OK = """
import torch

E, EL, H, I, BLK, TOPK, NG, KG = 32, 8, 64, 32, 16, 4, 4, 2

def route(logits, bias, scaling):
    T = logits.shape[0]
    s = 1.0 / (1.0 + torch.exp(-logits.float()))
    sb = s + bias.float()[None, :]
    top2 = torch.sort(sb.reshape(T, NG, E // NG), dim=-1, descending=True).values[..., :2]
    gsel = torch.sort(top2.sum(-1), dim=-1, descending=True).indices[:, :KG]    # [T, KG]
    gmask = torch.zeros(T, NG, device=logits.device).scatter(1, gsel, 1.0).bool()
    emask = gmask.repeat_interleave(E // NG, dim=1)
    ids = torch.sort(torch.where(emask, sb, torch.full_like(sb, -1e30)), dim=-1,
                     descending=True).indices[:, :TOPK]                          # [T, TOPK]
    ws = torch.gather(s, 1, ids)
    return ids, ws / ws.sum(-1, keepdim=True) * scaling

def run(routing_logits, routing_bias, hidden_states, hidden_states_scale, gemm1_weights,
        gemm1_weights_scale, gemm2_weights, gemm2_weights_scale, local_expert_offset,
        routed_scaling_factor):
    T = hidden_states.shape[0]
    ids, ws = route(routing_logits, routing_bias, routed_scaling_factor)
    local = ids - int(local_expert_offset)
    flat_e, flat_w = local.reshape(-1), ws.reshape(-1)
    # token ids, the accumulator and every index on the inputs' device (index_add_ needs one)
    flat_t = torch.arange(T, device=hidden_states.device).repeat_interleave(TOPK)
    ok = (flat_e >= 0) & (flat_e < EL)
    flat_e, flat_w, flat_t = flat_e[ok], flat_w[ok], flat_t[ok]
    order = torch.argsort(flat_e, stable=True)
    flat_e, flat_w, flat_t = flat_e[order], flat_w[order], flat_t[order]

    a8 = hidden_states.float().reshape(T, H // BLK, BLK)
    a_s = hidden_states_scale.float().T                                  # [T, H/BLK]
    out = torch.zeros(T, H, device=hidden_states.device)
    for e in torch.unique(flat_e).tolist():
        sel = flat_e == e
        t = flat_t[sel]
        w1 = gemm1_weights[e].float().reshape(2 * I, H // BLK, BLK)
        s1 = gemm1_weights_scale[e].float().repeat_interleave(BLK, dim=0)  # [2I, H/BLK]
        part = torch.einsum("tbk,nbk->tnb", a8[t], w1)                   # per K-block partials
        g1 = (part * a_s[t][:, None, :] * s1[None]).sum(-1)              # [n, 2I]
        gate = g1[:, I:]
        c = g1[:, :I] * gate / (1.0 + torch.exp(-gate))
        w2 = gemm2_weights[e].float().reshape(H // BLK, BLK, I // BLK, BLK)
        w2 = (w2 * gemm2_weights_scale[e].float()[:, None, :, None]).reshape(H, I)
        out.index_add_(0, t, (c @ w2.T) * flat_w[sel][:, None])
    return out.to(torch.bfloat16)
"""

# Combines with the biased scores (the ones used for selection) instead of the plain sigmoid.
FP8_WRONG_BIASED_WEIGHTS = FP8_OK.replace(
    "ws = torch.gather(s, 1, ids)", "ws = torch.gather(sb, 1, ids)")

# Applies SiLU to the first half of GEMM1's output and multiplies by the second (the other
# framework's [gate; up] convention).
FP8_WRONG_SWAPPED = FP8_OK.replace(
    "gate = g1[:, I:]\n        c = g1[:, :I] * gate",
    "gate = g1[:, :I]\n        c = g1[:, I:] * gate")
assert FP8_OK not in (FP8_WRONG_BIASED_WEIGHTS, FP8_WRONG_SWAPPED)


def _route(logits: Any, bias: Any) -> Any:
    """Routing as the generator sees it, to check each workload reaches its local experts."""
    import torch

    s = torch.sigmoid(logits) + bias.float()
    T = s.shape[0]
    g = s.view(T, NG, E // NG).topk(2, dim=-1).values.sum(-1).topk(KG, dim=-1).indices
    allowed = torch.zeros(T, NG, dtype=torch.bool).scatter_(1, g, True).repeat_interleave(E // NG, 1)
    return s.masked_fill(~allowed, float("-inf")).topk(TOPK, dim=-1).indices


def _fp8_workloads(gen: Any) -> list[Workload]:
    import torch

    # (seq_len, local_expert_offset, routed_scaling_factor)
    cases = [(1, 8, 2.5), (7, 0, 2.5), (16, 24, 2.5), (33, 16, 1.0)]
    bias = (0.3 * torch.randn(E, generator=gen)).to(torch.bfloat16)  # shared, like a layer's
    out = []
    for T, offset, scaling in cases:
        # Redraw until at least half the tokens (and at least one) route to a local expert,
        # so every workload exercises the local GEMMs; the rest stay as zero rows.
        while True:
            logits = torch.randn(T, E, generator=gen) * 2.0
            ids = _route(logits, bias)
            hits = ((ids >= offset) & (ids < offset + EL)).any(-1)
            if hits.sum() >= max(1, T // 2):
                break
        file = f"routing_t{T}_off{offset}.safetensors"
        out.append(Workload(
            FP8, {"seq_len": T},
            {"routing_logits": {"type": "safetensors", "file": file, "tensor_key": "routing_logits"},
             "routing_bias": {"type": "safetensors", "file": file, "tensor_key": "routing_bias"},
             **{k: {"type": "random"} for k in (
                 "hidden_states", "hidden_states_scale", "gemm1_weights", "gemm1_weights_scale",
                 "gemm2_weights", "gemm2_weights_scale")},
             "local_expert_offset": {"type": "scalar", "value": offset},
             "routed_scaling_factor": {"type": "scalar", "value": scaling}},
            {file: {"routing_logits": logits, "routing_bias": bias}}))
    return out


# --------------------------------------------------------------------------- bf16
BE, BTOPK = 16, 4
BF16 = f"moe_bf16_topk{BTOPK}_e{BE}_h{HID}_i{INTER}"

BF16_DEF = definition(
    BF16, "moe",
    f"BF16 fused MoE with given routing (topk_ids, topk_weights): per selected expert GEMM1 -> "
    f"SwiGLU -> GEMM2, weighted sum; {BE} experts, top-{BTOPK}, hidden {HID}, intermediate "
    f"{INTER} (mini-dataset).",
    {"seq_len": var(), "num_experts": const(BE), "hidden_size": const(HID),
     "intermediate_size": const(INTER), "gemm1_out_size": const(2 * INTER), "top_k": const(BTOPK)},
    {"hidden_states": tensor(["seq_len", "hidden_size"], "bfloat16"),
     "gating_output": tensor(["seq_len", "num_experts"], "float32",
                             "Router logits (the routing is already given by topk_ids/weights)."),
     "w1": tensor(["num_experts", "gemm1_out_size", "hidden_size"], "bfloat16"),
     "w2": tensor(["num_experts", "hidden_size", "intermediate_size"], "bfloat16"),
     "topk_weights": tensor(["seq_len", "top_k"], "float32"),
     "topk_ids": tensor(["seq_len", "top_k"], "int32")},
    {"output": tensor(["seq_len", "hidden_size"], "bfloat16")},
    f"""
    import torch

    @torch.no_grad()
    def run(hidden_states, gating_output, w1, w2, topk_weights, topk_ids):
        T, H = hidden_states.shape
        I = w2.shape[2]
        assert H == {HID} and I == {INTER} and w1.shape[0] == {BE} and topk_ids.shape[1] == {BTOPK}
        x = hidden_states.float()
        out = torch.zeros(T, H, dtype=torch.float32, device=x.device)
        for t in range(T):
            for j in range(topk_ids.shape[1]):
                e = int(topk_ids[t, j])
                h = w1[e].float() @ x[t]                                  # [2I]
                act = h[:I] * torch.nn.functional.silu(h[I:])              # silu on the 2nd half
                out[t] += float(topk_weights[t, j]) * (w2[e].float() @ act)
        return out.to(torch.bfloat16)
    """,
    constraints=["gemm1_out_size == 2 * intermediate_size"])

# Grouped by expert like a fused kernel: every (token, slot) pair sorted by expert, one batched
# GEMM per expert, fp32 accumulation, weighted scatter-add back.
BF16_OK = """
import torch

def run(hidden_states, gating_output, w1, w2, topk_weights, topk_ids):
    T, H = hidden_states.shape
    I = w2.shape[2]
    K = topk_ids.shape[1]
    e_of = topk_ids.reshape(-1).long()
    # token ids and the accumulator on the inputs' device (index_add_ needs one device)
    t_of = torch.arange(T, device=hidden_states.device).repeat_interleave(K)
    w_of = topk_weights.reshape(-1)
    out = torch.zeros(T, H, device=hidden_states.device)
    x = hidden_states.float()
    for e in torch.unique(e_of).tolist():
        m = e_of == e
        h = x[t_of[m]] @ w1[e].float().T
        g = h[:, I:]
        act = h[:, :I] * g * torch.sigmoid(g)
        out.index_add_(0, t_of[m], (act @ w2[e].float().T) * w_of[m][:, None])
    return out.to(torch.bfloat16)
"""

# SiLU on the first half, times the second: gate and up swapped.
BF16_WRONG_SWAPPED = BF16_OK.replace("g = h[:, I:]\n        act = h[:, :I] * g",
                                     "g = h[:, :I]\n        act = h[:, I:] * g")

# Re-derives the weights from gating_output (softmax over all experts, not renormalised over the
# chosen ones) instead of using the given topk_weights.
BF16_WRONG_WEIGHTS = BF16_OK.replace(
    "w_of = topk_weights.reshape(-1)",
    "w_of = torch.gather(torch.softmax(gating_output.float(), -1), 1, topk_ids.long()).reshape(-1)")
assert BF16_OK not in (BF16_WRONG_SWAPPED, BF16_WRONG_WEIGHTS)


def _bf16_workloads(gen: Any) -> list[Workload]:
    import torch

    out = []
    for T in (1, 6, 19):
        logits = torch.randn(T, BE, generator=gen) * 2.0
        vals, ids = torch.softmax(logits, -1).topk(BTOPK, dim=-1)
        weights = vals / vals.sum(-1, keepdim=True)   # renormalised over the chosen experts
        file = f"routing_t{T}.safetensors"
        blob = {"gating_output": logits, "topk_weights": weights.float(),
                "topk_ids": ids.to(torch.int32)}
        out.append(Workload(
            BF16, {"seq_len": T},
            {"hidden_states": {"type": "random"}, "w1": {"type": "random"}, "w2": {"type": "random"},
             **{k: {"type": "safetensors", "file": file, "tensor_key": k} for k in blob}},
            {file: blob}))
    return out


def make(gen: Any) -> Family:
    return Family("moe", [FP8_DEF, BF16_DEF], _fp8_workloads(gen) + _bf16_workloads(gen), [
        Solution(f"{FP8}_py", FP8, FP8_OK),
        Solution(f"{FP8}_biased_weights", FP8, FP8_WRONG_BIASED_WEIGHTS, "INCORRECT_NUMERICAL",
                 "combines experts with the bias-corrected scores instead of the plain sigmoid"),
        Solution(f"{FP8}_gate_up_swapped", FP8, FP8_WRONG_SWAPPED, "INCORRECT_NUMERICAL",
                 "SwiGLU applies SiLU to the first half of GEMM1's output instead of the second"),
        Solution(f"{BF16}_py", BF16, BF16_OK),
        Solution(f"{BF16}_gate_up_swapped", BF16, BF16_WRONG_SWAPPED, "INCORRECT_NUMERICAL",
                 "SwiGLU applies SiLU to the first half of GEMM1's output instead of the second"),
        Solution(f"{BF16}_softmax_weights", BF16, BF16_WRONG_WEIGHTS, "INCORRECT_NUMERICAL",
                 "ignores topk_weights and re-derives unnormalised softmax weights from the logits"),
    ])
