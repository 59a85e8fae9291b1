"""Building solutions in the worker: flashinfer-bench's builders, plus a compile check for CUDA/C++
with the torch binding on machines without a GPU.

flashinfer-bench's TorchBuilder refuses to exist without CUDA (``is_available`` is
``torch.cuda.is_available()``) and, where it runs, hides compiler errors behind torch's "Error
building extension". Here every build's compiler output is captured at the file-descriptor level
(ninja and nvcc write there directly), and a failure shows the compiler's own error lines.

Build once, fail once: results (and errors) are cached per solution hash for the worker's life,
and CUDA/C++ builds across sessions in the persistent build cache (buildcache.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

_ERROR_LINE = re.compile(r"(error|Error|ERROR|undefined reference|fatal)")


_STUB_USE = re.compile(r"\b(cublas|cusparse|cusolver)[A-Za-z_]*")


class CheckUnavailable(Exception):
    """The compile check cannot judge this solution on this machine (missing library headers)."""


class MissingPackage(Exception):
    """The solution needs a Python package this environment lacks: not the solution's fault, and
    nothing to judge until it is installed."""

    def __init__(self, module: str) -> None:
        self.module = module
        pip = PIP_NAMES.get(module, module.replace("_", "-"))
        super().__init__(f"needs package {module}: pip install {pip}")


# Import name -> distribution name, where they differ (as solutions' spec.dependencies and
# imports name them).
PIP_NAMES = {"flashinfer": "flashinfer-python", "cutlass": "nvidia-cutlass-dsl",
             "cuda": "cuda-python", "tvm_ffi": "apache-tvm-ffi", "sgl_kernel": "sgl-kernel",
             "deep_gemm": "deep-gemm", "tilelang": "tilelang", "triton": "triton"}
IMPORT_NAMES = {dist: mod for mod, dist in PIP_NAMES.items()}
_NO_MODULE = re.compile(r"No module named '([A-Za-z_][\w.]*)'")


def missing_dependency(solution: Any) -> str | None:
    """The first of the solution's declared dependencies that cannot be imported here."""
    import importlib.util

    for dep in solution.spec.dependencies or []:
        name = re.split(r"[<>=!~\[ ;]", str(dep).strip(), maxsplit=1)[0]
        module = IMPORT_NAMES.get(name, name.replace("-", "_"))
        if module in ("torch", "python") or not module.isidentifier():
            continue
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return module
    return None


def missing_module(text: str, solution: Any) -> str | None:
    """The package a ``No module named 'x'`` error names, unless x is one of the solution's own
    files (then the solution is broken, not the environment)."""
    match = _NO_MODULE.search(text)
    if match is None:
        return None
    top = match.group(1).split(".")[0]
    own = {Path(src.path).with_suffix("").parts[0] for src in solution.sources}
    return None if top in own else top


class BuildFailure(Exception):
    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log


def compiler_errors(log: str, limit: int = 30) -> str:
    """The compiler's own error lines (with the line after each, which often holds the caret)."""
    lines = log.splitlines()
    picked: list[str] = []
    for i, line in enumerate(lines):
        if _ERROR_LINE.search(line) and not line.lstrip().startswith(("[", "ninja: build stopped")):
            picked.extend(lines[i:i + 2])
        if len(picked) >= limit:
            break
    return "\n".join(dict.fromkeys(picked)) or "\n".join(lines[-limit:])


@contextlib.contextmanager
def capture_fds() -> Iterator[list[str]]:
    """Redirect fds 1 and 2 (what subprocesses like ninja and nvcc inherit) into a buffer."""
    out: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(1), os.dup(2)
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            tmp.seek(0)
            out.append(tmp.read().decode("utf-8", "replace"))
            sys.stdout.write(out[-1])  # keep it in the worker log too


class Builder:
    """Per-worker build cache: solution hash -> Runnable or BuildFailure."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def build(self, definition: Any, solution: Any, device: str) -> Any:
        """A Runnable, or None when the solution was compile-checked only (no GPU to run it)."""
        key = solution.hash()
        if key not in self._cache:
            try:
                self._cache[key] = self._build(definition, solution, device)
            except (BuildFailure, CheckUnavailable) as e:
                self._cache[key] = e
        cached = self._cache[key]
        if isinstance(cached, (BuildFailure, CheckUnavailable)):
            raise cached
        return cached

    def _build(self, definition: Any, solution: Any, device: str) -> Any:
        if solution.spec.language.value in ("cuda", "cpp"):  # through the build cache
            from .buildcache import cached

            return cached(solution, device, lambda: self.compile(definition, solution, device))
        return self.compile(definition, solution, device)

    def compile(self, definition: Any, solution: Any, device: str) -> Any:
        from flashinfer_bench.compile import BuilderRegistry

        language = solution.spec.language.value
        binding = solution.spec.binding.value if solution.spec.binding else None
        if language == "triton":
            try:
                import triton  # noqa: F401
            except ImportError:
                raise BuildFailure("triton is not installed: pip install triton "
                                   "(on a CPU it runs in its interpreter)") from None
        if device == "cpu" and language in ("cuda", "cpp") and binding == "torch":
            compile_check_torch(solution)
            return None
        error: Exception | None = None
        with capture_fds() as log:
            try:
                runnable = BuilderRegistry.get_instance().build(definition, solution)
            except Exception as e:  # noqa: BLE001 -- BuildError, and anything a builder lets escape
                error = e
        if error is not None:
            raise BuildFailure(str(error), log[0] if log else "")
        return runnable


def _torch_flags() -> tuple[list[str], list[str]]:
    import torch
    from torch.utils import cpp_extension

    # include_paths("cuda") needs a CUDA build of torch (its CUDA_HOME is None on a CPU build), so
    # add the toolkit's headers by hand: torch's own CUDA headers ship in every build.
    includes = cpp_extension.include_paths()
    includes.append(str(Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "include"))
    includes.append(sysconfig.get_paths()["include"])
    abi = int(getattr(torch._C, "_GLIBCXX_USE_CXX11_ABI", 1))
    stubs = Path(__file__).parent / "cuda_stubs"
    common = [f"-I{p}" for p in includes] + ["-isystem", str(stubs),
        "-DTORCH_API_INCLUDE_EXTENSION_H", "-DTORCH_EXTENSION_NAME=fib_check",
        f"-D_GLIBCXX_USE_CXX11_ABI={abi}", "-std=c++17"]
    return common, includes


def compile_check_torch(solution: Any) -> None:
    """Compile every translation unit of a torch-binding solution (no link, no run): catches the
    compiler errors flashinfer-bench would hide, on a machine where it cannot build at all."""
    cuda_home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    nvcc = str(Path(cuda_home) / "bin" / "nvcc")
    arch = (os.environ.get("TORCH_CUDA_ARCH_LIST") or os.environ.get("TVM_FFI_CUDA_ARCH_LIST")
            or "9.0").split()[0].replace(".", "").replace("a", "")
    common, _ = _torch_flags()
    with tempfile.TemporaryDirectory(prefix="fib-compile-") as tmp:
        root = Path(tmp)
        units = []
        for src in solution.sources:
            path = root / src.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(src.content)
            if path.suffix in (".cu", ".cpp", ".cc", ".cxx", ".c"):
                units.append(path)
        cmds = []
        for unit in units:
            inc = [f"-I{root}", f"-I{unit.parent}"]
            if unit.suffix == ".cu":
                cmds.append([nvcc, "-c", str(unit), "-o", os.devnull, *common, *inc,
                             f"-gencode=arch=compute_{arch},code=sm_{arch}",
                             "--expt-relaxed-constexpr", "-Xcompiler", "-fPIC",
                             "-D__CUDA_NO_HALF_OPERATORS__", "-D__CUDA_NO_HALF_CONVERSIONS__",
                             "-D__CUDA_NO_BFLOAT16_CONVERSIONS__", "-D__CUDA_NO_HALF2_OPERATORS__"])
            else:
                cmds.append(["c++", "-fsyntax-only", str(unit), *common, *inc,
                             f"-I{Path(cuda_home) / 'include'}", "-fPIC"])
        if not cmds:
            raise BuildFailure("no C++/CUDA translation unit among the sources")
        if not Path(nvcc).exists() and any(u.suffix == ".cu" for u in units):
            raise BuildFailure(f"nvcc not found at {nvcc}: set CUDA_HOME to your CUDA toolkit")

        def run(cmd: list[str]) -> tuple[int, str]:
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, check=False)
            return proc.returncode, (proc.stdout + proc.stderr).replace(tmp + "/", "")

        with ThreadPoolExecutor(max_workers=max(1, min(len(cmds), os.cpu_count() or 1))) as ex:
            results = list(ex.map(run, cmds))
        failed = [(u.name, out) for u, (rc, out) in zip(units, results, strict=False) if rc != 0]
        stubbed = _STUB_USE.search("\n".join(out for _, out in failed))
        if failed and stubbed:
            raise CheckUnavailable(
                f"it uses {stubbed.group(0)}, and this machine's CUDA toolkit has no "
                f"{stubbed.group(1)} headers (install the full toolkit, or run on a GPU machine)")
        if failed:
            import torch

            log = "\n".join(f"--- {name}\n{out}" for name, out in failed)
            raise BuildFailure(
                f"compilation failed in {', '.join(n for n, _ in failed)} (compile check without "
                f"a GPU: torch {torch.__version__} headers, {Path(nvcc).resolve()}; "
                "flashinfer-bench builds the same sources the same way on a GPU machine)", log)
