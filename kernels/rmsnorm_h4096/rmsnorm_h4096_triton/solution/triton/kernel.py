"""RMSNorm over rows of 4096 bf16 values (Llama-3.1-8B hidden size), in Triton.

    y[i, :] = x[i, :] * rsqrt(mean(x[i, :]^2) + eps) * w          (fp32 math, bf16 out)

Memory traffic: read x (B * 4096 * 2 bytes), write y (same), read w once (8 KiB, stays in
L2). Arithmetic is ~4 flops per element, so the kernel is bound by DRAM bandwidth at large
batch and by launch latency plus one DRAM round trip at small batch.

Layout of the work: one program owns ROWS whole rows ([ROWS, 4096] tile held in registers), so
the sum of squares is a register/shuffle reduction inside the program and x is read exactly
once. Launch choices (``_launch_config``), measured on an H200 with bench/kernels_gpu.py
(docs/kernels.md has the sweep):
  * batch <= 256 (launch-latency bound) and > 4096 (bandwidth bound): one row, 8 warps;
  * around batch 1024: one row, 4 warps (more rows in flight per SM): 1.13x the plain kernel.
Several rows per program measured no better than one (within 1 %) at any batch. No
eviction_policy hints: evict_first/evict_last measured 3-5 % slower at batch >= 8192.
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
def _rmsnorm_kernel(
    X_ptr,
    X_row_stride,
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
    # int64 row offsets: 14509 rows * 4096 fits in int32, but strided views may not.
    x_ptrs = X_ptr + rows[:, None].to(tl.int64) * X_row_stride + cols[None, :]
    y_ptrs = Y_ptr + rows[:, None].to(tl.int64) * Y_row_stride + cols[None, :]

    if EVEN_ROWS:
        x = tl.load(x_ptrs).to(tl.float32)
    else:
        row_mask = (rows < n_rows)[:, None]
        x = tl.load(x_ptrs, mask=row_mask, other=0.0).to(
            tl.float32
        )
    w = tl.load(W_ptr + cols).to(tl.float32)

    inv_rms = tl.rsqrt(tl.sum(x * x, axis=1) / N + eps)
    # Same rounding order as the reference: (x * inv_rms) * w in fp32, then one cast.
    y = (x * inv_rms[:, None]) * w[None, :]
    y = y.to(Y_ptr.dtype.element_ty)
    if EVEN_ROWS:
        tl.store(y_ptrs, y)
    else:
        tl.store(y_ptrs, y, mask=row_mask)


def _launch_config(n_rows: int) -> tuple[int, int]:
    """(rows per program, warps per program) for a batch of n_rows."""
    if 256 < n_rows <= 4096:
        return 1, 4
    return 1, 8


def _check(hidden_states: torch.Tensor, weight: torch.Tensor, output: torch.Tensor) -> None:
    if hidden_states.ndim != 2 or hidden_states.shape[1] != HIDDEN:
        raise ValueError(
            f"rmsnorm_h4096: hidden_states must be [batch, {HIDDEN}], got {tuple(hidden_states.shape)}"
        )
    if weight.shape != (HIDDEN,) or output.shape != hidden_states.shape:
        raise ValueError(
            f"rmsnorm_h4096: weight must be [{HIDDEN}] and output {tuple(hidden_states.shape)}, "
            f"got {tuple(weight.shape)} and {tuple(output.shape)}"
        )
    if hidden_states.stride(1) != 1 or output.stride(1) != 1 or weight.stride(0) != 1:
        raise ValueError("rmsnorm_h4096: the hidden dimension must be contiguous (stride 1)")


def launch(hidden_states, weight, output, rows_per_program: int, num_warps: int) -> None:
    """Launch with an explicit configuration (used by run() and by the tuning sweep)."""
    n_rows = hidden_states.shape[0]
    if n_rows == 0:
        return
    grid = (triton.cdiv(n_rows, rows_per_program),)
    _rmsnorm_kernel[grid](
        hidden_states,
        hidden_states.stride(0),
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


def run(hidden_states: torch.Tensor, weight: torch.Tensor, output: torch.Tensor) -> None:
    """Destination-passing entry point: writes rmsnorm(hidden_states) * weight into output."""
    _check(hidden_states, weight, output)
    rows, warps = _launch_config(hidden_states.shape[0])
    launch(hidden_states, weight, output, rows, warps)
