"""Which calling convention a solution uses, when its Solution JSON does not say.

flashinfer-bench 0.1.2 reads a missing ``destination_passing_style`` as true: the outputs are
passed as extra arguments. Many solutions that return their outputs omit it (36 of the public
rmsnorm items fail only on that). Where the entry point settles it -- a Python function's arity,
a compiled function's declared parameters -- this reads it from there and says so; where it is
ambiguous (defaults, ``*args``, a signature it cannot find) flashinfer-bench's reading stands.
``--fib-strict-spec`` always keeps flashinfer-bench's reading.

Reads source text only (no import, no torch): cheap, and it runs in the pytest process.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import PurePosixPath
from typing import Any


@dataclasses.dataclass(frozen=True)
class Convention:
    dps: bool  # destination passing style: run(*inputs, *outputs)
    note: str  # why, when not declared ("" when the spec says)


def decide(raw: dict[str, Any], n_inputs: int, n_outputs: int, strict: bool) -> Convention:
    spec = raw.get("spec", {})
    if "destination_passing_style" in spec:
        return Convention(bool(spec["destination_passing_style"]), "")
    entry = spec.get("entry_point", "")
    if strict:
        return Convention(True, "destination_passing_style not set: read as true, as "
                                "flashinfer-bench 0.1.2 does (--fib-strict-spec)")
    low, high = arity(raw)
    takes = f"{low}" if low == high else f"{low} to {high}"
    fits_value = low <= n_inputs <= high
    fits_dps = low <= n_inputs + n_outputs <= high
    if fits_value != fits_dps:
        style = "value-returning" if fits_value else "destination-passing"
        return Convention(fits_dps, (
            f"destination_passing_style not set; {entry} takes {takes} argument(s) and the "
            f"definition has {n_inputs} input(s) and {n_outputs} output(s): called "
            f"{style} (flashinfer-bench 0.1.2 would call it destination-passing; "
            "--fib-strict-spec does too)"))
    returns = native_returns(raw) if fits_value and fits_dps else None
    if returns is not None:
        style = "value-returning" if returns else "destination-passing"
        return Convention(not returns, (
            f"destination_passing_style not set; {entry} takes {takes} argument(s) and "
            + ("returns a value" if returns else "returns void") + f": called {style} "
            "(flashinfer-bench 0.1.2 would call it destination-passing; --fib-strict-spec "
            "does too)"))
    why = "its signature was not found" if high < 0 else f"it takes {takes} argument(s)"
    return Convention(True, f"destination_passing_style not set and {entry} is ambiguous "
                            f"({why}): called destination-passing, as flashinfer-bench 0.1.2 "
                            "does. Set it in the Solution JSON.")


def arity(raw: dict[str, Any]) -> tuple[int, int]:
    """(fewest, most) positional arguments the entry point accepts; (-1, -1) when unknown."""
    spec = raw.get("spec", {})
    file, _, symbol = spec.get("entry_point", "").partition("::")
    sources = {s.get("path", ""): s.get("content", "") for s in raw.get("sources", [])}
    if spec.get("language") in ("python", "triton"):
        return _python_arity(sources.get(file, ""), symbol)
    return _native_arity(raw)


def _python_arity(text: str, symbol: str) -> tuple[int, int]:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return -1, -1
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == symbol:
            args = node.args
            positional = len(args.posonlyargs) + len(args.args)
            if args.vararg is not None:
                return positional - len(args.defaults), 1 << 30
            return positional - len(args.defaults), positional
    return -1, -1


# Exports that name another function: TVM-FFI's macro and a pybind11/torch m.def.
_EXPORTS = (r"TVM_FFI_DLL_EXPORT_TYPED_FUNC\(\s*{sym}\s*,\s*&?([\w:]+)",
            r"\.def\(\s*\"{sym}\"\s*,\s*(?:py::overload_cast<[^>]*>\()?&?([\w:]+)")


def _native_arity(raw: dict[str, Any]) -> tuple[int, int]:
    text, target = _native_target(raw)
    m = _native_definition(text, target)
    if m is None:
        return -1, -1
    params = [p for p in _split_top(m.group(2)) if p.strip() and p.strip() != "void"]
    required = sum("=" not in p for p in params)
    return required, len(params)


def native_returns(raw: dict[str, Any]) -> bool | None:
    """Whether a compiled entry point returns a value (None: not compiled, or not found)."""
    spec = raw.get("spec", {})
    if spec.get("language") in ("python", "triton"):
        return None
    text, target = _native_target(raw)
    m = _native_definition(text, target)
    return None if m is None else m.group(1).split()[-1] != "void"


def _native_target(raw: dict[str, Any]) -> tuple[str, str]:
    symbol = raw.get("spec", {}).get("entry_point", "").partition("::")[2]
    text = "\n".join(s.get("content", "") for s in raw.get("sources", [])
                     if PurePosixPath(s.get("path", "")).suffix in NATIVE_SUFFIXES)
    # comments go first: "// bf16 [total_q,16,512]" beside a parameter holds commas
    text = re.sub(r"//[^\n]*|/\*.*?\*/", " ", text, flags=re.S)
    for pattern in _EXPORTS:
        m = re.search(pattern.format(sym=re.escape(symbol)), text)
        if m:
            return text, m.group(1).split("::")[-1]
    return text, symbol


NATIVE_SUFFIXES = (".cu", ".cuh", ".cpp", ".cc", ".cxx", ".h", ".hpp")


def _native_definition(text: str, target: str) -> Any:
    """A definition of ``target``: its return type, the name, a parameter list, then a body."""
    return re.search(r"([\w:<>,&*]+)\s*[&*]?\s+" + re.escape(target)
                     + r"\s*\(([^()]*(?:\([^()]*\)[^()]*)*)\)"
                     r"\s*(?:const\s*)?(?:noexcept\s*)?\{", text)


def _split_top(text: str) -> list[str]:
    """Split a parameter list at commas outside <...> and (...)."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch in "<(" and 1) or (ch in ">)" and -1) or 0
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts
