"""The controller's handle on its worker process: start, call with a timeout, replace on a crash.

One worker per pytest process (per GPU under ``pytest -n N``), reused across items until something
goes wrong: a crash, a timeout, or a CUDA error that poisons its context. Then it is replaced and
the session goes on.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from .protocol import Reply, Request
from .zygote import HOMES, kill_tree

LOG_CAP = 64 << 20  # bytes of worker output kept between items
STARTUP_TIMEOUT = 300.0  # seconds for a worker to import torch & co. on a loaded machine
# A worker whose crash report began before the item's limit has stopped running solution code: it
# is given this long to finish printing and die, so that the verdict names the signal (issue 14).
CRASH_GRACE = 60.0
KEPT_CAP = 4 * 2**20  # a failed item's kept output (its end), per item
# Where a session's time goes (docs/performance.md): a file that gets one tab-separated line per
# worker call: op, seconds, solution or definition name, workload uuid, when it ended (epoch).
TRACE = "PYTEST_FIB_TRACE_CALLS"
CRASH_MARK = "Fatal Python error"  # faulthandler's first line


class WorkerLost(Exception):
    """The worker died or hung: the message says how, with the end of its output. ``replaced``:
    the worker process itself is gone (a timeout kills it); False when only the solution's
    child process died and the worker forks a fresh one (zygote.py)."""

    def __init__(self, message: str, replaced: bool = True) -> None:
        super().__init__(message)
        self.replaced = replaced


def worker_env(device: str, warm_profiler: bool = False, wrapped: bool = False
               ) -> dict[str, str]:
    env = dict(os.environ)
    if wrapped:
        env["PYTEST_FIB_WRAPPED"] = "1"  # the worker then exits normally: the tool reports at exit
    if device.startswith("cuda"):
        # zygote.EXEC_CHILDREN: children fork, and exec only where torch has made the fork
        # unusable for CUDA; the NVML-based check keeps torch.cuda.is_available() (called while
        # flashinfer-bench's builders are imported) from initialising the driver in the zygote.
        env.setdefault("PYTEST_FIB_EXEC_CHILDREN", "auto")
        env.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
        env["PYTEST_FIB_WARM_CUDA"] = "1"  # worker.warm_cuda(): each solution's process, ahead
    if warm_profiler and device.startswith("cuda"):
        env["PYTEST_FIB_WARM_PROFILER"] = "1"  # worker.warm_profiler(), during start-up
    if device == "cpu":
        env["TRITON_INTERPRET"] = "1"  # must be set before any kernel is decorated
        env.setdefault("TVM_FFI_CUDA_ARCH_LIST", "9.0")  # compile for Hopper; nothing runs
        env.setdefault("TORCH_CUDA_ARCH_LIST", "9.0")
    if "CUDA_HOME" not in env and Path("/usr/local/cuda").is_dir():
        env["CUDA_HOME"] = "/usr/local/cuda"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def trace(request: Request, seconds: float) -> None:
    """One line in the PYTEST_FIB_TRACE_CALLS file, when it is set: the op, its seconds, the
    solution (or definition), the workload, and when it ended (epoch seconds, for timelines)."""
    path = os.environ.get(TRACE)
    if not path:
        return
    who = (request.get("solution") or request.get("definition") or {}).get("name", "")
    uuid = request.get("workload", {}).get("uuid", "")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"{request.get('op')}\t{seconds:.4f}\t{who}\t{uuid}\t{time.time():.3f}\n")


def crash_excerpt(log: str, lines: int = 30) -> str:
    """The Python stack faulthandler printed (which solution line crashed), else the log's end."""
    at = log.find(CRASH_MARK)
    if at < 0:
        return "\n".join(log.splitlines()[-lines:])
    head = log[at:].splitlines()[0]
    current = log.find("Current thread", at)  # skip the harness's own idle threads
    body = log[current:] if current >= 0 else log[at:]
    return "\n".join([head, *body.splitlines()[:lines]])


def _signal_name(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class WorkerProcess:
    def __init__(self, device: str, log_dir: Path, wrapper: list[str] | None = None,
                 warm_profiler: bool = False) -> None:
        self.device = device
        self.log_path = Path(tempfile.mkstemp(prefix="worker-", suffix=".log", dir=log_dir)[1])
        parent, child = socket.socketpair()
        env = worker_env(device, warm_profiler, bool(wrapper))
        env[HOMES] = str(log_dir / "homes")  # removed with the logs (Runner.close)
        os.makedirs(env[HOMES], exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*(wrapper or []), sys.executable, "-m", "pytest_fib.worker", str(child.fileno())],
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=env,
                # Own session: Ctrl-C reaches pytest, which then stops the worker itself.
                start_new_session=True)
        child.close()
        self.conn = Connection(parent.detach())
        self.ready = False  # the first call waits for the handshake: start-up overlaps other work

    def _wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Start-up (importing torch, a CUDA context) is the harness's cost, not the item's: the
        item's timeout starts once the worker says it is ready."""
        if self.ready:
            return
        try:
            if self.conn.poll(timeout):
                self.conn.recv_bytes()
                self.ready = True
                return
        except (EOFError, OSError):
            pass
        self.kill()
        raise WorkerLost(f"the worker process did not start within {timeout:g} s:\n"
                         f"{self.log_tail()}")

    def log_tail(self, since: int = 0, lines: int = 40) -> str:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(since)
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _cap_log(self) -> None:
        """A solution that prints without end must not fill the disk: between items, a log past
        LOG_CAP is emptied (every failure message already carries its own excerpt). The worker
        writes with O_APPEND, so it goes on at the new end."""
        if self.log_size() > LOG_CAP:
            with self.log_path.open("r+b") as fh:
                fh.truncate(0)
                fh.write(f"[pytest-fib: log emptied past {LOG_CAP >> 20} MiB]\n".encode())

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def call(self, request: Request, timeout: float) -> Reply:
        """Send one request and wait for its answer. When the item fails in the worker (a lost
        process, a timeout, an error answer), what the worker printed meanwhile is kept in a file
        of its own that outlives the session, and the message names it (issue 13: logs are
        removed at session end, except those of failed items)."""
        self._wait_ready()
        self._cap_log()
        start_log = self.log_size()
        began = time.perf_counter()
        try:
            resp = self._call(request, timeout, start_log)
        except WorkerLost as e:
            kept = self.keep_log(start_log)
            raise WorkerLost(f"{e}\n(the worker's whole output for this item: {kept})"
                             if kept else str(e), e.replaced) from None
        finally:
            trace(request, time.perf_counter() - began)
        if resp.get("status") in ("runtime_error", "build_error", "worker_error"):
            kept = self.keep_log(start_log)
            if kept:
                resp["log"] = f"{resp['log']}\n(the worker's whole output for this item: {kept})"
        return resp

    def keep_log(self, since: int) -> str | None:
        """The worker's output since ``since`` (at most KEPT_CAP bytes, its end), saved in
        ``<log dir>/failed/``, which Runner.close leaves in place; None when it printed
        nothing."""
        try:
            size = self.log_size()
            if size <= since:
                return None
            with self.log_path.open("rb") as fh:
                fh.seek(max(since, size - KEPT_CAP))
                data = fh.read()
            folder = self.log_path.parent / "failed"
            folder.mkdir(exist_ok=True)
            path = folder / f"{self.log_path.stem}-{since}.log"
            path.write_bytes(data)
            return str(path)
        except OSError:
            return None

    def _call(self, request: Request, timeout: float, start_log: int) -> Reply:
        try:
            self.conn.send_bytes(pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            raise WorkerLost(self._death(start_log)) from None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if CRASH_MARK in self.log_tail(start_log, 400):
                    raise WorkerLost(self._crashed(start_log, timeout))
                self.kill()
                raise WorkerLost(f"timed out after {timeout:g} s (--fib-timeout); the worker was "
                                 "killed and replaced. Its last output:\n"
                                 f"{self.log_tail(start_log)}")
            try:
                if self.conn.poll(min(remaining, 1.0)):
                    data = self.conn.recv_bytes()
                    break
            except (EOFError, OSError):
                raise WorkerLost(self._death(start_log)) from None
            if self.proc.poll() is not None and not self.conn.poll(0):
                raise WorkerLost(self._death(start_log))
        resp: Reply = pickle.loads(data)
        if resp.get("status") == "lost":
            raise WorkerLost(self._child_death(start_log, resp["code"]), replaced=False)
        resp["log"] = resp.get("log") or self.log_tail(start_log, 60)
        return resp

    def _child_death(self, since: int, code: int) -> str:
        return (f"the solution's process {_signal_name(code)} (a crash in solution code: "
                f"segfault, abort, out of memory?); a fresh process serves the next item. Its "
                f"last output:\n{crash_excerpt(self.log_tail(since, 400))}")

    def _crashed(self, since: int, timeout: float) -> str:
        """The limit came while the worker was dying of a crash (faulthandler printing, the
        kernel tearing the process down: on a loaded machine this takes a while): not a timeout.
        Wait for the process to end and report its death; kill it if it does not end. (A
        solution's child process dies alone: its zygote answers for it.)"""
        try:
            if self.conn.poll(CRASH_GRACE):
                resp = pickle.loads(self.conn.recv_bytes())
                if resp.get("status") == "lost":
                    self.kill()  # the verdict is in; the item's limit passed: start afresh
                    return self._child_death(since, resp["code"])
        except (EOFError, OSError):
            pass
        try:
            self.proc.wait(timeout=CRASH_GRACE)
        except subprocess.TimeoutExpired:
            tail = self.log_tail(since, 400)
            self.kill()
            return (f"the worker process crashed (a crash in solution code) and was still "
                    f"writing its crash report {CRASH_GRACE:g} s after the {timeout:g} s limit; "
                    f"it was killed and replaced. Its last output:\n{crash_excerpt(tail)}")
        self.conn.close()
        return self._death(since)

    def _death(self, since: int) -> str:
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode or -9
        return (f"the worker process {_signal_name(code)} (a crash in solution code: segfault, "
                f"abort, out of memory?); it was replaced. Its last output:\n"
                f"{crash_excerpt(self.log_tail(since, 400))}")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """The worker, its solutions' processes and whatever those spawned."""
        kill_tree(self.proc.pid)  # alive or not: its process group may still hold leftovers
        self.proc.wait()
        self.conn.close()

    def close(self) -> None:
        self.shutdown()
        self.join()

    def shutdown(self) -> None:
        """Ask the worker to exit (EOF on its socket) without waiting for it."""
        if self.proc.poll() is None and not self.conn.closed:
            self.conn.close()

    def join(self, timeout: float = 5.0) -> None:
        """Wait for an exit asked for with ``shutdown`` (CUDA and CUPTI teardown take seconds);
        kill the worker if it does not."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill()  # anything a solution left running goes with it (its group, its children)


class Pool:
    """The worker this process talks to; started on first use, replaced after a loss.

    With a ``wrapper`` (compute-sanitizer, ncu) every call gets a fresh worker that exits after
    it, so the tool's report (printed at process exit) belongs to that one item: ``call`` then
    returns it under "diagnostics"."""

    def __init__(self, device: str, log_dir: Path, wrapper: list[str] | None = None) -> None:
        self.device = device
        self.log_dir = log_dir
        self.wrapper = wrapper
        self.worker: WorkerProcess | None = None
        self.started = 0
        self.warm_profiler = False  # set when the session times on a GPU (Runner.prestart)

    def start(self) -> None:
        """Start the worker now, without waiting for it: its imports overlap the caller's work."""
        if self.worker is None or not self.worker.alive:
            self.worker = WorkerProcess(self.device, self.log_dir, self.wrapper,
                                        self.warm_profiler)
            self.started += 1

    def call(self, request: Request, timeout: float) -> Reply:
        self.start()
        if self.wrapper:
            return self._one_shot(request, timeout)
        assert self.worker is not None  # started just above
        try:
            resp = self.worker.call(request, timeout)
        except WorkerLost as e:
            if e.replaced:
                self.worker = None
            raise
        # A fatal answer (poisoned CUDA context, tampering) ends the solution's process only: the
        # zygote forks a fresh one for the next request.
        return resp

    def _one_shot(self, request: Request, timeout: float) -> Reply:
        worker = self.worker
        assert worker is not None
        self.worker = None
        start = worker.log_size()
        try:
            resp = worker.call(request, timeout)
        except WorkerLost as e:
            raise WorkerLost(f"{e}\n--- {self.wrapper[0] if self.wrapper else ''} ---\n"
                             f"{worker.log_tail(start, 200)}") from None
        worker.close()  # the tool prints its summary when the process exits
        try:
            worker.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            worker.kill()
        resp["diagnostics"] = worker.log_tail(start, 400)
        return resp

    def close(self) -> None:
        """Ask the worker to exit and wait for it (a wrapping tool reports at its exit)."""
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    def stop(self) -> None:
        """Session end: kill the worker and every process under it now. Its solutions' processes
        hold CUDA contexts whose teardown takes a while each; nothing needs to wait for it (their
        working directories are under the log folder, which the caller removes)."""
        if self.worker is not None:
            self.worker.kill()
            self.worker = None
