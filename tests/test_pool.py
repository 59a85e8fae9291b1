"""pool.py: what a lost worker's report shows, and the environment a worker starts with."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from pytest_fib import pool

FAULT_LOG = """\
loading solution...
Fatal Python error: Segmentation fault

Thread 0x00007f01 (most recent call first):
  File "/usr/lib/python3.11/threading.py", line 320 in wait
  File "/work/pytest_fib/worker.py", line 40 in _watch_parent

Current thread 0x00007f00 (most recent call first):
  File "/usr/lib/python3.11/ctypes/__init__.py", line 519 in string_at
  File "/cache/fib_python_crash/kernel.py", line 4 in run
  File "/work/pytest_fib/worker.py", line 77 in call_solution
"""


def test_crash_excerpt_shows_the_crashing_threads_stack() -> None:
    text = pool.crash_excerpt(FAULT_LOG)
    lines = text.splitlines()
    assert lines[0] == "Fatal Python error: Segmentation fault"
    assert lines[1].startswith("Current thread")
    assert 'kernel.py", line 4 in run' in text
    assert "_watch_parent" not in text  # the harness's idle thread is left out


def test_crash_excerpt_without_a_python_stack_is_the_logs_end() -> None:
    log = "\n".join(f"line {i}" for i in range(100))
    assert pool.crash_excerpt(log, lines=3) == "line 97\nline 98\nline 99"


def test_signal_names() -> None:
    assert pool._signal_name(-signal.SIGSEGV) == "killed by signal SIGSEGV"
    assert pool._signal_name(-signal.SIGKILL) == "killed by signal SIGKILL"
    assert pool._signal_name(3) == "exited with status 3"


def test_cpu_worker_runs_triton_in_its_interpreter(monkeypatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    env = pool.worker_env("cpu")
    assert env["TRITON_INTERPRET"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    assert "TRITON_INTERPRET" not in pool.worker_env("cuda")


def test_only_a_gpu_worker_that_will_time_warms_the_profiler() -> None:
    assert pool.worker_env("cuda", warm_profiler=True)["PYTEST_FIB_WARM_PROFILER"] == "1"
    assert "PYTEST_FIB_WARM_PROFILER" not in pool.worker_env("cuda")
    assert "PYTEST_FIB_WARM_PROFILER" not in pool.worker_env("cpu", warm_profiler=True)


def test_a_wrapped_worker_is_told_so() -> None:
    """Under compute-sanitizer or ncu the worker must exit normally: they report at its exit."""
    assert pool.worker_env("cuda", wrapped=True)["PYTEST_FIB_WRAPPED"] == "1"
    assert "PYTEST_FIB_WRAPPED" not in pool.worker_env("cuda")


def test_start_does_not_wait_for_the_worker_and_the_first_call_does(tmp_path) -> None:
    workers = pool.Pool("cpu", tmp_path)
    try:
        workers.start()
        first = workers.worker
        assert first is not None and not first.ready  # still importing torch
        assert workers.call({"op": "ping"}, timeout=60)["status"] == "ok"
        assert workers.worker is first and first.ready
        workers.start()  # a live worker is kept
        assert workers.worker is first and workers.started == 1
    finally:
        workers.close()
    assert first.proc.poll() is not None  # asked to exit, and did


# A stand-in worker (started as the worker's "wrapper", so it ignores the real command line that
# follows): it says ready, takes one request, prints faulthandler's first line and then dies of
# SIGSEGV once told to by the test (a file), or never.
DYING_WORKER = """\
import os, pickle, signal, sys, time
from multiprocessing.connection import Connection

conn = Connection(int(sys.argv[-1]))
conn.send_bytes(pickle.dumps({"ready": os.getpid()}))
conn.recv_bytes()
print("Fatal Python error: Segmentation fault", flush=True)
release = sys.argv[1]
while not os.path.exists(release):
    time.sleep(0.01)
os.kill(os.getpid(), signal.SIGSEGV)
"""


def _dying_worker(tmp_path, release) -> pool.WorkerProcess:
    script = tmp_path / "dying_worker.py"
    script.write_text(DYING_WORKER)
    return pool.WorkerProcess("cpu", tmp_path, wrapper=[sys.executable, str(script), str(release)])


def test_a_crash_still_being_reported_at_the_limit_is_a_crash_not_a_timeout(
        tmp_path, monkeypatch) -> None:
    """Issue 14: at the item's limit the worker had printed its crash report but not yet died;
    the item was judged then, with the wrong cause. It waits for the death and names the signal."""
    release = tmp_path / "release"
    worker = _dying_worker(tmp_path, release)
    worker._wait_ready()
    monkeypatch.setattr(worker, "log_size", lambda: 0)  # the report is this call's output
    # The limit is over as soon as the request is sent; the worker dies only after that.
    monkeypatch.setattr(worker, "log_tail", _after_the_report(worker.log_tail, release))
    with pytest.raises(pool.WorkerLost) as lost:
        worker.call({"op": "ping"}, timeout=0)
    assert "killed by signal SIGSEGV" in str(lost.value)
    assert "Fatal Python error: Segmentation fault" in str(lost.value)
    assert "timed out" not in str(lost.value) and not worker.alive


def test_a_crash_report_that_never_ends_is_cut_short(tmp_path, monkeypatch) -> None:
    worker = _dying_worker(tmp_path, tmp_path / "never")
    worker._wait_ready()
    monkeypatch.setattr(worker, "log_size", lambda: 0)
    monkeypatch.setattr(worker, "log_tail", _after_the_report(worker.log_tail))
    monkeypatch.setattr(pool, "CRASH_GRACE", 0.5)
    with pytest.raises(pool.WorkerLost, match="still writing its crash report 0.5 s after"):
        worker.call({"op": "ping"}, timeout=0)
    assert not worker.alive


def _after_the_report(log_tail, release: Path | None = None):
    """``log_tail`` that returns once the crash report is there (then lets the worker die, if
    ``release``): the controller reads the log when the limit has passed, after the report."""
    def tail(since: int = 0, lines: int = 40) -> str:
        while "Fatal Python error" not in log_tail(since, lines):
            time.sleep(0.01)
        if release is not None:
            release.touch()
        return log_tail(since, lines)
    return tail


def test_a_log_past_its_cap_is_emptied_between_items(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13: worker logs are capped (a solution printing without end must not fill /tmp)."""
    from pytest_fib import pool

    monkeypatch.setattr(pool, "LOG_CAP", 1000)
    worker = object.__new__(pool.WorkerProcess)
    worker.log_path = tmp_path / "worker.log"
    worker.log_path.write_bytes(b"x" * 5000)
    worker._cap_log()
    assert worker.log_size() < 100 and b"log emptied" in worker.log_path.read_bytes()
    worker.log_path.write_bytes(b"y" * 500)
    worker._cap_log()
    assert worker.log_size() == 500


@pytest.mark.parametrize(("mode", "bad_fork", "execs"), [
    ("", True, False), ("1", False, True), ("auto", False, False), ("auto", True, True)])
def test_a_child_execs_only_where_its_fork_cannot_use_cuda(monkeypatch: pytest.MonkeyPatch,
                                                           mode: str, bad_fork: bool,
                                                           execs: bool) -> None:
    """Issue 13: a GPU session's children fork (milliseconds) and exec a fresh interpreter
    (seconds) only when torch has marked the fork unusable for CUDA, or when told to always."""
    from types import SimpleNamespace

    from pytest_fib import zygote

    fake = SimpleNamespace(cuda=SimpleNamespace(_is_in_bad_fork=lambda: bad_fork))
    monkeypatch.setitem(sys.modules, "torch", fake)
    monkeypatch.setenv(zygote.EXEC_CHILDREN, mode)
    assert zygote.must_exec() is execs


def test_a_gpu_workers_children_fork_with_torchs_fork_safe_cuda_check() -> None:
    env = pool.worker_env("cuda")
    assert env["PYTEST_FIB_EXEC_CHILDREN"] == "auto"
    assert env["PYTORCH_NVML_BASED_CUDA_CHECK"] == "1"
    assert "PYTEST_FIB_EXEC_CHILDREN" not in pool.worker_env("cpu")
