"""The persistent build cache (issue 15): a second session compiles nothing, an edit rebuilds only
the edited kernel, a failed build is reported again from the cache, --fib-rebuild rebuilds, two
sessions at once share one build, a bad --fib-cache-dir is a usage error.

C++ solutions with the TVM-FFI binding build (and run) on a CPU; the compiler is a wrapper ($CXX)
that records every call, so "not compiled again" is counted, never timed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import helpers
import pytest

pytestmark = pytest.mark.skipif(shutil.which("c++") is None, reason="needs a C++ compiler")

KERNEL = """#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/function.h>
// {tag}
void Scale(tvm::ffi::TensorView x, tvm::ffi::TensorView y) {{
  const float* a = static_cast<const float*>(x.data_ptr());
  float* b = static_cast<float*>(y.data_ptr());
  int64_t n = 1;
  for (int i = 0; i < x.ndim(); ++i) n *= x.size(i);
  for (int64_t i = 0; i < n; ++i) b[i] = {factor} * a[i];
}}
TVM_FFI_DLL_EXPORT_TYPED_FUNC(run, Scale);
"""


def add_cpp_kit(kernels: Path, name: str, *, factor: str = "2", tag: str = "",
                body: str | None = None) -> Path:
    folder = kernels / name
    src = folder / "solution" / "cpp"
    src.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(
        helpers.config_toml(name, language="cpp", entry="kernel.cpp::run")
        + 'binding = "tvm-ffi"\n')
    (src / "kernel.cpp").write_text(body if body is not None else
                                    KERNEL.format(tag=tag or name, factor=factor))
    return folder


class Session:
    """A project with C++ kits, run in subprocesses against one cache folder, through a compiler
    wrapper that logs its calls."""

    def __init__(self, root: Path, before: str = "") -> None:
        """``before``: shell run before each compiler call (not version probes)."""
        self.root = root
        self.data, self.kernels = helpers.project(root, kits=())
        self.cache = root / "cache"
        self.calls = root / "compiler-calls.log"
        self.calls.touch()
        wrapper = root / "cxx-wrap"
        wrapper.write_text("#!/bin/sh\ncase \"$*\" in *--version*) ;; *) echo \"$*\" >> "
                           f"{self.calls}; {before or ':'} ;; esac\nexec c++ \"$@\"\n")
        wrapper.chmod(0o755)
        self.env = helpers.clean_env(root / "fib-bench-cache")
        self.env.update(CXX=str(wrapper), PYTHONPATH=os.pathsep.join(
            p for p in (str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH")) if p))
        self.env.setdefault("CUDA_HOME", "/usr/local/cuda")
        self.env.pop("PYTEST_FIB_CACHE_DIR", None)
        self.env.pop("PYTEST_FIB_REBUILD", None)

    def args(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                f"--fib-dataset={self.data}", f"--fib-cache-dir={self.cache}", *helpers.FAST, "-m", "correctness", "-rA",
                *extra]

    def start(self, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.args(*extra), cwd=self.root, env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def run(self, *extra: str) -> tuple[int, str]:
        proc = self.start(*extra)
        out, _ = proc.communicate(timeout=900)
        return proc.returncode, out

    def compiles(self) -> list[str]:
        """Compiler calls so far that compiled a source file (not links, not probes)."""
        return [line for line in self.calls.read_text().splitlines() if "kernel.cpp" in line]


@pytest.fixture
def session(tmp_path: Path) -> Session:
    return Session(tmp_path)


def test_second_session_compiles_nothing_and_an_edit_rebuilds_only_that_kernel(
        session: Session) -> None:
    add_cpp_kit(session.kernels, "ffi_a")
    add_cpp_kit(session.kernels, "ffi_b")
    rc, out = session.run()
    assert rc == 0, out
    assert "build cache " + str(session.cache) + ": 0 of 2 solutions cached" in out
    assert "6 passed" in out
    first = session.compiles()
    assert any("ffi_a" in c for c in first) and any("ffi_b" in c for c in first), first

    rc, out = session.run()
    assert rc == 0, out
    assert ": 2 of 2 solutions cached" in out, out
    assert "6 passed" in out
    assert session.compiles() == first  # nothing compiled again

    add_cpp_kit(session.kernels, "ffi_a", tag="edited")  # same name, new source
    rc, out = session.run()
    assert rc == 0, out
    assert ": 1 of 2 solutions cached" in out, out
    new = session.compiles()[len(first):]
    assert new and all("ffi_a" in c for c in new), new  # only the edited kernel
    # ffi_b (cached) ran first, while ffi_a built: collection order is a before b
    ran = [line for line in out.splitlines() if line.startswith("PASSED ")]
    assert ["ffi_b" in line for line in ran] == [True] * 3 + [False] * 3, ran

    rc, out = session.run("--fib-rebuild")
    assert rc == 0, out
    assert "--fib-rebuild: every one is built again" in out
    rebuilt = session.compiles()[len(first) + len(new):]
    assert any("ffi_a" in c for c in rebuilt) and any("ffi_b" in c for c in rebuilt), rebuilt
    # each solution built once in that session, although the pool and the worker both ask
    assert sum("ffi_b" in c for c in rebuilt) == sum("ffi_b" in c for c in first)


def test_a_failed_build_is_cached_with_its_log_until_the_source_changes(
        session: Session) -> None:
    add_cpp_kit(session.kernels, "broken", body=KERNEL.format(tag="x", factor="undeclared_k"))
    rc, out = session.run()
    assert rc != 0, out
    assert "COMPILE_ERROR" in out and "undeclared_k" in out, out
    calls = session.compiles()
    assert calls

    rc, again = session.run()
    assert rc != 0
    assert ": 1 of 1 solutions cached (1 failed build(s) cached with their logs)" in again
    assert "COMPILE_ERROR" in again and "undeclared_k" in again, again
    assert "cached build result from" in again and "--fib-rebuild" in again
    assert session.compiles() == calls  # reported again without compiling

    add_cpp_kit(session.kernels, "broken", factor="2")  # fixed
    rc, out = session.run()
    assert rc == 0, out
    assert ": 0 of 1 solutions cached" in out
    assert len(session.compiles()) > len(calls)


def test_two_sessions_at_once_build_each_solution_once(session: Session) -> None:
    for name in ("ffi_a", "ffi_b", "ffi_c"):
        add_cpp_kit(session.kernels, name)
    procs = [session.start(), session.start()]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    for proc, out in zip(procs, outs):
        assert proc.returncode == 0, out
        assert "9 passed" in out, out
    calls = session.compiles()
    for name in ("ffi_a", "ffi_b", "ffi_c"):
        assert sum(name in c for c in calls) == 1, calls  # one compile of its one source file
    rc, out = session.run("-n", "2")
    assert rc == 0, out
    assert session.compiles() == calls


@pytest.mark.parametrize("kind", ["file", "under-file", "unwritable"])
def test_a_bad_cache_dir_is_a_usage_error(pytester: pytest.Pytester, kind: str) -> None:
    data, _ = helpers.project(pytester.path)
    blocker = pytester.path / "blocker"
    blocker.write_text("")
    target = {"file": blocker, "under-file": blocker / "cache",
              "unwritable": pytester.path / "ro"}[kind]
    if kind == "unwritable":
        if os.geteuid() == 0:
            pytest.skip("root writes everywhere")
        target.mkdir()
        target.chmod(0o500)
    result = pytester.runpytest_subprocess(f"--fib-dataset={data}", f"--fib-cache-dir={target}",
                                           *helpers.FAST)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([("*--fib-cache-dir=*Give --fib-cache-dir a folder pytest-fib "
                                  "can create and write*")])


def test_the_key_is_the_same_from_the_dataset_json_and_the_workers_model(tmp_path: Path) -> None:
    from pytest_fib import buildcache, local
    from pytest_fib.models import validate

    kernels = tmp_path / "kernels"
    add_cpp_kit(kernels, "one")
    (sol,), problems = local.discover(kernels)
    assert not problems
    env = {"TVM_FFI_CUDA_ARCH_LIST": "9.0"}
    model = validate("solution", sol.raw, sol.path).model_dump(mode="json")
    key = buildcache.key_for(sol.raw, "cpu", env)
    assert key and key == buildcache.key_for(model, "cpu", env)
    renamed = {**sol.raw, "name": "other", "author": "someone"}
    assert buildcache.key_for(renamed, "cpu", env) == key  # content-addressed
    edited = {**sol.raw, "sources": [{**sol.raw["sources"][0], "content": "// x"}]}
    assert buildcache.key_for(edited, "cpu", env) != key
    assert buildcache.key_for(sol.raw, "cpu", {"TVM_FFI_CUDA_ARCH_LIST": "10.0"}) != key
    assert buildcache.key_for(sol.raw, "cuda", env) != key
    python = {**sol.raw, "spec": {**sol.raw["spec"], "language": "python"}}
    assert buildcache.key_for(python, "cpu", env) is None


def test_a_cached_torch_build_keeps_its_sources_mtimes(tmp_path: Path) -> None:
    """flashinfer-bench's torch builder rewrites every source before cpp_extension.load, and ninja
    then recompiles everything: through the cache an unchanged source is left alone."""
    from flashinfer_bench.compile.builders import torch_builder
    from flashinfer_bench.data import SourceFile

    from pytest_fib.buildcache import _builder_home

    sources = [SourceFile(path="kernel.cu", content="// a\n"),
               SourceFile(path="sub/util.h", content="// b\n")]
    home = tmp_path / "fib"
    with _builder_home(home):
        assert os.environ["FIB_CACHE_PATH"] == str(home)
        paths = torch_builder.write_sources_to_path(home / "torch" / "pkg", sources)
    assert [p.read_text() for p in paths] == ["// a\n", "// b\n"]
    for p in paths:
        os.utime(p, (1_000_000, 1_000_000))
    with _builder_home(home):
        torch_builder.write_sources_to_path(home / "torch" / "pkg", [
            sources[0], SourceFile(path="sub/util.h", content="// changed\n")])
    assert paths[0].stat().st_mtime == 1_000_000  # unchanged: not written
    assert paths[1].read_text() == "// changed\n" and paths[1].stat().st_mtime != 1_000_000
    assert os.environ.get("FIB_CACHE_PATH") != str(home)


def test_the_references_of_a_solutions_items_are_computed_while_it_builds(tmp_path: Path) -> None:
    """The edit-one-kernel loop: the reference's answers for every item of the solution being
    built come while the compiler runs, not after it. The compiler here waits until the trace
    shows all of them (60 s at most, so without that work ahead the build just comes late and
    the order below fails): no race with a busy machine either way."""
    trace = tmp_path / "calls.tsv"
    refs = 3 * 2  # two trials on each of three workloads
    wait = (f"i=0; while [ \"$(grep -c '^reference' {trace} 2>/dev/null)\" != {refs} ] && "
            "[ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done")
    slow = Session(tmp_path, before=wait)
    add_cpp_kit(slow.kernels, "ffi_slow")
    slow.env["PYTEST_FIB_TRACE_CALLS"] = str(trace)
    rc, out = slow.run("--fib-trials=2")
    assert rc == 0, out
    assert "3 passed" in out
    ops = [line.split("\t")[0] for line in trace.read_text().splitlines()]
    assert ops.count("reference") == refs  # each once
    assert ops.index("correctness") > max(i for i, op in enumerate(ops) if op == "reference"), ops


def test_ahead_of_a_build_only_the_first_trial_where_the_solution_will_not_run(
        tmp_path: Path) -> None:
    """Without a GPU a solution with CUDA sources is compiled only: its items check the
    reference on the first trial's inputs and nothing more, so no more is computed ahead. The
    compiler waits for those three, then 3 s more: time for any further work ahead to show."""
    trace = tmp_path / "calls.tsv"
    wait = (f"i=0; while [ \"$(grep -c '^reference' {trace} 2>/dev/null)\" -lt 3 ] && "
            "[ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; sleep 3")
    gated = Session(tmp_path, before=wait)
    folder = add_cpp_kit(gated.kernels, "ffi_with_cuda_header")
    (folder / "solution" / "cpp" / "unused.cuh").write_text("// makes it need a GPU to run\n")
    gated.env["PYTEST_FIB_TRACE_CALLS"] = str(trace)
    rc, out = gated.run("--fib-trials=3")
    assert rc == 0, out
    assert "3 skipped" in out and "running the solution needs a CUDA GPU" in out, out
    ops = [line.split("\t")[0] for line in trace.read_text().splitlines()]
    assert ops.count("reference") == 3, ops  # one trial on each of three workloads
