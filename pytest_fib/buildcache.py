"""A persistent, content-addressed build cache for CUDA/C++ solutions, and the build pool that
fills it while the session runs (issue 15, items 1-3).

Key: a SHA-256 over everything that decides what a build produces -- the sources (path and
content), entry point, language, binding, what is done (``check``: the compile check on a machine
without a GPU; ``build``: flashinfer-bench's builder), the compile flags and target architecture
the environment sets, and the versions of torch, tvm-ffi, triton, flashinfer-bench, the CUDA
toolkit, the host compiler and pytest-fib's own compile check. Edit one kernel and only its key
changes: only it rebuilds.

Layout under the cache folder (``--fib-cache-dir``, else ``$FIB_CACHE_PATH``, else
``~/.cache/pytest-fib``)::

    builds/<kk>/<key>/meta.json   status (ok, failed, unavailable), message, log, when, counts
    builds/<kk>/<key>/fib/...     flashinfer-bench's build folder for this key (FIB_CACHE_PATH
                                  points here while it builds: torch/<pkg>/, tvm_ffi/<pkg>/)
    locks/<key>.lock              flock: exclusive while building, shared while reading
    triton/                       Triton's kernel cache (TRITON_CACHE_DIR, unless set)

Locks are ``fcntl.flock`` on one file per key, released by the kernel when a process dies: safe
under pytest-xdist and two sessions at once, and a killed build leaves nothing locked. meta.json
is written atomically (temporary file, ``os.replace``) and last, so an entry without it is an
unfinished build and is built again.

A failed build is cached with its log until its key changes; ``--fib-rebuild`` builds every
solution of the session once more (a per-session token in meta.json says which entries this
session built). Builds run ahead in a pool of processes started when collection ends (one per CPU
core), separate from the workers that run solutions; a worker that reaches a solution first
waits on its lock, or builds it itself when the pool has not started it.

Nothing here imports torch: the controller computes keys with ``importlib.metadata``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

FORMAT = 1
COMPILED = ("cuda", "cpp")  # languages with something to build ahead
ENV_DIR = "PYTEST_FIB_CACHE_DIR"  # the cache folder, for workers and build processes
ENV_REBUILD = "PYTEST_FIB_REBUILD"  # --fib-rebuild: this session's token
ENV_ARCH = "PYTEST_FIB_BUILD_ARCH"  # the visible GPUs' architectures, when no arch list is set
# Environment variables that change what a build produces.
KEY_ENV = ("TORCH_CUDA_ARCH_LIST", "TVM_FFI_CUDA_ARCH_LIST", ENV_ARCH, "CXX", "CC", "CFLAGS",
           "CXXFLAGS", "LDFLAGS", "NVCC_APPEND_FLAGS", "NVCC_PREPEND_FLAGS", "CUDA_HOME",
           "TORCH_EXTENSIONS_DIR", "TVM_FFI_CXX_FLAGS")
VERSIONED = ("torch", "apache-tvm-ffi", "triton", "flashinfer-bench")


# -- the key -----------------------------------------------------------------------------------

_TOOLCHAIN: dict[tuple[str, ...], dict[str, str]] = {}


def _cuda_version(cuda_home: str) -> str:
    try:
        for line in (Path(cuda_home) / "include" / "cuda.h").read_text(errors="replace"
                                                                        ).splitlines():
            if line.startswith("#define CUDA_VERSION "):
                return line.split()[-1]
    except OSError:
        pass
    try:
        out = subprocess.run([str(Path(cuda_home) / "bin" / "nvcc"), "--version"],
                             capture_output=True, text=True, timeout=60, check=False).stdout
        return out.strip().splitlines()[-1] if out.strip() else "none"
    except (OSError, subprocess.SubprocessError):
        return "none"


def _compiler_version(cxx: str) -> str:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60,
                             check=False)
        return out.stdout.splitlines()[0] if out.stdout else "none"
    except (OSError, subprocess.SubprocessError, IndexError):
        return "none"


def toolchain(env: dict[str, str]) -> dict[str, str]:
    """Versions that decide what a build produces; computed once per process and toolchain."""
    from importlib import metadata

    cuda_home = env.get("CUDA_HOME") or "/usr/local/cuda"
    cxx = env.get("CXX") or "c++"
    memo = (cuda_home, cxx)
    if memo not in _TOOLCHAIN:
        out = {}
        for dist in VERSIONED:
            try:
                out[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                out[dist] = "none"
        out["cuda"] = _cuda_version(cuda_home)
        out["cxx"] = _compiler_version(cxx)
        # the compile check's flags live in build.py (and its stub headers in cuda_stubs/)
        here = Path(__file__).parent
        digest = hashlib.sha256((here / "build.py").read_bytes())
        for stub in sorted((here / "cuda_stubs").rglob("*")):
            if stub.is_file():
                digest.update(stub.name.encode() + stub.read_bytes())
        out["pytest-fib-check"] = digest.hexdigest()[:16]
        _TOOLCHAIN[memo] = out
    return _TOOLCHAIN[memo]


def binding_of(spec: dict[str, Any]) -> str:
    return spec.get("binding") or "tvm-ffi"  # flashinfer-bench's default for C++/CUDA


def key_for(solution: dict[str, Any], device: str, env: dict[str, str]) -> str | None:
    """The cache key of a solution (its JSON, as the dataset or the worker's model dumps it), or
    None when there is nothing to compile ahead (Python, Triton)."""
    spec = solution.get("spec") or {}
    language = spec.get("language")
    if language not in COMPILED:
        return None
    binding = binding_of(spec)
    doing = "check" if device == "cpu" and binding == "torch" else "build"
    material = {
        "format": FORMAT,
        "sources": sorted([str(s.get("path")), str(s.get("content"))]
                          for s in solution.get("sources") or []),
        "entry_point": spec.get("entry_point"), "language": language, "binding": binding,
        "doing": doing, "device": "cpu" if device == "cpu" else "cuda",
        "env": {k: env.get(k, "") for k in KEY_ENV},
        "toolchain": toolchain(env),
    }
    blob = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def gpu_arch() -> str:
    """The visible GPUs' compute capabilities (``9.0 10.0``), through the driver (no torch)."""
    import ctypes

    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return ""
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return ""
    caps = set()
    for i in range(count.value):
        major, minor = ctypes.c_int(0), ctypes.c_int(0)
        cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, i)  # COMPUTE_CAPABILITY_MAJOR
        cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, i)
        caps.add(f"{major.value}.{minor.value}")
    return " ".join(sorted(caps))


# -- the store ---------------------------------------------------------------------------------

class Store:
    """One cache folder: entries by key, their locks, and what this session counts as valid."""

    def __init__(self, root: Path, token: str | None = None) -> None:
        self.root = root
        self.token = token  # --fib-rebuild: only entries this session built are valid

    @classmethod
    def from_env(cls) -> Store | None:
        root = os.environ.get(ENV_DIR)
        return cls(Path(root), os.environ.get(ENV_REBUILD) or None) if root else None

    def entry(self, key: str) -> Path:
        return self.root / "builds" / key[:2] / key

    def meta(self, key: str) -> dict[str, Any] | None:
        """The entry's record when this session may use it, else None."""
        try:
            meta = json.loads((self.entry(key) / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("key") != key:
            return None
        if self.token and meta.get("session") != self.token:
            return None
        return meta

    @contextlib.contextmanager
    def lock(self, key: str, shared: bool = False, wait: bool = True) -> Iterator[bool]:
        """flock on the key's lock file; yields False (without waiting) when ``wait`` is False
        and another process holds it."""
        folder = self.root / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
            try:
                fcntl.flock(fd, mode)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # releases the lock

    def write_meta(self, key: str, meta: dict[str, Any]) -> None:
        entry = self.entry(key)
        entry.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".meta-", dir=entry)
        with os.fdopen(fd, "w") as fh:
            json.dump(meta, fh, indent=1)
        os.replace(tmp, entry / "meta.json")
        if meta.get("log"):
            (entry / "build.log").write_text(meta["log"])


# -- building through the cache (worker side, and the pool's build processes) ------------------

@contextlib.contextmanager
def _builder_home(folder: Path) -> Iterator[None]:
    """flashinfer-bench's builders build under $FIB_CACHE_PATH: point it at the entry. Its torch
    builder rewrites every source before ``cpp_extension.load`` (new mtimes: ninja recompiles
    everything, each session); here a source whose content is unchanged is left alone, so a
    cached build costs a no-op ninja run and an import."""
    from flashinfer_bench.compile import utils
    from flashinfer_bench.compile.builders import torch_builder

    def write_changed(path: Path, sources: list[Any]) -> list[Path]:
        path.mkdir(parents=True, exist_ok=True)
        out = []
        for src in sources:
            target = path / src.path
            try:
                same = target.read_text() == src.content
            except (OSError, UnicodeDecodeError):
                same = False
            if not same:
                utils.write_sources_to_path(path, [src])
            out.append(target)
        return out

    saved = os.environ.get("FIB_CACHE_PATH")
    saved_writer = torch_builder.write_sources_to_path
    os.environ["FIB_CACHE_PATH"] = str(folder)
    torch_builder.write_sources_to_path = write_changed  # type: ignore[assignment,unused-ignore]
    try:
        yield
    finally:
        torch_builder.write_sources_to_path = saved_writer  # type: ignore[assignment,unused-ignore]
        if saved is None:
            os.environ.pop("FIB_CACHE_PATH", None)
        else:
            os.environ["FIB_CACHE_PATH"] = saved


def _replay(store: Store, key: str, meta: dict[str, Any], build: Callable[[], Any]) -> Any:
    from .build import BuildFailure, CheckUnavailable

    note = (f"\n(cached build result from {meta.get('when', '?')}, build cache "
            f"{store.root}: edit the solution's sources or pass --fib-rebuild to build again)")
    if meta["status"] == "failed":
        raise BuildFailure(meta.get("message", "") + note, meta.get("log", ""))
    if meta["status"] == "unavailable":
        raise CheckUnavailable(meta.get("message", ""))
    if meta.get("doing") == "check":
        return None  # compile-checked: nothing to load on this machine
    with _builder_home(store.entry(key) / "fib"):
        return build()  # finds its build folder complete: loads, compiles nothing


def _build_now(store: Store, key: str, doing: str, build: Callable[[], Any]) -> Any:
    """Build under the key's exclusive lock (held by the caller) and record the result."""
    from .build import BuildFailure, CheckUnavailable, missing_module

    entry = store.entry(key)
    if entry.exists():  # an unfinished build (killed) or --fib-rebuild: start clean
        shutil.rmtree(entry, ignore_errors=True)
    entry.mkdir(parents=True, exist_ok=True)
    start = time.time()
    meta: dict[str, Any] = {"key": key, "doing": doing, "session": store.token,
                            "when": time.strftime("%Y-%m-%d %H:%M:%S"), "started": round(start, 3),
                            "pid": os.getpid()}
    try:
        with _builder_home(entry / "fib"):
            result = build()
    except BuildFailure as e:
        if _CURRENT[0] is not None and missing_module(f"{e}\n{e.log}", _CURRENT[0]):
            raise  # the environment's fault, fixed by an install: not cached
        meta.update(status="failed", message=str(e), log=e.log or "",
                    seconds=round(time.time() - start, 3))
        store.write_meta(key, meta)
        raise
    except CheckUnavailable as e:
        meta.update(status="unavailable", message=str(e), seconds=round(time.time() - start, 3))
        store.write_meta(key, meta)
        raise
    meta.update(status="ok", seconds=round(time.time() - start, 3))
    store.write_meta(key, meta)
    return result


_CURRENT: list[Any] = [None]  # the solution being built (names a missing package)


def cached(solution: Any, device: str, build: Callable[[], Any]) -> Any:
    """``build()`` through the cache: a valid entry is replayed (a failure raised again with its
    log, a compile check passed, a build loaded from its folder), else built and recorded.
    Without a cache folder (no ``PYTEST_FIB_CACHE_DIR``) it just builds."""
    store = Store.from_env()
    if store is None:
        return build()
    raw = solution.model_dump(mode="json")
    key = key_for(raw, device, dict(os.environ))
    if key is None:
        return build()
    doing = "check" if device == "cpu" and binding_of(raw["spec"]) == "torch" else "build"
    _CURRENT[0] = solution
    with store.lock(key, shared=True):  # a recorded failure or compile check: nothing to run
        meta = store.meta(key)
        if meta is not None and (meta.get("status") != "ok" or meta.get("doing") == "check"):
            return _replay(store, key, meta, build)
    with store.lock(key):
        meta = store.meta(key)  # built by another process while this one waited
        if meta is not None:
            # Loading runs torch's cpp_extension.load (a no-op ninja run): under this lock a
            # baton file it left there is stale (a process killed while loading), and would make
            # every later load wait for ever.
            for stale in (store.entry(key) / "fib").glob("torch/*/lock"):
                stale.unlink(missing_ok=True)
            return _replay(store, key, meta, build)
        return _build_now(store, key, doing, build)


def prebuild(job: dict[str, Any]) -> int:
    """One build of the pool, in its own process: 0 built (or found built), 3 another process
    holds the key (it builds it; whoever needs it waits on the lock)."""
    store = Store.from_env()
    assert store is not None
    key = job["key"]
    with store.lock(key, wait=False) as got:
        if not got:
            return 3
        if store.meta(key) is not None:
            return 0
        from .build import Builder, BuildFailure, CheckUnavailable  # torch & co: only now
        from .models import validate

        definition = validate("definition", job["definition"], job["where"])
        solution = validate("solution", job["solution"], job["where"])
        _CURRENT[0] = solution
        doing = ("check" if job["device"] == "cpu" and binding_of(job["solution"]["spec"])
                 == "torch" else "build")
        try:
            _build_now(store, key, doing,
                       lambda: Builder().compile(definition, solution, job["device"]))
        except (BuildFailure, CheckUnavailable):
            pass  # recorded: the item reports it
    return 0


# -- the controller: settings, header, the pool --------------------------------------------------

def _usage(source: str, value: object, problem: str) -> pytest.UsageError:
    return pytest.UsageError(
        f"pytest-fib: {source}={value!r}: {problem}. Give --fib-cache-dir a folder pytest-fib can "
        "create and write (or set FIB_CACHE_PATH), e.g. --fib-cache-dir ~/.cache/pytest-fib.")


def resolve_dir(config: pytest.Config) -> tuple[Path, str]:
    """--fib-cache-dir, else $FIB_CACHE_PATH, else ~/.cache/pytest-fib; checked now."""
    from .paths import output_dir_problem

    value = config.getoption("fib_cache_dir", None)
    if value:
        source, path = "--fib-cache-dir", (config.invocation_params.dir
                                           / os.path.expanduser(value)).resolve()
    elif os.environ.get("FIB_CACHE_PATH"):
        value = os.environ["FIB_CACHE_PATH"]
        source, path = "FIB_CACHE_PATH", Path(os.path.expanduser(value)).resolve()
    else:
        value = "~/.cache/pytest-fib"
        source, path = "default --fib-cache-dir", Path.home() / ".cache" / "pytest-fib"
    problem = output_dir_problem(path)
    if problem is None:
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe-")
            probe.close()
        except OSError as e:
            problem = f"cannot be written ({e.strerror or e})"
    if problem:
        raise _usage(source, value, problem if problem.startswith(str(path))
                     else f"{path} {problem}")
    return path, source


class BuildCache:
    """The controller's side: the folder, the keys of the session's solutions, the pool."""

    def __init__(self, root: Path, source: str, device: str, rebuild: bool,
                 jobs: int | None = None) -> None:
        self.root = root
        self.source = source
        self.device = device
        self.rebuild = rebuild
        self.jobs = jobs or _jobs()
        self._saved_env: dict[str, str | None] = {}
        token = os.environ.get(ENV_REBUILD) if rebuild else None
        if rebuild and not token:
            token = uuid.uuid4().hex  # xdist workers inherit it: one rebuild per session
        self.store = Store(root, token)
        self._setenv(ENV_DIR, str(root))
        self._setenv(ENV_REBUILD, token)
        if "TRITON_CACHE_DIR" not in os.environ:
            self._setenv("TRITON_CACHE_DIR", str(root / "triton"))
        if (device == "cuda" and not os.environ.get("TORCH_CUDA_ARCH_LIST")
                and not os.environ.get("TVM_FFI_CUDA_ARCH_LIST")):
            self._setenv(ENV_ARCH, os.environ.get(ENV_ARCH) or gpu_arch())
        self.pool: BuildPool | None = None
        self.write: Callable[[str], None] | None = None  # the terminal's write_line

    def _setenv(self, name: str, value: str | None) -> None:
        if name not in self._saved_env:
            self._saved_env[name] = os.environ.get(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

    def env(self) -> dict[str, str]:
        """The environment workers and build processes get (pool.worker_env)."""
        from .pool import worker_env

        return worker_env(self.device)

    def key(self, raw: dict[str, Any], env: dict[str, str] | None = None) -> str | None:
        return key_for(raw, self.device, env if env is not None else self.env())

    def header(self, solutions: list[Any]) -> list[str]:
        env = self.env()
        keys = {k for k in (self.key(s.raw, env) for s in solutions) if k}
        if not keys:
            return [f"pytest-fib: build cache {self.root} (from {self.source}): no CUDA/C++ "
                    "solution to build"]
        metas = [self.store.meta(k) for k in keys]
        hit = [m for m in metas if m is not None]
        failed = sum(m.get("status") == "failed" for m in hit)
        extra = f" ({failed} failed build(s) cached with their logs)" if failed else ""
        if self.rebuild:
            extra += "; --fib-rebuild: every one is built again"
        return [f"pytest-fib: build cache {self.root}: {len(hit)} of {len(keys)} solutions "
                f"cached{extra}"]

    def ready_first(self, items: list[Any]) -> list[Any]:
        """The items in their order, except that those whose solution still has to be built come
        last (a stable partition: each solution's items keep their order). After one kernel of
        many is edited, the others' items run while it builds (issue 15, item 3). Not under
        xdist, whose workers must collect one order whatever their caches hold."""
        env = self.env()
        waiting: dict[int, bool] = {}  # per solution (its raw JSON object)

        def must_wait(item: Any) -> bool:
            case = getattr(item, "case", None)
            if case is None:
                return False
            raw = case.solution.raw
            if id(raw) not in waiting:
                key = self.key(raw, env)
                waiting[id(raw)] = key is not None and self.store.meta(key) is None
            return waiting[id(raw)]

        flags = [must_wait(i) for i in items]
        return ([i for i, w in zip(items, flags, strict=True) if not w]
                + [i for i, w in zip(items, flags, strict=True) if w])

    def start(self, cases: list[Any]) -> None:
        """Build ahead every CUDA/C++ solution of these cases (in their order) that the cache
        lacks, in a pool of processes; returns at once."""
        env = self.env()
        jobs: dict[str, dict[str, Any]] = {}
        for case in cases:
            key = None if getattr(case, "skip", None) else self.key(case.solution.raw, env)
            if key is None or key in jobs or self.store.meta(key) is not None:
                continue
            jobs[key] = {"key": key, "definition": case.definition.raw,
                         "solution": case.solution.raw, "device": self.device,
                         "where": case.solution.path, "name": case.solution.name}
        if jobs:
            order = list(jobs.values())
            worker = os.environ.get("PYTEST_XDIST_WORKER", "")
            if worker.startswith("gw") and worker[2:].isdigit():
                # every xdist worker collects every item: each starts at its own place in the
                # list, so their pools build different solutions first instead of queueing on
                # the same locks
                count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
                shift = int(worker[2:]) * len(order) // max(1, count)
                order = order[shift:] + order[:shift]
            cores = self.jobs * int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
            # ninja inside each build (torch's cpp_extension) shares the cores with the others
            env.setdefault("MAX_JOBS", str(max(1, cores // min(len(order), self.jobs))))
            self.pool = BuildPool(order, env, self.jobs)
            self.pool.start()
            if self.write is not None:
                self.write(self.pool.progress() + " (in the background, while items run)")

    def wait(self, raw: dict[str, Any], idle: Callable[[], bool] | None = None) -> None:
        """Block until the pool has built this solution, with a progress line now and then.
        (A solution the pool does not hold is built or waited for by the worker, on its lock.)
        ``idle`` is called while the build runs, again and again until it returns False: work
        the caller would do after the build anyway."""
        if self.pool is None:
            return
        key = self.key(raw)
        if key is not None:
            self.pool.wait(key, self.write, idle)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.stop()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()


def setup(config: pytest.Config, fib: Any) -> BuildCache:
    """The session's build cache (checked now: a bad folder is a usage error)."""
    root, source = resolve_dir(config)
    cache = BuildCache(root, source, fib.settings.device,
                       bool(config.getoption("fib_rebuild", False)))
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is not None:
        cache.write = terminal.write_line
    return cache


def _jobs() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    return max(1, (cores or 1) // max(1, workers))


PROGRESS_EVERY = 15.0  # seconds between progress lines while an item waits for the pool


class BuildPool:
    """Build processes, at most ``jobs`` at once, fed in the session's item order."""

    def __init__(self, jobs: list[dict[str, Any]], env: dict[str, str], parallel: int) -> None:
        self.jobs = jobs
        self.env = env
        self.parallel = parallel
        self.done: dict[str, threading.Event] = {j["key"]: threading.Event() for j in jobs}
        self.finished = 0
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stopping = False
        self.tmp = Path(tempfile.mkdtemp(prefix="pytest-fib-builds-"))
        self.thread = threading.Thread(target=self._run, daemon=True, name="fib-build-pool")
        self.lock = threading.Lock()

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        pending = list(self.jobs)
        running: list[tuple[subprocess.Popen[bytes], str]] = []
        while (pending or running) and not self.stopping:
            while pending and len(running) < self.parallel and not self.stopping:
                job = pending.pop(0)
                spec = self.tmp / f"{job['key']}.json"
                spec.write_text(json.dumps(job))
                with (self.tmp / f"{job['key']}.log").open("wb") as log:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "pytest_fib.buildcache", str(spec)],
                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                        env=self.env, start_new_session=True)
                with self.lock:
                    self.procs.append(proc)
                running.append((proc, job["key"]))
            time.sleep(0.2)
            for proc, key in list(running):
                if proc.poll() is not None:
                    running.remove((proc, key))
                    self.finished += 1
                    self.done[key].set()
        for event in self.done.values():
            event.set()

    def wait(self, key: str, write: Callable[[str], None] | None,
             idle: Callable[[], bool] | None = None) -> None:
        event = self.done.get(key)
        if event is None:
            return
        while idle is not None and not event.is_set() and idle():
            pass
        while not event.wait(PROGRESS_EVERY if write else None):
            if write:
                write(self.progress())

    def progress(self) -> str:
        return (f"pytest-fib: building {len(self.jobs)} CUDA/C++ solutions on {self.parallel} "
                f"cores: {self.finished} done")

    def stop(self) -> None:
        """Session end: builds still running are stopped (their keys stay unbuilt: no meta.json)."""
        from .zygote import kill_tree

        self.stopping = True
        with self.lock:
            procs = list(self.procs)
        for proc in procs:
            if proc.poll() is None:
                kill_tree(proc.pid)
                proc.wait()
        self.thread.join(timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[1]).read_text())
    return prebuild(job)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
