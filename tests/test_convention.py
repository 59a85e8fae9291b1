"""Which calling convention a Solution JSON without destination_passing_style gets."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_fib.convention import arity, decide


def sol(code: str, *, language: str = "python", entry: str = "main.py::run",
        path: str = "main.py", **spec: Any) -> dict[str, Any]:
    return {"name": "s", "spec": {"language": language, "entry_point": entry, **spec},
            "sources": [{"path": path, "content": code}]}


@pytest.mark.parametrize("code, expected", [
    ("def run(a, b):\n    return a\n", (2, 2)),
    ("def run(a, b, c=None):\n    pass\n", (2, 3)),
    ("def run(a, *rest):\n    pass\n", (1, 1 << 30)),
    ("def other(a):\n    pass\n", (-1, -1)),
    ("def run(:\n", (-1, -1)),
])
def test_python_arity(code: str, expected: tuple[int, int]) -> None:
    assert arity(sol(code)) == expected


def test_value_returning_python_entry_point_is_called_so_and_says_why() -> None:
    how = decide(sol("def run(x, w):\n    return x * w\n"), n_inputs=2, n_outputs=1, strict=False)
    assert how.dps is False
    assert "takes 2 argument(s)" in how.note and "value-returning" in how.note


def test_destination_passing_entry_point() -> None:
    how = decide(sol("def run(x, w, y):\n    y.copy_(x)\n"), 2, 1, strict=False)
    assert how.dps is True and "destination-passing" in how.note


def test_ambiguous_keeps_flashinfer_bench_reading_and_asks_to_declare() -> None:
    how = decide(sol("def run(x, w, y=None):\n    pass\n"), 2, 1, strict=False)
    assert how.dps is True and "ambiguous" in how.note and "Set it" in how.note


def test_declared_wins_and_strict_keeps_true() -> None:
    assert decide(sol("def run(x, w):\n    pass\n", destination_passing_style=True), 2, 1,
                  strict=False).note == ""
    how = decide(sol("def run(x, w):\n    return x\n"), 2, 1, strict=True)
    assert how.dps is True and "--fib-strict-spec" in how.note


TORCH_BINDING = """
#include <torch/extension.h>
torch::Tensor rms_impl(torch::Tensor x, torch::Tensor w) { return x; }
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("run", &rms_impl); }
"""
TVM_FFI = """
void RmsNorm(tvm::ffi::TensorView x, tvm::ffi::TensorView w, tvm::ffi::TensorView out) {}
TVM_FFI_DLL_EXPORT_TYPED_FUNC(run, RmsNorm);
"""
COMMENTED = """
std::vector<torch::Tensor> run(
    torch::Tensor q,   // bf16 [total_q,16,512]
    torch::Tensor k,   /* [n, 8] */
    c10::optional<double> scale
) { return {q}; }
"""
OPTIONAL = """
torch::Tensor run(torch::Tensor a, torch::Tensor b, c10::optional<torch::Tensor> c = c10::nullopt) {
  return a;
}
"""


@pytest.mark.parametrize("code, dps, words", [
    (TORCH_BINDING, False, "takes 2"),
    (TVM_FFI, True, "takes 3"),
    (OPTIONAL, False, "returns a value"),
    (COMMENTED, True, "takes 3 argument"),  # commas in comments are not parameters  # arity fits both: the return type settles it
])
def test_native_signatures(code: str, dps: bool, words: str) -> None:
    how = decide(sol(code, language="cuda", entry="main.cpp::run", path="main.cpp"), 2, 1,
                 strict=False)
    assert how.dps is dps and words in how.note
