"""One process per solution, forked from a pre-imported parent (issue 13).

The worker process the controller starts (``pool.py``) imports torch, flashinfer-bench and its
builders once, and never touches CUDA: it is a zygote. Every solution (every definition, for the
reference worker) runs in a child forked from it, so nothing a solution does to its process --
patching torch, ``os.chdir``, environment variables, ``sys.path``, its CUDA context, threads --
reaches the next one. A fork of the imported zygote costs milliseconds; a spare child is forked
ahead, so on a GPU its CUDA context and CUPTI start-up overlap the current solution's items and a
switch costs almost nothing.

Each child runs ``worker.serve`` in a private temporary working directory (removed when the child
is reaped), in the zygote's process group: the controller's kill of that group takes every child
and everything they spawned. The zygote relays requests and answers byte for byte, and when a child
dies it answers for it: ``{"status": "lost", "code": ...}`` (the signal or exit status), so a crash
costs one fork, not a new worker.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from multiprocessing.connection import Connection

from .protocol import Request

# How a child starts: "1" = it execs a fresh interpreter; "auto" (a GPU session) = it runs on in
# the fork unless torch marked the fork "bad", then it execs. CUDA cannot be used in a process
# forked from one where torch initialised the CUDA driver (torch.cuda.is_available() does, unless
# PYTORCH_NVML_BASED_CUDA_CHECK=1, which pool.worker_env sets; seen on an H200 as "Cannot
# re-initialize CUDA in forked subprocess"). A fork costs milliseconds; an exec imports torch and
# flashinfer-bench again (seconds), so it is the fallback, not the rule. Unset: always fork (CPU).
EXEC_CHILDREN = "PYTEST_FIB_EXEC_CHILDREN"
# Where children's private working directories go: inside the controller's log folder, which it
# removes at session end, so it can kill the whole tree at once instead of waiting for each
# child's CUDA teardown (pool.WorkerProcess.kill).
HOMES = "PYTEST_FIB_HOMES"


def must_exec() -> bool:
    """In a freshly forked child: whether it must exec a fresh interpreter to use CUDA."""
    mode = os.environ.get(EXEC_CHILDREN, "")
    if mode == "auto":
        torch = sys.modules.get("torch")
        return torch is None or bool(torch.cuda._is_in_bad_fork())
    return bool(mode)


# Prefixes of a child's answer: whether the child goes on after it, or exits (its CUDA context
# is poisoned, or it tampered with the harness) and must not get another request.
GOES_ON, EXITS = b"K", b"X"


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc; empty elsewhere): what a solution spawned."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode("ascii", "replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for kid in children.get(todo.pop(), []):
            out.append(kid)
            todo.append(kid)
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``, its process group, and everything below it (its own groups included):
    a solution's leftover processes must not outlive it, holding GPU memory."""
    for victim in [*descendants(pid), pid]:
        for kill in (os.killpg, os.kill):
            try:
                kill(victim, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def isolation_key(req: Request) -> str:
    """What a child is for: the solution (and a baseline timed beside it), or for reference ops
    the definition. Requests with the same key share a child."""
    parts = ([req.get(k) for k in ("solution", "baseline")] if req.get("op") not in REFERENCE_OPS
             else [req.get("definition")])
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclasses.dataclass
class Child:
    pid: int
    conn: Connection
    home: str  # its private working directory
    key: str | None = None
    ready: bool = False  # its start-up handshake has been read


# Ops that run the definition's code (the reference) rather than a solution's: their children
# live beside the current solution's, so the two alternate without a fork each time.
REFERENCE_OPS = ("reference", "time_reference")
SPARES = 2  # children kept forked ahead: one for each slot


class Zygote:
    def __init__(self, upstream: Connection, serve: Callable[[Connection], None]) -> None:
        self.upstream = upstream
        self.serve = serve
        self.slots: dict[str, Child] = {}  # "solution" / "reference" -> its current child
        # Forked ahead, one per slot: a new definition's reference and its first solution then
        # both find a process whose start-up (CUDA, CUPTI) is already done.
        self.spares: list[Child] = []

    def fork(self) -> Child:
        ours, theirs = socket.socketpair()
        home = tempfile.mkdtemp(prefix="pytest-fib-solution-", dir=os.environ.get(HOMES) or None)
        pid = os.fork()
        if pid == 0:  # the child: serve on its own socket, in its own folder, then exit
            code = 0
            try:
                ours.close()
                os.close(self.upstream.fileno())  # only the zygote talks to the controller
                os.setpgid(0, 0)  # its own group: what it spawns goes with it (kill_tree)
                os.chdir(home)
                os.environ["TMPDIR"] = home
                tempfile.tempdir = home
                if must_exec():
                    fd = theirs.detach()
                    os.set_inheritable(fd, True)
                    os.execv(sys.executable, [sys.executable, "-m", "pytest_fib.worker",
                                              "--child", str(fd)])
                self.serve(Connection(theirs.detach()))
            except BaseException:  # noqa: BLE001 -- reported by the zygote as a lost child
                code = 70
            finally:
                os._exit(code)
        theirs.close()
        return Child(pid, Connection(ours.detach()), home)

    def reap(self, child: Child, kill: bool = True) -> int:
        """End a child (SIGKILL unless it is exiting by itself) and return its wait status as
        pool.py reads it: -signal, or the exit code."""
        if kill:
            kill_tree(child.pid)
        child.conn.close()
        _, status = os.waitpid(child.pid, 0)
        try:  # what it spawned, if it died first: its process group outlives it
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        shutil.rmtree(child.home, ignore_errors=True)
        return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

    def child_for(self, slot: str, key: str) -> Child:
        child = self.slots.get(slot)
        if child is not None and child.key != key:
            self.reap(child)  # a new solution: the last one's process goes, whatever it did
            child = None
        if child is None:
            child = self.spares.pop(0) if self.spares else self.fork()
            child.key = key
            self.slots[slot] = child
        while len(self.spares) < SPARES:
            self.spares.append(self.fork())  # warms up (CUDA, CUPTI) while this one works
        return child

    def relay(self, raw: bytes) -> bytes:
        req = pickle.loads(raw)
        slot = "reference" if req.get("op") in REFERENCE_OPS else "solution"
        child = self.child_for(slot, isolation_key(req))
        try:
            if not child.ready:  # its start-up (a CUDA context, CUPTI) is over
                child.conn.recv_bytes()
                child.ready = True
            child.conn.send_bytes(raw)
            answer = child.conn.recv_bytes()
        except (EOFError, OSError):
            del self.slots[slot]
            code = self.reap(child, kill=False)
            return pickle.dumps({"status": "lost", "code": code, "pid": child.pid})
        if answer[:1] == EXITS:
            del self.slots[slot]
            self.reap(child, kill=False)
        return answer[1:]

    def run(self) -> None:
        # Before the first request: its children's start-up overlaps the controller's own.
        self.spares = [self.fork() for _ in range(SPARES)]
        while True:
            try:
                raw = self.upstream.recv_bytes()
            except (EOFError, OSError):
                break
            self.upstream.send_bytes(self.relay(raw))
        children = [*self.slots.values(), *self.spares]
        for child in children:  # all at once: their CUDA teardowns overlap
            kill_tree(child.pid)
        for child in children:
            self.reap(child, kill=False)
