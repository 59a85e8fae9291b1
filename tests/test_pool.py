"""pool.py: what a lost worker's report shows, and the environment a worker starts with."""

from __future__ import annotations

import signal

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
