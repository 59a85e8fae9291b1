"""``pytest --modal``: the controller. Called from plugin.py's ``pytest_cmdline_main`` before any
local collection; returns the exit code of the session.

Modelled on pytest-xdist's controller/worker split: the controller ships the invocation (the
user's arguments, minus ``--modal*``, artifact paths rewritten into a remote output folder, the
dataset on a volume), runs ``python -m pytest ...`` in one container per shard from the shipped
project root, streams the output live, fetches the output folders, merges them into the local
artifact paths, replays every remote report into a local session that collects nothing
(remote/replay.py: junit, cache and other plugins see the remote items) and returns the remote exit
code. Infrastructure failures return
:data:`~pytest_fib.remote.plan.EXIT_INFRA` (8), never a test outcome.

The local side needs pytest and, for the Modal backend only, the ``modal`` client: nothing here
collects, imports torch, or imports modal before the credentials check passed.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import queue
import random
import re
import shlex
import shutil
import signal
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from .._toml import tomllib
from . import options as opt
from .backends import Handle, InfraError, Job
from .merge import CACHE_FILES, FIB_CACHE_VALUES, Homecoming
from .plan import (
    CACHE_KEY,
    EXIT_INFRA,
    MAX_SHIP_BYTES,
    REPORTS_KEY,
    STORAGE_KEY,
    Artifacts,
    Layout,
    PlanError,
    ShipList,
    VolumeProblem,
    check_paths,
    combine_exit_codes,
    detect_root,
    fetch_command,
    find_artifacts,
    make_layout,
    option_table,
    parse_args,
    prep_command,
    remote_args,
    remote_env,
    ship_list,
    stage,
)
from .replay import Received, ReplayPlugin, collection_problems, read, replay
from .shard import EVENT

INTERRUPTED = int(pytest.ExitCode.INTERRUPTED)
PREFIX = "[modal] "


# -- credentials (checked before modal is imported: a usage error within milliseconds) ---------

def modal_credentials(env: dict[str, str] | None = None) -> str | None:
    """Where Modal would find a token (env vars or the active profile of ~/.modal.toml), or None."""
    env = dict(os.environ) if env is None else env
    token_id, secret = env.get("MODAL_TOKEN_ID"), env.get("MODAL_TOKEN_SECRET")
    if token_id and secret:
        return "MODAL_TOKEN_ID/MODAL_TOKEN_SECRET"
    path = Path(env.get("MODAL_CONFIG_PATH") or Path(env.get("HOME", "~")).expanduser()
                / ".modal.toml")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    profiles = {k: v for k, v in data.items() if isinstance(v, dict)}
    name = env.get("MODAL_PROFILE") or next(
        (k for k, v in profiles.items() if v.get("active")), None) or (
        next(iter(profiles)) if len(profiles) == 1 else "default")
    profile = profiles.get(name, {})
    if (token_id or profile.get("token_id")) and (secret or profile.get("token_secret")):
        return str(path)
    return None


NO_CREDENTIALS = (
    "pytest --modal: no Modal credentials (MODAL_TOKEN_ID/MODAL_TOKEN_SECRET are not set and "
    "{path} holds no token). Fix: `pip install modal`, then `modal setup` (or `modal token new`) "
    "to create a token; on CI set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET. Without an account, "
    "`--modal-backend local` runs the same path on this machine. See docs/modal.md.")
NO_CLIENT = ("pytest --modal: the Modal client is not installed. Fix: pip install "
             "'pytest-fib[modal]' (or pip install modal), then `modal setup`.")


def volume_fix(name: str, problem: str, backend: str) -> str:
    if backend == "local":
        return (f"pytest --modal: the volume stand-in {name}: {problem}. With --modal-backend "
                "local, --modal-volume (or the session's dataset) names a local folder holding a "
                "FlashInfer-Trace dataset (definitions/, workloads/).")
    create = f"    modal volume create {name}\n" if "not exist" in problem else ""
    return (f"pytest --modal: Modal Volume {name!r}: {problem}. Upload the dataset (mind the "
            "trailing slash: with it the folder's contents land at the volume root, without it "
            "one folder deeper; both work):\n"
            f"{create}    modal volume put {name} ./flashinfer-trace/ /\n"
            "or name another volume with --modal-volume NAME (or NAME/PATH).")


# -- options and plan ---------------------------------------------------------------------------

@dataclasses.dataclass
class Options:
    backend: str
    volume: str | None
    gpu: str
    timeout: int
    shards: int

    @classmethod
    def from_config(cls, config: pytest.Config) -> Options:
        shards = config.getoption("modal_shards")
        shards = 1 if shards is None else int(shards)
        timeout = config.getoption("modal_timeout")
        timeout = opt.DEFAULT_TIMEOUT if timeout is None else int(timeout)
        if shards < 1:
            raise pytest.UsageError(f"--modal-shards={shards}: give 1 or more")
        if timeout < 1:
            raise pytest.UsageError(f"--modal-timeout={timeout}: give seconds, 1 or more")
        gpu = config.getoption("modal_gpu") or opt.DEFAULT_GPU
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*(:[1-9][0-9]?)?", gpu):
            raise pytest.UsageError(f"--modal-gpu={gpu!r}: expected a Modal GPU type, optionally "
                                    "with a count: B200, H100, H200, B200:2")
        return cls(config.getoption("modal_backend") or "modal",
                   config.getoption("modal_volume"), gpu, timeout, shards)


@dataclasses.dataclass
class Plan:
    project: Path
    invocation_dir: Path
    args: list[Any]
    artifacts: Artifacts
    dataset_local: Path | None  # the dataset the local session names (None: embedded default)
    dataset_source: str
    volume_name: str | None  # None: no volume (the embedded dataset ships with pytest-fib)
    volume_sub: str | None  # NAME/PATH given explicitly
    files: ShipList
    package: ShipList
    inputs: dict[str, Path]  # input-relative path -> local file
    shipped: dict[str, int]  # output-relative path -> bytes shipped as input
    start_cache: dict[str, Any]
    color: bool
    verbose: int
    collect_only: bool


def _local_dataset(config: pytest.Config) -> tuple[Path | None, str]:
    """The dataset the local session would use (settings.resolve's precedence), None if the
    embedded default."""
    value = config.getoption("fib_dataset", None)
    if value:
        return (config.invocation_params.dir / os.path.expanduser(value)).resolve(), "--fib-dataset"
    if os.environ.get("FIB_DATASET_PATH"):
        return (config.invocation_params.dir /
                os.path.expanduser(os.environ["FIB_DATASET_PATH"])).resolve(), "FIB_DATASET_PATH"
    try:
        ini = config.getini("fib_dataset")
    except ValueError:
        ini = None
    if ini:
        return (config.rootpath / os.path.expanduser(str(ini))).resolve(), "ini fib_dataset"
    return None, "embedded default"


def _cache_dir(config: pytest.Config, args: list[str]) -> Path | None:
    if not config.pluginmanager.has_plugin("cacheprovider") or any(
            "no:cacheprovider" in a for a in args):
        return None
    try:
        value = config.getini("cache_dir")
    except ValueError:
        return None
    return (config.rootpath / os.path.expanduser(os.path.expandvars(str(value)))).resolve()


def make_plan(config: pytest.Config, o: Options) -> Plan:
    import pytest_fib

    inv = config.invocation_params
    project = config.rootpath.resolve()
    invocation_dir = Path(inv.dir).resolve()
    if invocation_dir != project and project not in invocation_dir.parents:
        raise PlanError(f"pytest runs in {invocation_dir}, outside its rootdir {project}: --modal "
                        "ships the rootdir, so run pytest from inside it")
    raw = shlex.split(os.environ.get("PYTEST_ADDOPTS", "")) + list(inv.args)
    for flag in ("--pdb", "--trace"):
        if flag in raw:
            raise PlanError(f"{flag} needs a terminal on the remote side; debug locally "
                            "(pytest without --modal) or on the GPU machine itself")
    args = parse_args(raw, option_table(config))
    check_paths(args, invocation_dir, project)
    cache = _cache_dir(config, raw)
    artifacts = find_artifacts(args, invocation_dir, cache)

    dataset_local, source = _local_dataset(config)
    volume = o.volume
    volume_sub = None
    if volume and o.backend == "modal" and "/" in volume:
        volume, _, volume_sub = volume.partition("/")
    if volume is None and (dataset_local is not None):
        volume = opt.DEFAULT_VOLUME
    # What stays home: artifact folders, the local dataset and cache when inside the project.
    skip = [p for p in artifacts.paths.values()]
    skip += [p for p in (artifacts.storage, cache, dataset_local) if p is not None]
    if o.backend == "local" and o.volume:
        skip.append((invocation_dir / o.volume).resolve())
    try:
        patterns = [p for p in config.getini("modal_ignore") if p.strip()]
    except ValueError:
        patterns = []
    files = ship_list(project, skip=skip, patterns=patterns)
    package = ship_list(Path(pytest_fib.__file__).parent)
    if files.total_bytes + package.total_bytes > MAX_SHIP_BYTES:
        big = ", ".join(f"{f} ({n / 2**20:.1f} MB)" for n, f in files.largest())
        raise PlanError(
            f"the project folder {project} holds {files.total_bytes / 2**20:.0f} MB to ship "
            f"(limit {MAX_SHIP_BYTES // 2**20} MB); largest: {big}. Leave files out with ini "
            "modal_ignore = <glob> lines, or move data to the volume.")

    inputs: dict[str, Path] = {}
    shipped: dict[str, int] = {}

    def ship_input(rel: str, src: Path) -> None:
        inputs[rel] = src
        shipped[rel] = src.stat().st_size

    traces = artifacts.paths.get("traces")
    if traces is not None and config.getoption("fib_resume", False):
        from ..traces import INDEX

        index = traces / INDEX  # beside traces/, where TraceSet.from_path does not look
        if index.is_file():
            ship_input(f"traces/{INDEX}", index)
    if artifacts.storage is not None and artifacts.compares and artifacts.storage.is_dir():
        for f in sorted(artifacts.storage.rglob("*.json")):
            ship_input(f"{STORAGE_KEY}/{f.relative_to(artifacts.storage).as_posix()}", f)
    start_cache: dict[str, Any] = {}
    if cache is not None:
        for name in CACHE_FILES:
            f = cache / "v" / "cache" / name
            if f.is_file():
                ship_input(f"{CACHE_KEY}/v/cache/{name}", f)
                try:
                    start_cache[name] = json.loads(f.read_text())
                except ValueError:
                    pass
        for key in FIB_CACHE_VALUES:  # --fib-seed=last on the remote side reads this one
            f = cache / "v" / key
            if f.is_file():
                ship_input(f"{CACHE_KEY}/v/{key}", f)
    return Plan(project, invocation_dir, args, artifacts, dataset_local, source, volume,
                volume_sub, files, package, inputs, shipped, start_cache,
                color=_color(config, raw), verbose=int(config.getoption("verbose") or 0),
                collect_only=bool(config.getoption("collectonly", False)))


def last_seed(plan: Plan) -> int | None:
    """--lf/--ff without a seed reuse the last run's (settings.last_seed): shards get it from
    the shipped cache value, here, since each shard is told its seed."""
    if not any(a.name in ("--lf", "--last-failed", "--ff", "--failed-first") for a in plan.args):
        return None
    f = plan.inputs.get(f"{CACHE_KEY}/v/{FIB_CACHE_VALUES[0]}")
    try:
        value = json.loads(f.read_text()) if f is not None else None
    except (OSError, ValueError):
        return None
    return value if isinstance(value, int) else None


def _color(config: pytest.Config, raw: list[str]) -> bool:
    if any(a.startswith("--color") for a in raw):
        return False  # the user chose; pass theirs through
    if os.environ.get("NO_COLOR"):
        return False
    return bool(os.environ.get("PY_COLORS") == "1" or os.environ.get("FORCE_COLOR")
                or (sys.stdout.isatty() and os.environ.get("TERM") != "dumb"))


# -- the session --------------------------------------------------------------------------------

class Console:
    """Controller messages go to stderr; stdout carries the remote pytest's stdout only."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def out(self, text: str) -> None:
        self._write(sys.stdout, text)

    def err(self, text: str) -> None:
        self._write(sys.stderr, text)

    def note(self, text: str) -> None:
        self.err(PREFIX + text + "\n")

    def _write(self, stream: Any, text: str) -> None:
        with self.lock:
            try:
                stream.write(text)
            except UnicodeEncodeError:
                stream.write(text.encode(stream.encoding or "utf-8", "replace").decode(
                    stream.encoding or "utf-8", "replace"))
            stream.flush()


SUMMARY_ORDER = ("failed", "passed", "skipped", "deselected", "xfailed", "xpassed", "warnings",
                 "error")


def summary_line(counts: dict[str, int], seconds: float, extra: str) -> str:
    parts = []
    for key in SUMMARY_ORDER + tuple(sorted(set(counts) - set(SUMMARY_ORDER))):
        n = counts.get(key, 0)
        if n:
            name = key
            if key == "error" and n != 1:
                name = "errors"
            if key == "warnings" and n == 1:
                name = "warning"
            parts.append(f"{n} {name}")
    text = f" {', '.join(parts) or 'no tests ran'} in {seconds:.2f}s ({extra}) "
    width = shutil.get_terminal_size().columns
    pad = max(width - len(text), 4)
    return "=" * (pad // 2) + text + "=" * (pad - pad // 2)


SECTION = re.compile(r"^(={3,}|-{3,}|_{3,}) ")
FINAL = re.compile(r"^=+ .*\bin [0-9.]+s\b.* =+$")


def sections(stdout: str) -> str:
    """A shard's terminal output after its progress lines, without its final summary line."""
    lines = stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("collected ")), None)
    if start is None:
        return stdout
    first = next((i for i in range(start + 1, len(lines)) if SECTION.match(
        re.sub(r"\x1b\[[0-9;]*m", "", lines[i]))), None)
    if first is None:
        return ""
    body = lines[first:]
    if body and FINAL.match(re.sub(r"\x1b\[[0-9;]*m", "", body[-1])):
        body = body[:-1]
    return "\n".join(body) + ("\n" if body else "")


class Shard:
    def __init__(self, job: Job) -> None:
        self.job = job
        self.state = "starting"
        self.handle: Handle | None = None
        self.code: int | None = None
        self.infra: str | None = None
        self.tar: bytes | None = None
        self.stdout: list[str] = []
        self.err_buf = ""
        self.collected: dict[str, Any] | None = None
        self.counts: dict[str, int] = {}
        self.warnings = 0
        self.started = time.monotonic()
        self.seconds = 0.0

    @property
    def label(self) -> str:
        return f"{self.job.index}/{self.job.total}"


class CtrlC:
    """Ctrl-C while the shards run is noted by a SIGINT handler and acted on by the event loop.

    Before, a KeyboardInterrupt was raised wherever the main thread happened to be: inside the
    event queue's own locking (``with`` is not atomic against it, bpo-29988: a shard thread that
    then puts an event waits forever), or while the shard threads were still being started (the
    session then ended as "interrupted before anything ran remotely", leaving a sandbox that had
    just been created running); and a handler some earlier code left installed could swallow it.
    CI saw a Ctrl-C'd session not stop within 60 s, and one end with exit 8 (issue 14). This
    handler is installed before any shard starts and only sets a flag, so a Ctrl-C at any moment
    after that stops the session the same way; before it, ``main`` reports that nothing ran."""

    def __init__(self) -> None:
        self.pressed = False
        self.installed = False
        self.previous: Any = None

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is threading.main_thread():  # else none can arrive here
            self.previous = signal.signal(signal.SIGINT, self._note)
            self.installed = True
        return self

    def _note(self, signum: int, frame: Any) -> None:
        self.pressed = True  # only a flag: safe whatever the main thread was doing

    def stopping(self) -> None:
        """While the remote side is being stopped, a second Ctrl-C raises KeyboardInterrupt."""
        if self.installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc: object) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self.previous if self.previous is not None
                          else signal.default_int_handler)
            self.installed = False


class Session:
    def __init__(self, plan: Plan, o: Options, backend: Any, layout: Layout, stage_dir: Path,
                 console: Console) -> None:
        self.plan, self.o, self.backend, self.layout = plan, o, backend, layout
        self.stage_dir = stage_dir
        self.console = console
        self.events: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.config: pytest.Config | None = None  # the local session the reports replay into
        self.received: list[Received] = []
        self.homecoming: Homecoming | None = None
        self.stopping = threading.Event()
        self.header_done = False
        # Shards draw inputs from one seed (the user's, else one chosen here), so that a failure
        # reproduces with the --fib-seed its message prints, as in an unsharded session.
        given = any(a.name == "--fib-seed" for a in plan.args) or os.environ.get("FIB_SEED")
        self.seed = None if given else (last_seed(plan) or random.Random().randrange(2**31))

    def job(self, index: int, total: int) -> Job:
        root = self.backend.new_root(index)
        lay = self.layout
        shard = (index, total) if total > 1 else None
        dataset = lay.at(lay.dataset, root) if lay.dataset is not None else None
        args = remote_args(self.plan.args, project=self.plan.project,
                           remote_project=lay.at(lay.project, root), out=lay.at(lay.out, root),
                           dataset=dataset, artifacts=self.plan.artifacts,
                           color=self.plan.color, shard=shard)
        if shard is not None and self.seed is not None:
            args.append(f"--fib-seed={self.seed}")  # one seed for every shard, as unsharded
        columns = shutil.get_terminal_size().columns  # what a local pytest would use
        return Job(index, total, root, prep_command(lay, root),
                   [self.backend.python, "-m", "pytest", *args], fetch_command(lay, root),
                   remote_env(lay, dict(os.environ), columns=columns, root=root),
                   lay.at(lay.cwd, root))

    # each shard's thread: start, stream, wait, fetch, close
    def _run_shard(self, shard: Shard) -> None:
        k = shard.job.index
        try:
            handle = self.backend.start(shard.job)
            shard.handle = handle
            if self.stopping.is_set():
                handle.close()
                return
            self.events.put(("running", k, handle.ident))
            handle.stream(lambda stream, text: self.events.put(("out", k, stream, text)))
            code = handle.wait()
            if self.stopping.is_set():
                return
            self.events.put(("fetching", k, code))
            tar = handle.fetch()
            self.events.put(("done", k, code, tar))
        except InfraError as e:
            self.events.put(("infra", k, str(e)))
        except Exception as e:  # noqa: BLE001 - anything unexpected is the infrastructure's
            self.events.put(("infra", k, f"{type(e).__name__}: {e}"))
        finally:
            if shard.handle is not None:
                shard.handle.close()
            self.events.put(("closed", k))

    def run(self) -> int:
        total = 1 if self.plan.collect_only else self.o.shards
        if self.plan.collect_only and self.o.shards > 1:
            self.console.note("--collect-only: one container (--modal-shards ignored)")
        shards = {k: Shard(self.job(k, total)) for k in range(1, total + 1)}
        threads = [threading.Thread(target=self._run_shard, args=(s,), daemon=True,
                                    name=f"pytest-fib-modal-{s.label}") for s in shards.values()]
        t0 = time.monotonic()
        with CtrlC() as ctrl_c:
            if self._loop(shards, threads, total, ctrl_c):
                ctrl_c.stopping()
                return self._interrupt(shards, threads)
        return self._finish(shards, time.monotonic() - t0)

    def _loop(self, shards: dict[int, Shard], threads: list[threading.Thread], total: int,
              ctrl_c: CtrlC) -> bool:
        """Start the shards and handle their events until all closed; True on Ctrl-C."""
        for t in threads:
            t.start()
        closed = 0
        last_progress = 0.0
        try:
            while closed < len(shards):
                if ctrl_c.pressed:
                    return True
                try:
                    ev = self.events.get(timeout=0.25)
                except queue.Empty:
                    if total > 1 and time.monotonic() - last_progress > 15:
                        self._progress(shards)
                        last_progress = time.monotonic()
                    continue
                kind, k = ev[0], ev[1]
                s = shards[k]
                if kind == "closed":
                    closed += 1
                elif kind == "running":
                    s.state = "running"
                    where = f" ({ev[2]})" if ev[2] else ""
                    self.console.note(f"shard {s.label}: running{where}" if total > 1 else
                                      f"running{where}")
                elif kind == "out":
                    self._output(s, ev[2], ev[3], total)
                elif kind == "fetching":
                    s.code = ev[2]
                    s.state = "fetching"
                elif kind == "done":
                    s.code, s.tar, s.state = ev[2], ev[3], "done"
                    s.seconds = time.monotonic() - s.started
                    if total > 1:
                        self._flush_stderr(s, total)
                        self.console.note(f"shard {s.label}: done in {s.seconds:.0f}s "
                                          f"(exit {s.code}); {self._tally(shards)}")
                elif kind == "infra":
                    s.infra, s.state = ev[2], "failed"
                    self.console.note(f"shard {s.label}: infrastructure failure: {ev[2]}"
                                      if total > 1 else f"infrastructure failure: {ev[2]}")
        except KeyboardInterrupt:  # raised all the same: CtrlC could not install its handler
            return True
        return False

    def _interrupt(self, shards: dict[int, Shard], threads: list[threading.Thread]) -> int:
        self.stopping.set()
        self.console.note("interrupted: stopping the remote side ...")
        try:
            closers = [threading.Thread(target=s.handle.close, daemon=True)
                       for s in shards.values() if s.handle is not None]
            for t in closers:
                t.start()
            for t in closers:
                t.join(30)
            # containers still being scheduled are terminated as soon as they exist
            deadline = time.monotonic() + 180
            told = False
            for t in threads:
                while t.is_alive() and time.monotonic() < deadline:
                    t.join(1)
                    if t.is_alive() and not told:
                        told = True
                        self.console.note("waiting for containers still being scheduled, to "
                                          "terminate them (Ctrl-C again to leave them: they end "
                                          f"at --modal-timeout={self.o.timeout}s)")
        except KeyboardInterrupt:
            self.console.note("left containers still starting; they end at --modal-timeout")
            return INTERRUPTED
        ids = ", ".join(s.handle.ident for s in shards.values() if s.handle and s.handle.ident)
        self.console.note(f"interrupted: remote side terminated{' (' + ids + ')' if ids else ''}")
        return INTERRUPTED

    # output
    def _output(self, s: Shard, stream: str, text: str, total: int) -> None:
        if total == 1:
            (self.console.out if stream == "stdout" else self.console.err)(text)
            return
        if stream == "stdout":
            s.stdout.append(text)
            if s.job.index == 1 and not self.header_done:
                self._maybe_header(s)
            return
        s.err_buf += text
        *lines, s.err_buf = s.err_buf.split("\n")
        for line in lines:
            self._stderr_line(s, line, total)

    def _flush_stderr(self, s: Shard, total: int) -> None:
        if s.err_buf:
            self._stderr_line(s, s.err_buf, total)
            s.err_buf = ""

    def _stderr_line(self, s: Shard, line: str, total: int) -> None:
        if not line.startswith(EVENT):
            if line.strip():
                self.console.err(f"[{s.label}] {line}\n")
            return
        try:
            ev = json.loads(line[len(EVENT):])
        except ValueError:
            return
        if ev.get("event") == "collected":
            s.collected = ev
            groups = ev.get("groups", [])
            names = ", ".join(g.split("::")[-1] for g in groups[:6])
            more = f" +{len(groups) - 6}" if len(groups) > 6 else ""
            self.console.note(f"shard {s.label}: {ev['selected']} items ({names}{more})")
        elif ev.get("event") == "report":
            cat = ev.get("category", "")
            s.counts[cat] = s.counts.get(cat, 0) + 1
            if self.plan.verbose > 0 or cat in ("failed", "error"):
                self.console.note(f"shard {s.label}: {cat.upper()} {ev.get('nodeid', '')}")
        elif ev.get("event") == "finish":
            s.warnings = int(ev.get("warnings", 0))

    def _maybe_header(self, s: Shard) -> None:
        text = "".join(s.stdout)
        at = re.search(r"^collected .*$", text, re.M)
        if at is None:
            return
        self.console.out(text[:at.start()])
        self.header_done = True

    def _tally(self, shards: dict[int, Shard]) -> str:
        states: dict[str, int] = {}
        for s in shards.values():
            states[s.state] = states.get(s.state, 0) + 1
        done = sum(sum(v for c, v in s.counts.items() if c) for s in shards.values())
        selected = sum(s.collected["selected"] for s in shards.values() if s.collected)
        return ("shards: " + ", ".join(f"{n} {st}" for st, n in sorted(states.items())) +
                (f"; items {done}/{selected}" if selected else ""))

    def _progress(self, shards: dict[int, Shard]) -> None:
        counts: dict[str, int] = {}
        for s in shards.values():
            for c, n in s.counts.items():
                counts[c] = counts.get(c, 0) + n
        detail = ", ".join(f"{n} {c}" for c, n in sorted(counts.items()))
        self.console.note(self._tally(shards) + (f" ({detail})" if detail else ""))

    # the end
    def _finish(self, shards: dict[int, Shard], seconds: float) -> int:
        total = len(shards)
        outs: list[Path] = []
        with tempfile.TemporaryDirectory(prefix="pytest-fib-modal-out-") as tmp:
            for k, s in shards.items():
                if s.tar is None:
                    continue
                dest = Path(tmp) / f"shard-{k}"
                dest.mkdir()
                try:
                    with tarfile.open(fileobj=io.BytesIO(s.tar), mode="r:gz") as tar:
                        tar.extractall(dest, filter="data")
                except (tarfile.TarError, OSError) as e:
                    s.infra = f"the outputs could not be unpacked: {e}"
                    continue
                outs.append(dest)
            self.received = [read(Path(tmp) / f"shard-{k}" / REPORTS_KEY,
                                  s.label if total > 1 else "") for k, s in shards.items()]
            written: list[str] = []
            if outs:
                self.homecoming = Homecoming(self.plan.artifacts, self.plan.shipped,
                                             self.plan.start_cache,
                                             replayed=self.config is not None)
                written = self.homecoming.bring(outs)
        if total > 1:
            self._sharded_summary(shards, seconds)
        codes = []
        for s in shards.values():
            if s.infra is not None:
                codes.append(EXIT_INFRA)
            elif s.code is not None and s.code not in range(6):
                self.console.note(
                    f"{'shard ' + s.label + ': ' if total > 1 else ''}infrastructure failure: the "
                    f"remote pytest ended with status {s.code} (killed from outside: out of "
                    f"memory, or the --modal-timeout of {self.o.timeout}s was reached)")
                codes.append(EXIT_INFRA)
            else:
                codes.append(s.code if s.code is not None else EXIT_INFRA)
        for line in written:
            self.console.note(line)
        if self.config is not None:
            finished = {(s.label if total > 1 else ""): s.infra is None and s.code in range(6)
                        for s in shards.values()}
            for received in self.received:
                replay(self.config, received)
            problems = collection_problems(self.received, lambda label: finished[label],
                                           ran_tests=not self.plan.collect_only)
            for problem in problems:
                self.console.note(f"collection mismatch: {problem}")
            if problems:
                codes.append(int(pytest.ExitCode.TESTS_FAILED))
        code = combine_exit_codes(codes)
        if code == EXIT_INFRA:
            self.console.note(f"exit {EXIT_INFRA}: the infrastructure failed, not the tests "
                              "(see above); results of finished shards were brought home")
        return code

    def _sharded_summary(self, shards: dict[int, Shard], seconds: float) -> None:
        total = len(shards)
        first = next(iter(shards.values()))
        if not self.header_done:
            text = "".join(first.stdout)
            at = re.search(r"^collected .*$", text, re.M)
            self.console.out(text[:at.start()] if at else "")
        collected = [s.collected for s in shards.values() if s.collected]
        if collected:
            selected = sum(c["selected"] for c in collected)
            deselected = max(c["user_deselected"] for c in collected)
            items = max(c["total"] for c in collected)
            line = f"collected {items} items"
            if deselected:
                line += f" / {deselected} deselected / {selected} selected"
            self.console.out(line + f" (split over {total} shards)\n\n")
        for s in shards.values():
            body = sections("".join(s.stdout))
            state = f"exit {s.code}" if s.infra is None else "infrastructure failure"
            self.console.out(f"{'-' * 20} shard {s.label} ({state}, {s.seconds:.0f}s) "
                             f"{'-' * 20}\n{body}")
        counts: dict[str, int] = {}
        for s in shards.values():
            for c, n in s.counts.items():
                counts[c] = counts.get(c, 0) + n
        if collected:
            counts["deselected"] = max(c["user_deselected"] for c in collected)
        counts["warnings"] = sum(s.warnings for s in shards.values())
        self.console.out(summary_line(counts, seconds, f"{total} shards") + "\n")


# -- entry point ----------------------------------------------------------------------------------

def _backend(o: Options, plan_volume_dir: Path | None) -> Any:
    if o.backend == "local":
        from .backends import LocalBackend

        return LocalBackend(plan_volume_dir)
    from .modal_backend import ModalBackend

    return ModalBackend(gpu=o.gpu, timeout=o.timeout, volume_name=None)


def main(config: pytest.Config) -> int | None:
    """The exit code of the remote session (see docs/modal.md); None for --help/--version."""
    if config.getoption("help", False) or config.getoption("version", False):
        return None  # pytest --modal --help: local help
    try:
        return _main(config)
    except KeyboardInterrupt:  # before any container ran (a running session handles its own)
        sys.stderr.write(PREFIX + "interrupted before anything ran remotely\n")
        return INTERRUPTED


def _main(config: pytest.Config) -> int:
    if os.environ.get("PYTEST_FIB_REMOTE"):
        raise pytest.UsageError("pytest --modal inside a --modal session: is --modal in the ini "
                                "file's addopts? Pass it on the command line instead.")
    o = Options.from_config(config)
    console = Console()
    if o.backend == "modal":
        if modal_credentials() is None:
            path = os.environ.get("MODAL_CONFIG_PATH") or "~/.modal.toml"
            raise pytest.UsageError(NO_CREDENTIALS.format(path=path))
        try:
            import modal  # noqa: F401 - only to report a missing client as a usage error
        except ImportError:
            raise pytest.UsageError(NO_CLIENT) from None
    try:
        plan = make_plan(config, o)
    except PlanError as e:
        raise pytest.UsageError(f"pytest --modal: {e}") from None

    volume_dir = None
    if o.backend == "local" and plan.volume_name is not None:
        volume_dir = ((plan.invocation_dir / o.volume).resolve() if o.volume
                      else plan.dataset_local)
    backend = _backend(o, volume_dir)
    volume_sub: str | None = None
    if plan.volume_name is not None:
        if o.backend == "modal":
            backend.volume_name = plan.volume_name
        name = plan.volume_name if o.backend == "modal" else str(volume_dir)
        try:
            volume_sub = detect_root(backend.list_volume, plan.volume_sub)
        except VolumeProblem as e:
            raise pytest.UsageError(volume_fix(name, str(e), o.backend)) from None
        except InfraError as e:
            console.note(f"infrastructure failure: {e}")
            return EXIT_INFRA
        except Exception as e:  # noqa: BLE001 - modal.exception.AuthError and the like
            if type(e).__name__ == "AuthError":
                raise pytest.UsageError(f"pytest --modal: Modal rejected the credentials ({e}). "
                                        "Fix: `modal token new` (or `modal setup`).") from None
            console.note(f"infrastructure failure: {type(e).__name__}: {e}")
            return EXIT_INFRA
    layout = make_layout(plan.project, plan.invocation_dir, plan.dataset_local, volume_sub)

    where = backend.describe(o.gpu)
    ds = "embedded default dataset"
    if volume_sub is not None:
        ref = backend.volume_ref(plan.volume_name or "")
        ds = f"dataset: {ref}, root /{volume_sub} -> {layout.dataset}"
        if not layout.mirrored and plan.dataset_local is not None:
            ds += " (not where it is locally: items of the dataset's own solutions get other ids)"
    console.note(f"{where}; {o.shards} container{'s' if o.shards > 1 else ''}; shipping "
                 f"{len(plan.files.files)} project files + pytest-fib "
                 f"({(plan.files.total_bytes + plan.package.total_bytes) / 2**20:.1f} MB); {ds}")
    if plan.files.secrets:
        console.note("not shipped (they look like credentials): " +
                     ", ".join(plan.files.secrets[:10]) +
                     (" ..." if len(plan.files.secrets) > 10 else ""))
    import pytest_fib

    with tempfile.TemporaryDirectory(prefix="pytest-fib-modal-stage-") as tmp:
        stage_dir = Path(tmp)
        stage(stage_dir, plan.files, plan.package, pytest_fib.__version__, plan.inputs)
        try:
            backend.prepare(stage_dir, layout, console.note)
        except InfraError as e:
            console.note(f"infrastructure failure: {e}")
            return EXIT_INFRA
        except Exception as e:  # noqa: BLE001
            if type(e).__name__ == "AuthError":
                raise pytest.UsageError(f"pytest --modal: Modal rejected the credentials ({e}). "
                                        "Fix: `modal token new` (or `modal setup`).") from None
            console.note(f"infrastructure failure: {type(e).__name__}: {e}")
            return EXIT_INFRA
        session = Session(plan, o, backend, layout, stage_dir, console)
        return run_replayed(config, session)


def _local_only(config: pytest.Config) -> None:
    """Options that travel to the remote side and must not act here as well: ``-n`` (no local
    workers), pytest-benchmark's saving (its JSON and runs come home from the remote side; this
    side ran no benchmark and would warn that it has nothing to save)."""
    for name, off in (("benchmark_json", None), ("benchmark_save", None),
                      ("benchmark_autosave", False)):
        if getattr(config.option, name, None):
            setattr(config.option, name, off)
    if hasattr(config.option, "dist"):
        config.option.dist = "no"
    if hasattr(config.option, "numprocesses"):
        config.option.numprocesses = None
    if hasattr(config.option, "tx"):
        config.option.tx = []


def run_replayed(config: pytest.Config, session: Session) -> int:
    """A local pytest session around the remote one (pytest-xdist's controller model): it
    collects nothing, runs ``session`` in its test loop and replays the remote reports there, so
    this side's plugins (junit, cache, ...) see the remote items; see remote/replay.py."""
    from _pytest.main import wrap_session

    def after() -> None:
        if session.homecoming is not None:
            session.homecoming.restore_cache()  # over what this side's cache plugins wrote
        junit = session.plan.artifacts.paths.get("junit.xml")
        if junit is not None and junit.is_file():
            session.console.note(f"--junitxml: {junit}")

    def run(plugin: ReplayPlugin) -> int:
        session.config = config
        code = session.run()
        plugin.received = session.received
        return code

    plugin = ReplayPlugin(run, after)
    _local_only(config)
    config.pluginmanager.register(plugin, "fib-modal-replay")

    def doit(config: pytest.Config, s: pytest.Session) -> int:
        config.hook.pytest_collection(session=s)
        config.hook.pytest_runtestloop(session=s)
        return plugin.exitstatus

    return int(wrap_session(config, doit))


__all__ = ["Options", "Session", "main", "make_plan", "modal_credentials"]
