"""mamba_ssu: Mamba2 selective state update, one decode token per sequence, paged state cache.

Mirrors the public ``mamba_ssu_decode_h64_d64_s128_ng4`` (and ``..._h128_d64_s128_ng8``; the
public dataset has no workloads for either). Shrunk: 8 heads of dim 4, state size 16, 2 groups
(4 heads per group, like the public 16). Semantics kept: dt = softplus(dt + dt_bias),
state[slot] <- state[slot] * exp(A * dt) + (dt * x) B^T, y = state[slot] C + D * x, head h using
group h // (nheads / ngroups); a slot of -1 (PAD_SLOT_ID) skips the update and leaves a zero
output row; the state cache is returned updated (slots not named keep their values).

Input kinds: ``state_batch_indices`` (distinct slots, some -1) from safetensors in every workload;
the rest random, except one workload whose state cache, A (negative, tied over head_dim and
dstate as in the model), D and dt_bias also come from safetensors. No input is a scalar in the
public definition, so none is here.
"""

from __future__ import annotations

from typing import Any

from ..spec import Family, Solution, Workload, const, definition, tensor, var

NH, HD, DS, NG = 8, 4, 16, 2
NAME = f"mamba_ssu_decode_h{NH}_d{HD}_s{DS}_ng{NG}"

DEF = definition(
    NAME, "mamba_ssu",
    f"Mamba2 selective state update (decode) on a paged SSM state cache: {NH} heads, head_dim "
    f"{HD}, dstate {DS}, {NG} groups (mini-dataset).",
    {"batch_size": var(), "state_cache_size": var("Slots in the state cache (>= batch_size)."),
     "nheads": const(NH), "head_dim": const(HD), "dstate": const(DS), "ngroups": const(NG)},
    {"state": tensor(["state_cache_size", "nheads", "head_dim", "dstate"], "bfloat16"),
     "x": tensor(["batch_size", "nheads", "head_dim"], "bfloat16"),
     "dt": tensor(["batch_size", "nheads", "head_dim"], "bfloat16", "Time step before softplus."),
     "A": tensor(["nheads", "head_dim", "dstate"], "float32"),
     "B": tensor(["batch_size", "ngroups", "dstate"], "bfloat16"),
     "C": tensor(["batch_size", "ngroups", "dstate"], "bfloat16"),
     "D": tensor(["nheads", "head_dim"], "bfloat16", "Skip connection weight."),
     "dt_bias": tensor(["nheads", "head_dim"], "bfloat16"),
     "state_batch_indices": tensor(["batch_size"], "int32",
                                   "State cache slot of each sequence; -1 skips it.")},
    {"output": tensor(["batch_size", "nheads", "head_dim"], "bfloat16"),
     "new_state": tensor(["state_cache_size", "nheads", "head_dim", "dstate"], "bfloat16",
                         "The state cache after the update.")},
    f"""
    import torch
    import torch.nn.functional as F

    @torch.no_grad()
    def run(state, x, dt, A, B, C, D, dt_bias, state_batch_indices):
        batch, nheads, head_dim = x.shape
        ngroups, dstate = B.shape[1], B.shape[2]
        assert (nheads, head_dim, dstate, ngroups) == ({NH}, {HD}, {DS}, {NG})
        per_group = nheads // ngroups
        new_state = state.clone()
        out = torch.zeros(batch, nheads, head_dim, dtype=torch.float32, device=x.device)
        for i in range(batch):
            slot = int(state_batch_indices[i])
            if slot < 0:
                continue  # padding: no update, zero output
            for h in range(nheads):
                grp = h // per_group
                step = F.softplus(dt[i, h].float() + dt_bias[h].float())           # [head_dim]
                s = new_state[slot, h].float()                                     # [head_dim, dstate]
                s = s * torch.exp(A[h].float() * step[:, None])
                s = s + (step * x[i, h].float())[:, None] * B[i, grp].float()[None, :]
                new_state[slot, h] = s.to(state.dtype)
                out[i, h] = s @ C[i, grp].float() + D[h].float() * x[i, h].float()
        return out.to(x.dtype), new_state
    """,
    constraints=["nheads % ngroups == 0", "state_cache_size >= batch_size"])

# Destination-passing like the in-place kernel, but into new_state (the input stays untouched):
# copy the cache, then update all live slots at once, fp32 math, one rounding to bf16.
OK = """
import torch

def run(state, x, dt, A, B, C, D, dt_bias, state_batch_indices, output, new_state):
    nheads, ngroups = x.shape[1], B.shape[1]
    new_state.copy_(state)
    output.zero_()
    live = (state_batch_indices >= 0).nonzero().flatten()
    if live.numel() == 0:
        return
    slots = state_batch_indices[live].long()
    z = dt[live].float() + dt_bias.float()
    step = torch.where(z > 20, z, torch.log1p(torch.exp(z)))             # softplus
    Bh = B[live].float().repeat_interleave(nheads // ngroups, dim=1)     # [n, nheads, dstate]
    Ch = C[live].float().repeat_interleave(nheads // ngroups, dim=1)
    xf = x[live].float()
    s = state[slots].float() * torch.exp(A.float()[None] * step[..., None])
    s = s + (step * xf)[..., None] * Bh[:, :, None, :]
    new_state[slots] = s.to(new_state.dtype)
    y = torch.einsum("nhds,nhs->nhd", s, Ch) + D.float()[None] * xf
    output[live] = y.to(output.dtype)
"""

# Forgets the D * x skip connection.
WRONG_NO_SKIP = OK.replace("y = torch.einsum(\"nhds,nhs->nhd\", s, Ch) + D.float()[None] * xf",
                           "y = torch.einsum(\"nhds,nhs->nhd\", s, Ch)")

# Head h reads group h % ngroups instead of h // (nheads / ngroups).
WRONG_GROUPS = OK.replace(
    "Bh = B[live].float().repeat_interleave(nheads // ngroups, dim=1)",
    "Bh = B[live].float().repeat(1, nheads // ngroups, 1)").replace(
    "Ch = C[live].float().repeat_interleave(nheads // ngroups, dim=1)",
    "Ch = C[live].float().repeat(1, nheads // ngroups, 1)")
assert OK not in (WRONG_NO_SKIP, WRONG_GROUPS)


def _slots(gen: Any, batch: int, cache: int, pads: list[int]) -> Any:
    """Distinct cache slots in random order; positions in ``pads`` get -1 (PAD_SLOT_ID)."""
    import torch

    idx = torch.randperm(cache, generator=gen)[:batch].to(torch.int32)
    idx[pads] = -1
    return idx


def make(gen: Any) -> Family:
    import torch

    workloads = []
    # (batch, cache slots, padded positions, realistic parameters from the blob)
    for batch, cache, pads, real in ((1, 3, [], False), (5, 9, [3], True), (11, 16, [0, 7], False)):
        file = f"ssu_b{batch}_c{cache}.safetensors"
        blob = {"state_batch_indices": _slots(gen, batch, cache, pads)}
        if real:
            a_log = torch.log(1.0 + 15.0 * torch.rand(NH, generator=gen))
            blob.update(
                state=torch.randn(cache, NH, HD, DS, generator=gen).to(torch.bfloat16),
                A=(-torch.exp(a_log))[:, None, None].expand(NH, HD, DS).contiguous(),
                D=torch.ones(NH, HD).to(torch.bfloat16),
                dt_bias=(torch.rand(NH, generator=gen) * -4.0 - 1.0)[:, None]
                .expand(NH, HD).to(torch.bfloat16).contiguous())
        inputs = {k: {"type": "random"} for k in DEF["inputs"]}
        inputs.update({k: {"type": "safetensors", "file": file, "tensor_key": k} for k in blob})
        workloads.append(Workload(NAME, {"batch_size": batch, "state_cache_size": cache},
                                  inputs, {file: blob}))
    return Family("mamba_ssu", [DEF], workloads, [
        Solution(f"{NAME}_py", NAME, OK, dps=True),
        Solution(f"{NAME}_no_skip", NAME, WRONG_NO_SKIP, "INCORRECT_NUMERICAL",
                 "leaves out the D * x skip connection", dps=True),
        Solution(f"{NAME}_group_modulo", NAME, WRONG_GROUPS, "INCORRECT_NUMERICAL",
                 "head h reads B/C group h % ngroups instead of h // (nheads / ngroups)", dps=True),
    ])
