"""Hints appended to a failure message: the likely cause in the solution's own JSON, and the fix.

Each takes the case (and what the worker said) and returns text to append, or "" when the hint does
not apply. A new hint goes here; ``runner.py`` decides where a message gets it.
"""

from __future__ import annotations

from .cases import Case


def binding_hint(case: Case) -> str:
    """Sources written against torch's extension API, built with the TVM-FFI default binding."""
    spec = case.solution.raw.get("spec", {})
    uses_torch = any("torch/extension.h" in src.get("content", "")
                     for src in case.solution.raw.get("sources", []))
    if spec.get("binding") in (None, "tvm-ffi") and uses_torch:
        return ("\nHint: the sources include <torch/extension.h> but spec.binding is "
                f"{spec.get('binding') or 'unset (tvm-ffi)'}: set \"binding\": \"torch\" in "
                f"{case.solution.path}.")
    return ""


def dps_hint(case: Case, message: str) -> str:
    """A solution JSON without destination_passing_style is destination-passing for
    flashinfer-bench 0.1.2 (outputs passed as arguments); many value-returning solutions omit it."""
    spec = case.solution.raw.get("spec", {})
    # pybind11, Python and hand-written checks word it differently (all seen in the public dataset)
    argument_error = any(m in message for m in ("incompatible function arguments", "positional",
                                                "takes", "arguments"))
    if "destination_passing_style" in spec or not argument_error:
        return ""
    return ("\nHint: the solution's spec has no destination_passing_style, which flashinfer-bench "
            "0.1.2 reads as true (outputs are passed as extra arguments); if its entry point "
            "returns its outputs, set \"destination_passing_style\": false "
            f"(in {case.solution.path}).")


def returned_hint(case: Case) -> str:
    """A destination-passing call that returned a tensor: the solution most likely computes into
    a new tensor and never writes the outputs it was given."""
    spec = case.solution.raw.get("spec", {})
    how = ("has no destination_passing_style, which flashinfer-bench 0.1.2 reads as true"
           if "destination_passing_style" not in spec else "sets destination_passing_style")
    return ("\nHint: the solution was called destination-passing style (outputs as extra "
            "arguments) and returned a tensor: does its entry point return its result instead "
            f"of writing the outputs? Its spec {how}; if so, set \"destination_passing_style\": "
            f"false (in {case.solution.path}).")
