"""The worker process: builds and runs solutions, and nothing else.

Solution code runs only here, never in the pytest process: a segfault, an abort, an illegal memory
access or an endless loop takes down this process alone, and the controller (``pool.py``) fails that
one item, replaces the worker and goes on. The reference and the verdict stay in the controller,
where no solution code has ever run, so a solution cannot patch them.

Protocol: pickled dicts over a socket inherited as a file descriptor (the solution's own prints go
to fds 1 and 2, which the controller sends to a log file: they cannot corrupt the protocol).
Run as ``python -m pytest_fib.worker FD``.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from . import check, zygote
from .build import (
    Builder,
    BuildFailure,
    CheckUnavailable,
    MissingPackage,
    compiler_errors,
    missing_dependency,
    missing_module,
)
from .protocol import Reply, Request, Trial
from .transfer import Outbox

# Text of errors after which the CUDA context is unusable: answer, then exit to be replaced.
FATAL_MARKERS = ("illegal memory access", "CUDA error", "device-side assert", "unspecified launch",
                 "misaligned address", "an illegal instruction", "CUBLAS_STATUS", "cudaError")
WARM_PROFILER = "PYTEST_FIB_WARM_PROFILER"  # set by the controller: see warm_profiler()
WARM_CUDA = "PYTEST_FIB_WARM_CUDA"  # set by the controller on a GPU: see warm_cuda()
WRAPPED = "PYTEST_FIB_WRAPPED"  # set by the controller when a tool (sanitizer, ncu) wraps us
NO_GPU_MARKERS = ("Torch not compiled with CUDA", "Found no NVIDIA driver", "No CUDA GPUs",
                  "CUDA driver initialization failed", "no CUDA-capable device",
                  "Cannot find a working triton installation", "0 active drivers",
                  "libcuda.so cannot found")


def _watch_parent(parent: int) -> None:
    """Exit when the controller is gone (killed with SIGKILL, say): never linger on a GPU."""
    while True:
        if os.getppid() != parent:
            os._exit(70)
        time.sleep(1.0)


def reclaim_crash_handler() -> None:
    """faulthandler's SIGSEGV handler, installed again (a plain enable() is a no-op once it is
    enabled, even after a library replaced the handler): a crash prints the Python stack that
    names the solution's line."""
    faulthandler.disable()
    faulthandler.enable()


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _as_list(result: Any) -> list[Any]:
    if isinstance(result, (tuple, list)):
        return list(result)
    return [result]


def call_solution(runnable: Any, definition: Any, inputs: list[Any],
                  device: str) -> tuple[list[Any], bool]:
    """One call in the solution's own style: the outputs in definition order, and whether a
    destination-passing call returned a tensor anyway (it then likely ignored its outputs)."""
    import torch

    from .inputs import poisoned_outputs

    returned = False
    with torch.no_grad():
        if runnable.metadata.destination_passing_style:
            outs = poisoned_outputs(definition, inputs, device)
            ret = runnable(*inputs, *outs)
            returned = any(isinstance(r, torch.Tensor) for r in _as_list(ret))
        else:
            outs = _as_list(runnable(*inputs))
    _sync(device)
    return outs, returned


def _error(e: BaseException, device: str, solution: Any = None) -> Reply:
    text = "".join(traceback.format_exception(e)).strip()
    short = f"{type(e).__name__}: {e}".strip()
    module = missing_module(short, solution) if isinstance(e, ImportError) and solution else None
    if module:
        return {"status": "needs_package", "message": str(MissingPackage(module))}
    if device == "cpu" and any(m in text for m in NO_GPU_MARKERS):
        return {"status": "needs_gpu", "message": short}
    fatal = device.startswith("cuda") and any(m in text for m in FATAL_MARKERS)
    return {"status": "runtime_error", "message": short, "traceback": text[-6000:],
            "fatal": fatal}


def _load(req: Request) -> tuple[Any, Any, Any]:
    from .models import validate

    return (validate("definition", req["definition"], req["where"]["definition"]),
            validate("workload", req["workload"], req["where"]["workload"]),
            validate("solution", req["solution"], req["where"]["solution"]))


class _Timed:
    """One solution under the timer: its own output buffers, the shared (perturbed) inputs."""

    def __init__(self, runnable: Any, definition: Any, sets: list[list[Any]], seeds: list[int],
                 device: str, recheck: list[int] | None = None, iterations: int = 0) -> None:
        from .inputs import poisoned_outputs

        self.runnable = runnable
        self.dps = runnable.metadata.destination_passing_style
        self.sets = sets
        self.seeds = seeds
        self.outs = [poisoned_outputs(definition, inp, device) if self.dps else [] for inp in sets]
        self.last: dict[int, Any] = {}
        # The timed iteration after which each re-checked set's outputs are snapshotted: its last.
        self.snap_at = {max(range(k, iterations, len(sets))): k
                        for k in recheck or [] if k < iterations}
        self.snaps: dict[int, list[Any]] = {}

    def call(self, i: int) -> None:
        k = i % len(self.sets)
        if self.dps:
            self.runnable(*self.sets[k], *self.outs[k])
        else:
            self.last[k] = self.runnable(*self.sets[k])

    def before(self, i: int) -> None:
        # Outside the timed span: fresh poison in the outputs and one changed input element, so a
        # timed call can neither skip its work nor replay an earlier answer unnoticed. (Solutions
        # timed interleaved apply the same deterministic change: idempotent.)
        from .inputs import perturb, poison

        k = i % len(self.sets)
        for out in self.outs[k]:
            poison(out)
        self.last.pop(k, None)
        perturb(self.sets[k], self.seeds[k], i // len(self.sets) + 1)

    def after(self, i: int) -> None:
        """Once timed iteration i is over (closing marker included): copy the outputs a re-check
        will judge, so what a thread of the solution's own writes later is not judged."""
        k = self.snap_at.get(i)
        if k is not None:
            self.snaps[k] = [o.clone() if hasattr(o, "clone") else o for o in self._produced(k)]

    def _produced(self, k: int) -> list[Any]:
        return self.outs[k] if self.dps else _as_list(self.last.get(k))

    def checked(self, recheck: list[int], iterations: int, pristine: Callable[[int], list[Any]],
                names: list[str], outbox: Outbox) -> dict[int, Any]:
        """For each re-checked set: the outputs of its last timed call (judged by the
        controller), and whether the solution changed the set's inputs beyond the harness's own
        perturbations (compared here, on the device, with a regenerated and perturbed copy)."""
        from .inputs import perturb, timed_cycles

        out = {}
        for k in recheck:
            produced = self.snaps.get(k) or self._produced(k)
            expected = pristine(self.seeds[k])
            for cycle in timed_cycles(k, len(self.sets), iterations):
                perturb(expected, self.seeds[k], cycle)
            out[k] = {"outputs": [outbox.pack(o) for o in produced],
                      "mutated": check.mutated_inputs(names, expected, self.sets[k])}
        return out


def judge_time(runnable: Any, definition: Any, inputs: list[Any], device: str, warmup: int,
               iterations: int) -> Reply:
    """--fib-clock=flashinfer-bench: the time flashinfer-bench 0.1.2's own method reads for these
    calls (``time_runnable``: CUDA events around each call, cloned arguments, a 256 MB flush),
    on the same inputs, for the author to compare with the judge's. Context, never a verdict:
    a failure here is reported, not raised."""
    import torch

    try:
        from flashinfer_bench.bench.timing import time_runnable

        from .inputs import poisoned_outputs

        args = list(inputs)
        if getattr(getattr(runnable, "metadata", None), "destination_passing_style", False):
            args += poisoned_outputs(definition, inputs, device)
        with torch.no_grad():
            ms = time_runnable(runnable, args, warmup, iterations, device)
        _sync(device)
        return {"status": "ok", "judge_ms": float(ms)}
    except Exception as e:  # noqa: BLE001 -- reported beside the item's own time
        return {"status": "ok", "judge_error": f"{type(e).__name__}: {e}"[:300]}


class Guard:
    """The timing functions, and the harness functions this process judges with, as they were
    before any solution code was imported: a solution that replaces one (to report a faster time,
    or to hide that it mutates its inputs) is caught by identity of the function and of its code,
    after each timed run (all of them) and each correctness run (the harness ones)."""

    HARNESS = ("pytest_fib.check.mutated_inputs", "pytest_fib.transfer.Outbox.pack",
               "pytest_fib.inputs.make_inputs", "pytest_fib.inputs.perturb", "torch.equal")
    TIMERS = ("time.perf_counter", "time.perf_counter_ns", "time.monotonic",
              "torch.cuda.synchronize", "torch.cuda.Event", "torch.cuda._sleep",
              "torch.cuda.Event.record", "torch.cuda.Event.elapsed_time",
              "torch.autograd.profiler_util.FunctionEvent",
              "torch.autograd.profiler_util.EventList",
              "torch.profiler.profile", "torch.autograd.profiler.profile",
              "pytest_fib.timing.measure", "pytest_fib.timing._measure_cupti",
              "pytest_fib.timing.spans_between_markers", "pytest_fib.timing._device_activities")
    NAMES = HARNESS + TIMERS
    # Whole namespaces, not only the names above (issue 13: no list of names is complete): every
    # function and class of these modules, and every entry of those classes' own dicts, as they
    # were before any solution code ran. Replacing an unlisted helper of the timing path, or
    # shadowing a method on a class whose identity stays the same, shows here.
    HARNESS_SPACES = ("pytest_fib.check", "pytest_fib.inputs", "pytest_fib.transfer")
    TIMER_SPACES = (
        *HARNESS_SPACES, "pytest_fib.timing", "pytest_fib.worker", "time", "torch.profiler",
        "torch.profiler.profiler", "torch.autograd.profiler", "torch.autograd.profiler_util",
        "torch.cuda")

    def __init__(self) -> None:
        self.saved = {name: self._identity(name) for name in self.NAMES}
        self.spaces = {name: self._namespace(name) for name in self.TIMER_SPACES}

    @staticmethod
    def _namespace(module_name: str) -> dict[str, tuple[int, int | None]]:
        """name -> identity of every callable of the module and of its own classes' dicts."""
        import importlib
        import inspect

        try:
            module = importlib.import_module(module_name)
        except ImportError:
            return {}
        out: dict[str, tuple[int, int | None]] = {}

        def note(key: str, obj: Any) -> None:
            code = getattr(obj, "__code__", None) or getattr(
                getattr(obj, "__func__", None), "__code__", None)
            out[key] = (id(obj), id(code) if code is not None else None)

        for attr, obj in list(vars(module).items()):
            if callable(obj) or isinstance(obj, (staticmethod, classmethod, property)):
                note(attr, obj)
            if inspect.isclass(obj) and obj.__module__ == module_name:
                for member, value in list(vars(obj).items()):
                    if callable(value) or isinstance(value, (staticmethod, classmethod,
                                                             property)):
                        note(f"{attr}.{member}", value)
        return out

    def _space_changes(self, spaces: tuple[str, ...]) -> list[str]:
        changed = []
        for space in spaces:
            now = self._namespace(space)
            before = self.spaces.get(space, {})
            for key, ident in before.items():
                if now.get(key, ident) != ident:
                    changed.append(f"{space}.{key}")
            # a member added to a class (a method shadowed there) of the harness or of the
            # profiler's event records; module-level additions are lazy imports and caches
            if space.startswith("pytest_fib") or space == "torch.autograd.profiler_util":
                changed += [f"{space}.{key} (added)" for key in now.keys() - before.keys()
                            if "." in key]
        return changed

    @classmethod
    def _identity(cls, name: str) -> tuple[Any, Any]:
        obj = cls._resolve(name)
        return obj, getattr(obj, "__code__", None)

    @staticmethod
    def _resolve(name: str) -> Any:
        """'a.b.C.meth' -> the object: the longest importable module, then attributes."""
        import importlib

        parts = name.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            try:
                obj: Any = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                return None
            return obj
        return None

    def changed(self, names: tuple[str, ...] | None = None) -> list[str]:
        """What differs from the snapshot: the harness's names and namespaces (``names`` =
        HARNESS), or everything the timing path touches too (the default)."""
        spaces = self.HARNESS_SPACES if names == self.HARNESS else self.TIMER_SPACES
        named = [n for n in (names or self.NAMES)
                 if any(a is not b for a, b in zip(self._identity(n), self.saved[n], strict=False))]
        return named + [c for c in self._space_changes(spaces) if c not in named]


class Worker:
    def __init__(self) -> None:
        self.guard = Guard()  # before any solution is built or imported
        self.builder = Builder()
        self.outbox = Outbox(ipc=True)
        self.solution: Any = None  # the one being built or run (names a missing package)

    def build(self, req: Request) -> tuple[Any, Any, Any, Reply | None]:
        definition, workload, solution = _load(req)
        self.solution = solution
        start = time.perf_counter()
        missing = missing_dependency(solution)
        if missing:
            return definition, workload, None, {"status": "needs_package",
                                                "message": str(MissingPackage(missing))}
        try:
            runnable = self.builder.build(definition, solution, req["device"])
        except CheckUnavailable as e:
            return definition, workload, None, {"status": "unavailable", "message": str(e)}
        except BuildFailure as e:
            module = missing_module(f"{e}\n{e.log}", solution)
            if module:
                return definition, workload, None, {"status": "needs_package",
                                                    "message": str(MissingPackage(module))}
            return definition, workload, None, {
                "status": "build_error", "message": str(e)[-4000:],
                "errors": compiler_errors(e.log or str(e)), "log": (e.log or "")[-20000:]}
        # Builders import libraries that install their own SIGSEGV handler (tvm_ffi prints a native
        # backtrace): take it back, so a crash prints the Python stack that names the solution line.
        reclaim_crash_handler()
        if runnable is None or (req["device"] == "cpu" and req["needs_gpu"]):
            return definition, workload, None, {
                "status": "compiled", "build_seconds": time.perf_counter() - start}
        return definition, workload, runnable, None

    def op_correctness(self, req: Request) -> Reply:
        from .inputs import make_inputs

        definition, workload, runnable, early = self.build(req)
        if early is not None:
            return early
        device = req["device"]
        names = list(definition.inputs)
        trials: list[Trial] = []
        alive = []  # earlier trials' inputs stay allocated: every trial gets new addresses
        for seed in req["seeds"]:
            inputs = make_inputs(definition, workload, device, seed, req["root"])
            before = [v.clone() if hasattr(v, "clone") else v for v in inputs]
            alive.append(inputs)
            try:
                outs, returned = call_solution(runnable, definition, inputs, device)
            except BaseException as e:  # any failure of solution code is a verdict
                if isinstance(e, KeyboardInterrupt):
                    raise
                return _error(e, device, self.solution)
            # Inputs are compared here, on the device, with their pre-call copy: shipping them
            # to the controller cost as much as the outputs; the functions used are guarded.
            trials.append({"outputs": [self.outbox.pack(o) for o in outs],
                           "mutated": check.mutated_inputs(names, before, inputs),
                           "returned": returned})
        resp: Reply = {"status": "ok", "trials": trials}
        if req.get("draws"):
            try:
                resp["draws"] = self.draws(runnable, definition, alive[0], device, req["draws"])
            except BaseException as e:  # solution code failed
                if isinstance(e, KeyboardInterrupt):
                    raise
                return _error(e, device, self.solution)
        tampered = self.guard.changed(Guard.HARNESS)
        # A tampered process judges no other solution: it exits after answering and is replaced.
        return {**resp, "tampered": tampered, "fatal": bool(tampered)}

    def draws(self, runnable: Any, definition: Any, inputs: list[Any], device: str,
              plan: dict[str, int]) -> Any:
        """A sampling solution called ``calls`` times on its batch repeated ``repeat`` times:
        every sample it drew (output 0), as one int32 tensor, for the controller to count."""
        import torch

        from .sampling import repeat_inputs

        padded = repeat_inputs(list(definition.inputs), inputs, plan["repeat"])
        samples = []
        for _ in range(plan["calls"]):
            out = call_solution(runnable, definition, padded, device)[0][0]
            if not isinstance(out, torch.Tensor) or out.is_floating_point():
                return None  # the trials' verdict names what is wrong with such an output
            samples.append(out.to(torch.int32))
        return self.outbox.pack(torch.stack(samples))

    def op_timing(self, req: Request) -> Reply:
        """Time the solution over rotating input sets (interleaved with a baseline solution when
        the request names one); send back the outputs of the last timed calls so the controller
        can check that what was timed computed the right thing."""
        from . import timing
        from .inputs import make_inputs

        definition, workload, runnable, early = self.build(req)
        if early is not None:
            return early
        device = req["device"]
        sets = [make_inputs(definition, workload, device, s, req["root"]) for s in req["seeds"]]
        mine = _Timed(runnable, definition, sets, req["seeds"], device, req["recheck"],
                      req["iterations"])
        timed = [mine]
        notes = []
        if req.get("baseline"):
            other = self.build_baseline(req, definition)
            if isinstance(other, str):
                notes.append(f"baseline not timed: {other}")
            else:
                timed.append(_Timed(other, definition, sets, req["seeds"], device))
        call, before, after = timing.interleave([t.call for t in timed], [t.before for t in timed],
                                                [t.after for t in timed])
        import torch

        try:
            with torch.no_grad():
                m = timing.measure(call, device=device, warmup=req["warmup"] * len(timed),
                                   iterations=req["iterations"] * len(timed), before=before,
                                   after=after, clock=req.get("clock", "auto"))
        except BaseException as e:  # solution code failed while timed
            if isinstance(e, KeyboardInterrupt):
                raise
            return _error(e, device, self.solution)
        _sync(device)
        m.notes += notes
        pristine = lambda seed: make_inputs(definition, workload, device, seed, req["root"])  # noqa: E731
        # The measurement goes back raw (CUPTI records, interleaved): the controller computes
        # the times and splits them among the solutions (timing.resolve), not this process.
        resp: Reply = {"status": "ok", "measurement": m.to_json(), "parts": len(timed),
                                "checked": mine.checked(req["recheck"], req["iterations"], pristine,
                                                        list(definition.inputs), self.outbox),
                                "tampered": self.guard.changed()}
        resp["fatal"] = bool(resp["tampered"])
        if req.get("judge") and not resp["fatal"]:
            resp.update(judge_time(runnable, definition, sets[0], device, req["warmup"],
                                   req["iterations"]))
        return resp

    def build_baseline(self, req: Request, definition: Any) -> Any:
        """The baseline's runnable, or why there is none (it is context, never a verdict)."""
        from .models import validate

        try:
            solution = validate("solution", req["baseline"], req["where"].get("baseline", "?"))
            runnable = self.builder.build(definition, solution, req["device"])
        except Exception as e:  # noqa: BLE001
            return f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"
        reclaim_crash_handler()
        return runnable if runnable is not None else "compile-only on this machine"

    def op_time_reference(self, req: Request) -> Reply:
        """Time the definition's reference (this worker never runs solution code)."""
        import torch
        from flashinfer_bench.compile import BuilderRegistry

        from . import timing
        from .inputs import make_inputs
        from .models import validate

        definition = validate("definition", req["definition"], req["where"]["definition"])
        workload = validate("workload", req["workload"], req["where"]["workload"])
        ref = BuilderRegistry.get_instance().build_reference(definition)
        sets = [make_inputs(definition, workload, req["device"], s, req["root"])
                for s in req["seeds"]]
        with torch.no_grad():
            m = timing.measure(lambda i: ref(*sets[i % len(sets)]), device=req["device"],
                               warmup=req["warmup"], iterations=req["iterations"],
                               clock=req.get("clock", "auto"))
        resp: Reply = {"status": "ok", "measurement": m.to_json()}
        if req.get("judge"):
            resp.update(judge_time(ref, definition, sets[0], req["device"], req["warmup"],
                                   req["iterations"]))
        return resp

    def op_reference(self, req: Request) -> Reply:
        """The definition's reference (reference.py); this process runs no solution code."""
        from .reference import reference_op

        return reference_op(req, self.outbox)

    def op_profile(self, req: Request) -> Reply:
        """Under ncu (ncu.py): the solution's calls on one input set, the profiled ones inside
        an NVTX range, after one call outside it (builds, autotuning and first-launch work)."""
        import torch

        from .inputs import make_inputs, poisoned_outputs
        from .ncu import CALLS, RANGE

        definition, workload, runnable, early = self.build(req)
        if early is not None:
            return early
        device = req["device"]
        inputs = make_inputs(definition, workload, device, req["seeds"][0], req["root"])
        # Output buffers made once, outside the range: inside it, only the solution launches.
        dps = runnable.metadata.destination_passing_style
        args = [*inputs, *(poisoned_outputs(definition, inputs, device) if dps else [])]
        try:
            with torch.no_grad():
                runnable(*args)
                _sync(device)
                torch.cuda.nvtx.range_push(RANGE)  # type: ignore[no-untyped-call,unused-ignore]
                for _ in range(CALLS):
                    runnable(*args)
                _sync(device)
                torch.cuda.nvtx.range_pop()  # type: ignore[no-untyped-call,unused-ignore]
        except BaseException as e:  # the solution failed: the item says so
            if isinstance(e, KeyboardInterrupt):
                raise
            return _error(e, device, self.solution)
        return {"status": "ok"}

    def op_ping(self, req: Request) -> Reply:
        """Alive; and how this process started (tools/switch_cost.py)."""
        return {"status": "ok", "pid": os.getpid(), "execd": EXECD[0]}

    def handle(self, req: Request) -> Reply:
        op: Callable[[Request], Reply] | None = getattr(self, f"op_{req['op']}",
                                                                         None)
        if op is None:
            return {"status": "worker_error", "message": f"unknown op {req['op']!r}"}
        self.outbox.release()  # the controller has copied what the last answer shared
        self.outbox.ipc = req.get("transfer", "ipc") == "ipc"
        try:
            return op(req)
        except Exception as e:  # noqa: BLE001 -- the harness's bug or invalid input files: report
            from .inputs import WorkloadError
            from .models import InvalidFile

            if isinstance(e, (InvalidFile, WorkloadError)):
                return {"status": "invalid", "message": str(e)}
            return {"status": "worker_error", "message": f"{type(e).__name__}: {e}",
                    "traceback": traceback.format_exc()[-6000:]}


def warm_cuda() -> None:
    """Create this process's CUDA context now (a spare child does it while the current solution
    runs; up to a second on an H200), not in the first item of the next solution."""
    import torch

    try:
        if torch.cuda.is_available():
            torch.empty(1, device="cuda")
    except Exception:  # noqa: BLE001 - reported by the first request that needs CUDA
        pass


def warm_profiler() -> None:
    """CUPTI's first start in a process takes seconds: pay it during start-up, not in the first
    timed item (the controller asks for this when the session times on a GPU)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    if not torch.cuda.is_available():
        return
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        torch.cuda._sleep(10)  # type: ignore[attr-defined,no-untyped-call,unused-ignore]
        torch.cuda.synchronize()
    prof.events()
    from .timing import marker_name

    marker_name()  # learned now, outside every item


def warm_imports() -> None:
    """Import what every first request needs (flashinfer-bench's models and builders, with their
    toolchains triton and tvm_ffi): on a loaded 2-core machine that takes seconds, which belong
    to start-up, not to the first item's --fib-timeout (issue 14). A failure here is left for
    that request to report."""
    try:
        from flashinfer_bench.compile import BuilderRegistry

        from . import inputs, models  # noqa: F401
        from .buildcache import toolchain

        BuilderRegistry.get_instance()
        toolchain(dict(os.environ))  # the build cache's key: `c++ --version` once, not per child
    except Exception:  # noqa: BLE001 - reported by the first request that needs it
        pass
    reclaim_crash_handler()  # tvm_ffi installs its own SIGSEGV handler: see Worker.build


def serve(conn: Connection, child: bool = False) -> None:
    """Answer requests until EOF. As a zygote's child (``child``), each answer is prefixed with
    whether this process goes on after it (zygote.py)."""
    warm_imports()  # imports torch: seconds, which must not count against an item's timeout
    if os.environ.get(WARM_CUDA):
        warm_cuda()
    if os.environ.get(WARM_PROFILER):
        warm_profiler()
    # After the warm-ups (their lazy initialisation is not tampering), before any solution code:
    # the guard's snapshot.
    worker = Worker()
    handle = profiled(worker.handle)
    conn.send_bytes(pickle.dumps({"ready": os.getpid()}))
    while True:
        try:
            req = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        resp = handle(req)
        data = pickle.dumps(resp, protocol=pickle.HIGHEST_PROTOCOL)
        if child:
            data = (zygote.EXITS if resp.get("fatal") else zygote.GOES_ON) + data
        conn.send_bytes(data)
        if resp.get("fatal"):
            sys.stdout.flush()
            os._exit(3)  # the CUDA context is poisoned: let the controller start a fresh worker


PROFILE_DIR = "PYTEST_FIB_PROFILE_WORKERS"  # where a session's time goes (docs/performance.md)


def profiled(handle: Callable[[Request], Reply]) -> Callable[[Request], Reply]:
    """``handle``, or with PYTEST_FIB_PROFILE_WORKERS=DIR set, ``handle`` under cProfile: the
    stats of every request this process served so far go to DIR/worker-<pid>.prof after each
    one (a solution's process is killed, not ended, when the next solution comes)."""
    folder = os.environ.get(PROFILE_DIR)
    if not folder:
        return handle
    import cProfile

    prof = cProfile.Profile()
    path = os.path.join(folder, f"worker-{os.getpid()}.prof")

    def run(req: Request) -> Reply:
        try:
            return prof.runcall(handle, req)
        finally:
            prof.dump_stats(path)

    return run


EXECD = [False]  # this process is a fresh interpreter its zygote exec'd, not a plain fork


def serve_child(conn: Connection) -> None:
    """A solution's process, forked by the zygote: it exits with its parent."""
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    serve(conn, child=True)


def run_zygote(conn: Connection) -> None:
    """Import everything a solution's process needs, never touching CUDA (a forked child must
    create its own context), say ready, then fork one child per solution (zygote.py)."""
    # Children run on in the fork: import everything now, once (torch, and the builder registry's
    # toolchains: seconds). Unless they are told to exec a fresh interpreter every time
    # (zygote.EXEC_CHILDREN = "1"): then nothing imported here would reach them.
    if os.environ.get(zygote.EXEC_CHILDREN) != "1":
        warm_imports()
    conn.send_bytes(pickle.dumps({"ready": os.getpid()}))
    zygote.Zygote(conn, serve_child).run()


def main(argv: list[str]) -> None:
    if argv[1] == "--child":  # a solution's process that its zygote exec'd (zygote.py)
        EXECD[0] = True
        serve_child(Connection(int(argv[2])))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    fd = int(argv[1])
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    if os.environ.get(WRAPPED):  # one process per call already, and the tool follows it
        serve(Connection(fd))
    else:
        run_zygote(Connection(fd))
    if os.environ.get(WRAPPED):
        return  # under compute-sanitizer or ncu: a normal exit, their report comes at its end
    # Told to stop: skip interpreter finalization and CUDA/CUPTI teardown (seconds, measured at
    # session end); the driver releases the process's GPU resources either way.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
