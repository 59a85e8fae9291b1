"""Fused residual add + RMSNorm over rows of 4096 bf16 values (Llama-3.1-8B), in Triton.

    s[i, :] = x[i, :] + r[i, :]                                   (fp32)
    y[i, :] = s[i, :] * rsqrt(mean(s[i, :]^2) + eps) * w          (fp32 math, bf16 out)

This definition returns only ``output``; the residual sum is not written back.

Memory traffic: read x and r (2 * B * 4096 * 2 bytes), write y (B * 4096 * 2 bytes), read w
once (8 KiB, stays in L2): 3 bytes moved per 2 bytes of output, bandwidth bound at large batch,
launch-latency bound at small batch.

One program owns ROWS whole rows ([ROWS, 4096] tile in registers): the reduction stays inside
the program and every input byte is read once. Launch choices in ``_launch_config`` (measured on
an H200 with bench/kernels_gpu.py, sweep in docs/kernels.md): one row per program; 8 warps up to
batch 256 (latency bound), 4 warps above (1.12x the plain 8-warp kernel at batch 1024, equal at
>= 8192 where both run at copy speed). No eviction_policy hints: they cost 3-6 % at large batch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

HIDDEN = 4096
EPS = 1e-5


# n_rows only feeds the tail mask: not specialising on it (==1, %16) saves recompiles
# across batch sizes at no cost.
@triton.jit(do_not_specialize=["n_rows"])
def _fused_add_rmsnorm_kernel(
    X_ptr,
    X_row_stride,
    R_ptr,
    R_row_stride,
    W_ptr,
    Y_ptr,
    Y_row_stride,
    n_rows,
    eps,
    N: tl.constexpr,
    ROWS: tl.constexpr,
    EVEN_ROWS: tl.constexpr,
):
    pid = tl.program_id(0)
    rows = pid * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, N)
    rows64 = rows[:, None].to(tl.int64)
    x_ptrs = X_ptr + rows64 * X_row_stride + cols[None, :]
    r_ptrs = R_ptr + rows64 * R_row_stride + cols[None, :]
    y_ptrs = Y_ptr + rows64 * Y_row_stride + cols[None, :]

    if EVEN_ROWS:
        x = tl.load(x_ptrs).to(tl.float32)
        r = tl.load(r_ptrs).to(tl.float32)
    else:
        row_mask = (rows < n_rows)[:, None]
        x = tl.load(x_ptrs, mask=row_mask, other=0.0).to(
            tl.float32
        )
        r = tl.load(r_ptrs, mask=row_mask, other=0.0).to(
            tl.float32
        )
    w = tl.load(W_ptr + cols).to(tl.float32)

    s = x + r
    inv_rms = tl.rsqrt(tl.sum(s * s, axis=1) / N + eps)
    y = (s * inv_rms[:, None]) * w[None, :]
    y = y.to(Y_ptr.dtype.element_ty)
    if EVEN_ROWS:
        tl.store(y_ptrs, y)
    else:
        tl.store(y_ptrs, y, mask=row_mask)


def _launch_config(n_rows: int) -> tuple[int, int]:
    """(rows per program, warps per program) for a batch of n_rows."""
    if n_rows <= 256:
        return 1, 8
    return 1, 4


def _check(hidden_states, residual, weight, output) -> None:
    if hidden_states.ndim != 2 or hidden_states.shape[1] != HIDDEN:
        raise ValueError(
            "fused_add_rmsnorm_h4096: hidden_states must be [batch, "
            f"{HIDDEN}], got {tuple(hidden_states.shape)}"
        )
    if residual.shape != hidden_states.shape or output.shape != hidden_states.shape:
        raise ValueError(
            "fused_add_rmsnorm_h4096: residual and output must have hidden_states' shape "
            f"{tuple(hidden_states.shape)}, got {tuple(residual.shape)} and {tuple(output.shape)}"
        )
    if weight.shape != (HIDDEN,):
        raise ValueError(f"fused_add_rmsnorm_h4096: weight must be [{HIDDEN}], got {tuple(weight.shape)}")
    if any(t.stride(-1) != 1 for t in (hidden_states, residual, weight, output)):
        raise ValueError("fused_add_rmsnorm_h4096: the hidden dimension must be contiguous (stride 1)")


def launch(hidden_states, residual, weight, output, rows_per_program: int, num_warps: int) -> None:
    """Launch with an explicit configuration (used by run() and by the tuning sweep)."""
    n_rows = hidden_states.shape[0]
    if n_rows == 0:
        return
    grid = (triton.cdiv(n_rows, rows_per_program),)
    _fused_add_rmsnorm_kernel[grid](
        hidden_states,
        hidden_states.stride(0),
        residual,
        residual.stride(0),
        weight,
        output,
        output.stride(0),
        n_rows,
        EPS,
        N=HIDDEN,
        ROWS=rows_per_program,
        EVEN_ROWS=n_rows % rows_per_program == 0,
        num_warps=num_warps,
    )


def run(
    hidden_states: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, output: torch.Tensor
) -> None:
    """Destination-passing entry point: output = rmsnorm(hidden_states + residual) * weight."""
    _check(hidden_states, residual, weight, output)
    rows, warps = _launch_config(hidden_states.shape[0])
    launch(hidden_states, residual, weight, output, rows, warps)
