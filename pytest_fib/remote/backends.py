"""Where a ``--modal`` job runs. The controller drives every backend through the same calls:

``start(job)`` -> a :class:`Handle`; ``handle.stream(sink)`` (live stdout/stderr, blocks until
both end); ``handle.wait()`` (the remote pytest's exit status); ``handle.fetch()`` (the output
folder as a tar.gz); ``handle.close()`` (terminate and clean up; idempotent, callable from another
thread, always called).

:class:`LocalBackend` is the stand-in for Modal used by the tests: each shard gets a temporary
root folder holding exactly the staged (shipped) files at the container's paths, the volume
stand-in linked at its mount point, and runs the same prep/pytest/fetch command lines as Modal,
with the same environment (plus the machine's PATH/HOME: what the image provides remotely).
This module imports no modal; ``modal_backend`` does.
"""

from __future__ import annotations

import codecs
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from .plan import Layout, VolumeProblem

Sink = Callable[[str, str], None]  # (stream name "stdout"/"stderr", text)


class InfraError(Exception):
    """The infrastructure failed (not the tests): image build, scheduling, lost connection."""


@dataclasses.dataclass
class Job:
    """One container's work: shard ``index`` of ``total``."""

    index: int
    total: int
    root: str  # where the container's "/" is ("/" on Modal)
    prep: list[str]
    argv: list[str]
    fetch: list[str]
    env: dict[str, str]
    cwd: str


class Handle:
    def stream(self, sink: Sink) -> None:
        raise NotImplementedError

    def wait(self) -> int:
        raise NotImplementedError

    def fetch(self) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @property
    def ident(self) -> str:
        return ""


def pump(readers: dict[str, Callable[[], object]], sink: Sink) -> None:
    """Read each stream in its own thread (stdout and stderr must drain concurrently), pass every
    chunk to ``sink``; return when all ended. Re-raises the first reader error."""
    errors: list[BaseException] = []

    def run(name: str, it: Callable[[], object]) -> None:
        try:
            for chunk in it():  # type: ignore[attr-defined]
                if chunk:
                    sink(name, chunk)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            errors.append(e)

    threads = [threading.Thread(target=run, args=(n, it), daemon=True)
               for n, it in readers.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


# -- local ------------------------------------------------------------------------------------

# What the machine (the image, remotely) provides; everything else comes from plan.remote_env.
MACHINE_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "CUDA_HOME", "CUDA_VISIBLE_DEVICES",
               "LD_LIBRARY_PATH")


def link_tree(src: Path, dst: Path) -> bool:
    """Mirror ``src`` at ``dst`` with hard links (a real folder, as a volume mount is); falls
    back to a symbolic link across file systems. Returns True for a real folder."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(src, dst, copy_function=os.link, symlinks=True)
        return True
    except (OSError, shutil.Error):
        shutil.rmtree(dst, ignore_errors=True)
        os.symlink(src, dst, target_is_directory=True)
        return False


def _chunks(stream: object) -> Callable[[], object]:
    def gen() -> object:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        fd = stream.fileno()  # type: ignore[attr-defined]
        while True:
            data = os.read(fd, 65536)
            if not data:
                tail = decoder.decode(b"", final=True)
                if tail:
                    yield tail
                return
            yield decoder.decode(data)
    return gen


class LocalHandle(Handle):
    def __init__(self, job: Job, stage: Path, layout: Layout, volume: Path | None) -> None:
        self.job = job
        self.root = Path(job.root)
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()
        self.closed = False
        # "the image": the staged files at their container paths, the volume at its mount point
        shutil.copytree(stage / "project", layout.at(layout.project, job.root))
        shutil.copytree(stage / "site", layout.at(layout.site, job.root))
        shutil.copytree(stage / "input", layout.at(layout.input, job.root))
        if volume is not None and layout.mount is not None:
            src = volume / layout.mount_sub if layout.mount_sub else volume
            link_tree(src, Path(layout.at(layout.mount, job.root)))
        (self.root / "home").mkdir(parents=True, exist_ok=True)
        self.env = {k: os.environ[k] for k in MACHINE_ENV if k in os.environ}
        self.env["HOME"] = str(self.root / "home")
        self.env.update(job.env)
        done = subprocess.run(job.prep, cwd=self.root, env=self.env, capture_output=True,
                              check=False)
        if done.returncode:
            raise InfraError(f"preparing the output folder failed: {done.stderr.decode()[-500:]}")
        with self.lock:
            if self.closed:
                raise InfraError("closed before it started")
            self.proc = subprocess.Popen(job.argv, cwd=job.cwd, env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, start_new_session=True)

    @property
    def ident(self) -> str:
        return f"pid {self.proc.pid}" if self.proc else ""

    def stream(self, sink: Sink) -> None:
        assert self.proc is not None
        pump({"stdout": _chunks(self.proc.stdout), "stderr": _chunks(self.proc.stderr)}, sink)

    def wait(self) -> int:
        assert self.proc is not None
        code = self.proc.wait()
        return code if code >= 0 else 128 - code  # killed by a signal: as a shell reports it

    def fetch(self) -> bytes:
        done = subprocess.run(self.job.fetch, cwd=self.root, env=self.env, capture_output=True,
                              check=False)
        if done.returncode:
            raise InfraError(f"fetching the outputs failed: {done.stderr.decode()[-500:]}")
        return done.stdout

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            proc = self.proc
        if proc is not None and proc.poll() is None:
            for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # the process group may have left children (the pytest-fib worker): end them too
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        shutil.rmtree(self.root, ignore_errors=True)


class LocalBackend:
    """Runs each job on this machine in a temporary root; the volume is a local folder."""

    name = "local"
    python = sys.executable

    def __init__(self, volume_dir: Path | None) -> None:
        self.volume_dir = volume_dir
        self.stage: Path | None = None
        self.layout: Layout | None = None

    def describe(self, gpu: str) -> str:
        return "local backend (this machine, standing in for Modal)"

    def list_volume(self, path: str) -> list[tuple[str, bool]]:
        if self.volume_dir is None:
            raise VolumeProblem("no folder stands in for it")
        folder = self.volume_dir / path if path else self.volume_dir
        if not folder.is_dir():
            if not path:
                raise VolumeProblem("it does not exist")
            return []
        return [(e.name, e.is_dir()) for e in os.scandir(folder)]

    def volume_ref(self, name: str) -> str:
        return f"local folder {self.volume_dir}"

    def new_root(self, index: int) -> str:
        return tempfile.mkdtemp(prefix=f"pytest-fib-modal-{index}-")

    def prepare(self, stage: Path, layout: Layout, out: Callable[[str], None]) -> None:
        self.stage, self.layout = stage, layout

    def start(self, job: Job) -> Handle:
        assert self.stage is not None and self.layout is not None
        try:
            return LocalHandle(job, self.stage, self.layout, self.volume_dir)
        except BaseException:
            shutil.rmtree(job.root, ignore_errors=True)
            raise
