"""Verdicts: flashinfer-bench's tolerance rule, made strict where it is gameable.

flashinfer-bench 0.1.2 (bench/utils.py compute_error_stats): an element fails only if
``abs > atol and rel > rtol`` (rel = abs / (|ref| + 1e-8)); a tensor passes when the matched ratio
reaches ``required_matched_ratio`` (1.0 by default, 0.95 for MoE fp8 block-scale). Kept as is.

Where it is wrong, this is stricter:
* a NaN in the reference compares False both ways there, so any value passes: here a non-finite
  reference element must be matched exactly (NaN by NaN, +inf by +inf);
* outputs are poisoned before each call, so NaN left in an output means "not written";
* inputs are compared bit-for-bit with the pre-call values: a solution that mutates its inputs
  fails.
"""

from __future__ import annotations

import dataclasses
from typing import Any

SHOW = 5  # mismatching elements listed in a failure message


@dataclasses.dataclass
class Verdict:
    status: str  # PASSED, INCORRECT_SHAPE, INCORRECT_DTYPE, INCORRECT_NUMERICAL, INPUT_MUTATED
    message: str = ""
    max_abs: float = 0.0
    max_rel: float = 0.0
    matched_ratio: float = 1.0

    @property
    def passed(self) -> bool:
        return self.status == "PASSED"


def default_matched_ratio(definition_name: str) -> float:
    """flashinfer-bench's LowBitEvaluator: MoE fp8 block-scale kernels need 95% matched."""
    return 0.95 if "moe_fp8_block_scale" in definition_name else 1.0


# How an output is compared (``rules_for``):
CLOSE = "close"        # flashinfer-bench's abs-and-rel tolerance rule (floating-point outputs)
EXACT = "exact"        # integer outputs: equal, element for element
MULTISET = "multiset"  # top-k indices: each row the same indices, in any order
SAMPLES = "samples"    # sampling: judged by distribution (sampling.py), never element-wise


def rules_for(definition: dict[str, Any]) -> list[str]:
    """The comparison rule of each output, in definition order.

    flashinfer-bench 0.1.2 applies its float tolerance to every output, integers included: an
    index off by one passes wherever the index is above 100 (rel < 1e-2), and a top-k whose ties
    or order differ fails. Here integers match exactly; the indices of a top-k operator (op type
    ``topk``, or a definition named ``*topk*``) match as a set per row, since their order is not
    part of the contract; sampling outputs are random and judged statistically.
    """
    from .inputs import SAMPLING_OP_TYPES

    op_type, name = definition.get("op_type", ""), definition.get("name", "")
    rules = []
    for out_name, spec in definition.get("outputs", {}).items():
        dtype = spec.get("dtype", "")
        integral = dtype.startswith(("int", "uint")) or dtype == "bool"
        if integral and op_type in SAMPLING_OP_TYPES:
            rules.append(SAMPLES)
        elif integral and "indices" in out_name and (op_type == "topk" or "topk" in name):
            rules.append(MULTISET)
        elif integral:
            rules.append(EXACT)
        else:
            rules.append(CLOSE)
    return rules


def _mismatch_lines(bad: Any, out: Any, ref: Any) -> list[str]:
    lines = []
    for i in bad.nonzero()[:SHOW].tolist():
        at = tuple(i)
        lines.append(f"  at {list(at)}: got {out[at].item()!r}, expected {ref[at].item()!r}")
    return lines


def compare_exact(name: str, out: Any, ref: Any, rule: str) -> Verdict:
    """Integer outputs: equal everywhere (``MULTISET``: each row sorted first)."""
    import torch

    x, y = out.to(ref.device), ref
    if rule == MULTISET and x.dim() > 0:
        x, y = torch.sort(x, dim=-1).values, torch.sort(y, dim=-1).values
    bad = x != y
    n_bad = int(bad.sum().item())
    if n_bad == 0:
        return Verdict("PASSED")
    how = "as a set per row (order free)" if rule == MULTISET else "exactly"
    lines = [f"output {name!r}: {n_bad} of {bad.numel()} elements differ; integer outputs must "
             f"match {how}" + (" (both sides sorted per row below)" if rule == MULTISET else "")]
    lines += _mismatch_lines(bad, x, y)
    return Verdict("INCORRECT_NUMERICAL", "\n".join(lines), matched_ratio=1 - n_bad / bad.numel())


def compare_tensor(name: str, out: Any, ref: Any, atol: float, rtol: float,
                   required: float, rule: str = CLOSE) -> Verdict:
    import torch

    if not isinstance(out, torch.Tensor):
        return Verdict("INCORRECT_SHAPE", f"output {name!r}: got {type(out).__name__}, "
                                          f"expected a tensor of shape {tuple(ref.shape)}")
    if tuple(out.shape) != tuple(ref.shape):
        return Verdict("INCORRECT_SHAPE", f"output {name!r}: shape {tuple(out.shape)}, expected "
                                          f"{tuple(ref.shape)}")
    if out.dtype != ref.dtype:
        return Verdict("INCORRECT_DTYPE",
                       f"output {name!r}: dtype {out.dtype}, expected {ref.dtype}")
    if out.numel() == 0:
        return Verdict("PASSED")
    if rule == SAMPLES:
        return Verdict("PASSED")  # random by design: judged by distribution (sampling.py)
    if rule in (EXACT, MULTISET):
        return compare_exact(name, out, ref, rule)
    x = out.detach().to(device=ref.device, dtype=torch.float32)
    y = ref.detach().to(torch.float32)
    abs_err = (x - y).abs()
    rel_err = abs_err / (y.abs() + 1e-8)
    finite_ref = torch.isfinite(y)
    # Non-finite reference elements: must match exactly (NaN==NaN, inf==inf).
    special_ok = (torch.isnan(x) & torch.isnan(y)) | (x == y)
    bad = torch.where(finite_ref, (abs_err > atol) & (rel_err > rtol) | ~torch.isfinite(x),
                      ~special_ok)
    n_bad = int(bad.sum().item())
    total = bad.numel()
    ratio = 1.0 - n_bad / total
    finite_both = finite_ref & torch.isfinite(x)
    max_abs = float(abs_err[finite_both].max().item()) if finite_both.any() else 0.0
    max_rel = float(rel_err[finite_both].max().item()) if finite_both.any() else 0.0
    n_nan = int((torch.isnan(x) & ~torch.isnan(y)).sum().item())
    if n_bad == 0 or (ratio >= required and n_nan == 0):
        return Verdict("PASSED", max_abs=max_abs, max_rel=max_rel, matched_ratio=ratio)
    lines = [f"output {name!r}: {n_bad} of {total} elements outside tolerance "
             f"(atol={atol:g}, rtol={rtol:g}); matched ratio {ratio:.6f} < required {required:g}"
             if ratio < required else
             f"output {name!r}: {n_nan} element(s) NaN where the reference is finite"]
    lines.append(f"  max abs error {max_abs:.6g}, max rel error {max_rel:.6g} (finite elements)")
    if n_nan:
        lines.append(f"  {n_nan} NaN element(s) where the reference is not NaN: the poison "
                     "written before the call was left there (output not written?) or the "
                     "kernel produced NaN")
    lines += _mismatch_lines(bad, out, ref)
    return Verdict("INCORRECT_NUMERICAL", "\n".join(lines), max_abs, max_rel, ratio)


def compare_outputs(names: list[str], outs: list[Any], refs: list[Any], atol: float,
                    rtol: float, required: float, rules: list[str] | None = None) -> Verdict:
    if len(outs) != len(refs):
        return Verdict("INCORRECT_SHAPE", f"returned {len(outs)} output(s), the definition has "
                                          f"{len(refs)}: {names}")
    worst = Verdict("PASSED", matched_ratio=1.0)
    for name, out, ref, rule in zip(names, outs, refs, rules or [CLOSE] * len(refs),
                                    strict=False):
        v = compare_tensor(name, out, ref, atol, rtol, required, rule)
        if not v.passed:
            return v
        worst = Verdict("PASSED", max_abs=max(worst.max_abs, v.max_abs),
                        max_rel=max(worst.max_rel, v.max_rel),
                        matched_ratio=min(worst.matched_ratio, v.matched_ratio))
    return worst


def mutated_inputs(names: list[str], before: list[Any], after: list[Any]) -> str | None:
    """A message naming each input the solution changed, or None."""
    import torch

    changed = []
    for name, b, a in zip(names, before, after, strict=False):
        if not isinstance(b, torch.Tensor):
            continue
        if not isinstance(a, torch.Tensor) or a.shape != b.shape or a.dtype != b.dtype:
            changed.append(f"{name} (replaced)")
            continue
        here = a.to(b.device)
        # NaN is the one value unequal to itself: a NaN left as it was is not a change
        both_nan = (here != here) & (b != b)  # noqa: PLR0124
        same = torch.equal(here, b) or bool(((here == b) | both_nan).all().item())
        if not same:
            n = int(((here != b) & ~both_nan).sum().item())
            changed.append(f"{name} ({n} of {b.numel()} elements changed)")
    if changed:
        return ("solution modified its input(s): " + ", ".join(changed) +
                ". Inputs are read-only: write results only to the outputs.")
    return None
