"""Gated Delta Net decode step, k-last state [B, HV, V, K], in Triton (Qwen3-Next, TP=4).

Per (batch b, value head h), with query/key head hk = h // (HV // HQ):

    g      = exp(-exp(A_log[h]) * softplus(a[b, h] + dt_bias[h]))
    beta   = sigmoid(b[b, h])
    S      = g * state[b, h]                       [V, K]
    old_v  = S @ k[b, hk]                          [V]   (a dot over K per row)
    S'     = S + (beta * (v[b, h] - old_v))[:, None] * k[b, hk][None, :]
    out    = scale * S' @ q[b, hk]                 [V]

Every row v of the state is independent (two dot products over its own K values), so the state
is split into blocks of BV rows and each program owns one [BV, K] fp32 tile: read once, written
once, no cross-program traffic.

Memory traffic: the state dominates: read B*HV*V*K*4 bytes + write the same (128 KiB per
(b, h)); q, k, v, gates and the output add < 1 %. About 6 flops per state element: bound by
bandwidth for batch >= ~32, by launch latency below.

Launch choices (``_launch_config``; measured on an H200 with bench/kernels_gpu.py, sweep in
docs/kernels.md): 32-row blocks below batch 8, 64-row blocks to batch 31, and from batch 32 the
whole [128, 128] state of a (b, h) per 8-warp program. No eviction_policy hint on the state: it
cost ~4 % at batch 1024.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

HQ, HK, HV, DK, DV = 4, 4, 8, 128, 128


@triton.jit
def _gdn_decode_kernel(
    Q_ptr, stride_qb, stride_qh,
    K_ptr, stride_kb, stride_kh,
    V_ptr, stride_vb, stride_vh,
    S_ptr, stride_sb, stride_sh, stride_sv,
    Alog_ptr,
    A_ptr, stride_ab, stride_ah,
    Dt_ptr,
    Bg_ptr, stride_bb, stride_bh,
    O_ptr, stride_ob, stride_oh,
    NS_ptr, stride_nsb, stride_nsh, stride_nsv,
    scale,
    NUM_V_HEADS: tl.constexpr,
    GROUP: tl.constexpr,
    DK: tl.constexpr,
    BV: tl.constexpr,
    HAS_STATE: tl.constexpr,
):  # fmt: skip
    pid_bh = tl.program_id(0)
    pid_v = tl.program_id(1)
    b = pid_bh // NUM_V_HEADS
    h = pid_bh % NUM_V_HEADS
    hk = h // GROUP  # grouped value heads: v heads 2j, 2j+1 read q/k head j
    b64 = b.to(tl.int64)

    offs_k = tl.arange(0, DK)
    offs_v = pid_v * BV + tl.arange(0, BV)

    # Gates for this (b, h): scalars, fp32 math. softplus in the overflow-safe form
    # max(x, 0) + log(1 + exp(-|x|)).
    x = tl.load(A_ptr + b64 * stride_ab + h * stride_ah).to(tl.float32) + tl.load(Dt_ptr + h)
    softplus = tl.maximum(x, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(x)))
    g = tl.exp(-tl.exp(tl.load(Alog_ptr + h)) * softplus)
    beta = 1.0 / (1.0 + tl.exp(-tl.load(Bg_ptr + b64 * stride_bb + h * stride_bh).to(tl.float32)))

    q = tl.load(Q_ptr + b64 * stride_qb + hk * stride_qh + offs_k).to(tl.float32)
    k = tl.load(K_ptr + b64 * stride_kb + hk * stride_kh + offs_k).to(tl.float32)
    v = tl.load(V_ptr + b64 * stride_vb + h * stride_vh + offs_v).to(tl.float32)

    if HAS_STATE:
        s_ptrs = S_ptr + b64 * stride_sb + h * stride_sh + offs_v[:, None] * stride_sv + offs_k[None, :]
        s = tl.load(s_ptrs) * g
    else:
        s = tl.zeros((BV, DK), dtype=tl.float32)

    old_v = tl.sum(s * k[None, :], axis=1)  # [BV]
    delta = beta * (v - old_v)
    s = s + delta[:, None] * k[None, :]
    out = scale * tl.sum(s * q[None, :], axis=1)

    ns_ptrs = NS_ptr + b64 * stride_nsb + h * stride_nsh + offs_v[:, None] * stride_nsv + offs_k[None, :]
    tl.store(ns_ptrs, s)
    tl.store(O_ptr + b64 * stride_ob + h * stride_oh + offs_v, out.to(O_ptr.dtype.element_ty))


def _launch_config(batch: int) -> tuple[int, int]:
    """(V rows per program, warps per program)."""
    if batch < 8:
        return 32, 8
    if batch < 32:
        return 64, 8
    return 128, 8


def _check(q, k, v, state, A_log, a, dt_bias, b, output, new_state) -> None:
    B = q.shape[0]
    want = {
        "q": (q, (B, 1, HQ, DK)),
        "k": (k, (B, 1, HK, DK)),
        "v": (v, (B, 1, HV, DV)),
        "A_log": (A_log, (HV,)),
        "a": (a, (B, 1, HV)),
        "dt_bias": (dt_bias, (HV,)),
        "b": (b, (B, 1, HV)),
        "output": (output, (B, 1, HV, DV)),
        "new_state": (new_state, (B, HV, DV, DK)),
    }
    if state is not None:
        want["state"] = (state, (B, HV, DV, DK))
    for name, (t, shape) in want.items():
        if tuple(t.shape) != shape:
            raise ValueError(
                f"gdn_decode_qk4_v8_d128_k_last: {name} must have shape {shape}, got {tuple(t.shape)}"
            )
        if t.stride(-1) != 1:
            raise ValueError(f"gdn_decode_qk4_v8_d128_k_last: {name} must be contiguous in its last dim")
    for name, t in (("state", state), ("new_state", new_state), ("A_log", A_log), ("dt_bias", dt_bias)):
        if t is not None and t.dtype != torch.float32:
            raise ValueError(f"gdn_decode_qk4_v8_d128_k_last: {name} must be float32, got {t.dtype}")


def launch(q, k, v, state, A_log, a, dt_bias, b, scale, output, new_state, block_v: int, num_warps: int):
    """Launch with an explicit configuration (used by run() and by the tuning sweep)."""
    B = q.shape[0]
    if B == 0:
        return
    if DV % block_v:
        raise ValueError(f"block_v must divide {DV}, got {block_v}")
    if scale is None or scale == 0.0:
        scale = 1.0 / math.sqrt(DK)
    s = state if state is not None else new_state  # dummy pointer when HAS_STATE is False
    grid = (B * HV, DV // block_v)
    _gdn_decode_kernel[grid](
        q, q.stride(0), q.stride(2),
        k, k.stride(0), k.stride(2),
        v, v.stride(0), v.stride(2),
        s, s.stride(0), s.stride(1), s.stride(2),
        A_log,
        a, a.stride(0), a.stride(2),
        dt_bias,
        b, b.stride(0), b.stride(2),
        output, output.stride(0), output.stride(2),
        new_state, new_state.stride(0), new_state.stride(1), new_state.stride(2),
        float(scale),
        NUM_V_HEADS=HV,
        GROUP=HV // HQ,
        DK=DK,
        BV=block_v,
        HAS_STATE=state is not None,
        num_warps=num_warps,
    )  # fmt: skip


def run(q, k, v, state, A_log, a, dt_bias, b, scale, output, new_state) -> None:
    """Destination-passing entry point: writes output [B,1,HV,V] and new_state [B,HV,V,K]."""
    _check(q, k, v, state, A_log, a, dt_bias, b, output, new_state)
    block_v, warps = _launch_config(q.shape[0])
    launch(q, k, v, state, A_log, a, dt_bias, b, scale, output, new_state, block_v, warps)
