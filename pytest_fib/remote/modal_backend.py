"""The Modal backend: one Sandbox per shard. Imported only with ``--modal`` (it imports modal).

Why Sandboxes and not Functions:

* a Sandbox runs an arbitrary command line (``python -m pytest <the user's args>``) in a container
  of our image. A Function would need this module importable (or cloudpickled) remotely, with the
  local and remote Python versions matching for pickling, and a wrapper that re-spawns pytest;
* ``Sandbox.exec`` gives that process's own stdout and stderr as live streams, without Modal's
  app logs mixed in: the user sees exactly what a local pytest prints, as it prints it;
* after the tests, the same container is still there to ``exec`` a ``tar`` of the output folder:
  artifacts come back directly, with no Volume writes, commits or name clashes between runs;
* the lifecycle is explicit: ``terminate()`` on Ctrl-C, on an error and after every run, and a
  hard ``timeout`` (``--modal-timeout``) as the backstop if this process dies;
* N shards are N independent sandboxes created from N threads, each with its own streams.

The image is pinned and holds no project code: the staged files are added with
``add_local_dir(..., copy=False)``, i.e. attached when a container starts, so editing a kernel or
pytest-fib does not rebuild the image (only a change of ``image.lock.toml`` does).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import modal
import modal.exception

from . import image
from .backends import Handle, InfraError, Job, Sink, pump
from .plan import Layout, VolumeProblem

APP_NAME = "pytest-fib"

# The image: every pin lives in image.lock.toml (one file, checked by CI: issue 16).
LOCK = image.load()
CUDA_IMAGE = LOCK.cuda_image
PYTHON_VERSION = LOCK.python
TORCH_INDEX = LOCK.torch_index
TORCH = LOCK.torch
PACKAGES = LOCK.packages
NO_DEPS = LOCK.no_deps
IMAGE_ENV = {"CUDA_HOME": "/usr/local/cuda"}


def base_image() -> modal.Image:
    """The pinned part: built once per pin set, then cached by Modal."""
    return (
        modal.Image.from_registry(CUDA_IMAGE, add_python=PYTHON_VERSION)
        .entrypoint([])
        .pip_install(*TORCH, index_url=TORCH_INDEX)
        .pip_install(*PACKAGES)
        .pip_install(*NO_DEPS, extra_options="--no-deps")
        .env(IMAGE_ENV)
    )


def session_image(stage: Path, layout: Layout) -> modal.Image:
    """The base image plus the staged files, attached at container start (copy=False)."""
    return (
        base_image()
        .add_local_dir(stage / "project", str(layout.project), copy=False)
        .add_local_dir(stage / "site", str(layout.site), copy=False)
        .add_local_dir(stage / "input", str(layout.input), copy=False)
    )


def _describe(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


class ModalHandle(Handle):
    def __init__(self, backend: ModalBackend, job: Job) -> None:
        self.backend = backend
        self.job = job
        self.lock = threading.Lock()
        self.closed = False
        self.sb: Any = None
        self.proc: Any = None
        # modal's stubs want these exact (invariant) dict types
        volumes: dict[str | os.PathLike[Any], Any] = {k: v for k, v in backend.volumes.items()}
        env: dict[str, str | None] = dict(job.env)
        try:
            sb = modal.Sandbox.create(
                app=backend.app, image=backend.image, gpu=backend.gpu, timeout=backend.timeout,
                volumes=volumes, env=env, workdir=job.cwd,
                tags={"pytest-fib": "1", "shard": f"{job.index}/{job.total}"})
        except modal.exception.Error as e:
            raise InfraError(f"could not start a {backend.gpu} sandbox: {_describe(e)}") from e
        with self.lock:
            self.sb = sb
            if self.closed:  # Ctrl-C while it was being scheduled
                self._terminate()
                raise InfraError("interrupted while starting")
        try:
            prep = sb.exec(*job.prep, env=env)
            prep.wait()
            if prep.returncode:
                raise InfraError(f"preparing the output folder failed: {prep.stderr.read()[-500:]}")
            self.proc = sb.exec(*job.argv, workdir=job.cwd, env=env)
        except modal.exception.Error as e:
            self.close()
            raise InfraError(f"lost the sandbox while starting pytest: {_describe(e)}") from e

    @property
    def ident(self) -> str:
        return getattr(self.sb, "object_id", "") or ""

    def stream(self, sink: Sink) -> None:
        try:
            pump({"stdout": lambda: self.proc.stdout, "stderr": lambda: self.proc.stderr}, sink)
        except modal.exception.Error as e:
            raise InfraError(f"lost the output stream: {_describe(e)}") from e

    def wait(self) -> int:
        try:
            return int(self.proc.wait())
        except modal.exception.TimeoutError as e:
            raise InfraError(f"the sandbox reached --modal-timeout={self.backend.timeout}s and "
                             "was terminated") from e
        except modal.exception.Error as e:
            raise InfraError(f"lost the sandbox: {_describe(e)}") from e

    def fetch(self) -> bytes:
        try:
            p = self.sb.exec(*self.job.fetch, text=False)
            data = p.stdout.read()
            p.wait()
        except modal.exception.Error as e:
            raise InfraError(f"could not fetch the outputs: {_describe(e)}") from e
        if p.returncode:
            raise InfraError(f"fetching the outputs failed (tar exited {p.returncode})")
        return bytes(data)

    def _terminate(self) -> None:
        try:
            self.sb.terminate()
        finally:
            try:
                self.sb.detach()
            except Exception:  # noqa: BLE001 - detaching is a local courtesy
                pass

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            if self.sb is None:
                return
        try:
            self._terminate()
        except Exception:  # noqa: BLE001 - best effort; the timeout ends it anyway
            pass


class ModalBackend:
    name = "modal"
    python = "python"

    def __init__(self, *, gpu: str, timeout: int, volume_name: str | None) -> None:
        self.gpu = gpu
        self.timeout = timeout
        self.volume_name = volume_name
        self.volume: Any = None
        self.volumes: dict[str, Any] = {}
        self.app: Any = None
        self.image: Any = None

    def describe(self, gpu: str) -> str:
        return f"Modal, {gpu}"

    def new_root(self, index: int) -> str:
        return "/"

    def volume_ref(self, name: str) -> str:
        return f"Modal Volume {name}"

    def list_volume(self, path: str) -> list[tuple[str, bool]]:
        if self.volume is None:
            assert self.volume_name is not None  # a listing is asked for only with a volume
            self.volume = modal.Volume.from_name(self.volume_name)
        try:
            entries = self.volume.listdir("/" + path if path else "/")
        except modal.exception.NotFoundError as e:
            if path:
                return []
            raise VolumeProblem("it does not exist") from e
        except FileNotFoundError:
            return []
        except modal.exception.AuthError:
            raise
        except modal.exception.Error as e:
            raise InfraError(f"could not list the volume: {_describe(e)}") from e
        out = []
        for entry in entries:
            is_dir = getattr(entry.type, "name", str(entry.type)).upper().endswith("DIRECTORY")
            out.append((PurePosixPath(entry.path).name, is_dir))
        return out

    def prepare(self, stage: Path, layout: Layout, out: Callable[[str], None]) -> None:
        """Look up the app, mount the volume read-only, build (or reuse) the image."""
        try:
            self.app = modal.App.lookup(APP_NAME, create_if_missing=True)
        except modal.exception.AuthError:
            raise  # a usage error: the token is wrong, the fix is `modal token new`
        except modal.exception.Error as e:
            raise InfraError(f"could not reach Modal: {_describe(e)}") from e
        if layout.mount is not None:
            assert self.volume_name is not None  # a mount is planned only with a volume
            vol = self.volume or modal.Volume.from_name(self.volume_name)
            if not hasattr(vol, "with_mount_options"):
                raise InfraError("this Modal client cannot mount a volume's sub-folder "
                                 "(Volume.with_mount_options); upgrade it: pip install -U modal")
            # read-only: a session cannot damage the dataset; sub_path: the detected root
            self.volumes = {str(layout.mount): vol.with_mount_options(
                read_only=True, sub_path=layout.mount_sub or None)}
        self.image = session_image(stage, layout)
        out("image: building or reusing the pinned image (the first build takes ~10 min; "
            "code changes never rebuild it)")
        try:
            # Modal's build log goes to stderr: stdout carries the remote pytest's output only
            with contextlib.redirect_stdout(sys.stderr), modal.enable_output():
                base_image().build(self.app)
        except modal.exception.Error as e:
            raise InfraError(f"the image build failed: {_describe(e)}") from e

    def start(self, job: Job) -> Handle:
        return ModalHandle(self, job)
