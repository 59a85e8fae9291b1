"""Contract tests of the Modal backend, offline.

The real ``modal`` client builds the real objects (Image with its layers and mounts, Volume with
its mount options); the calls that would reach Modal's servers (``App.lookup``, ``Image.build``,
``Volume.listdir``, ``Sandbox.create`` and everything on a sandbox) are replaced by a recorder
that plays scripted remote behaviour. The tests check what is created, what is executed, what the
remote side receives (files, environment), and that the sandbox is always terminated: on
success, on test failures, on infrastructure failures and on Ctrl-C.
"""

from __future__ import annotations

import _thread
import io
import json
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest

modal = pytest.importorskip("modal")
import modal.exception  # noqa: E402

from modal.volume import FileEntry, FileEntryType  # noqa: E402

from pytest_fib.remote import controller, modal_backend, plan  # noqa: E402

pytest_plugins = ["pytester"]

JUNIT = ('<?xml version="1.0"?><testsuites><testsuite name="pytest" errors="0" failures="0" '
         'skipped="0" tests="1" time="1.0" timestamp="t" hostname="modal"><testcase '
         'classname="kernels.scale2.ok" name="correctness[n=1]"/></testsuite></testsuites>')
NODEID = "kernels::scale2::ok::correctness[n=1]"


def report(when: str) -> str:
    """A line of the reports file the remote side writes (remote/sender.py)."""
    data = {"$report_type": "TestReport", "nodeid": NODEID, "location": ["kernels", None, NODEID],
            "keywords": {}, "outcome": "passed", "longrepr": None, "when": when,
            "user_properties": [], "sections": [], "duration": 0.5, "start": 0.0, "stop": 0.5}
    return json.dumps({"kind": "test", "report": data}) + "\n"


# one item passed: what the replayed session sees (junit is written locally from it)
REPORTS = (json.dumps({"kind": "collected", "selected": [NODEID], "ran": [NODEID]}) + "\n"
           + "".join(report(w) for w in ("setup", "call", "teardown")))
SECRET_ENV = {"MODAL_TOKEN_ID": "ak-s3cr3t", "MODAL_TOKEN_SECRET": "as-s3cr3t",
              "AWS_SECRET_ACCESS_KEY": "s3cr3t-aws", "FIB_SEED": "11"}


def tarball(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Stream:
    def __init__(self, chunks: list[Any], gate: threading.Event | None = None,
                 error: BaseException | None = None, on_start: Any = None) -> None:
        self.chunks, self.gate, self.error, self.on_start = chunks, gate, error, on_start

    def __iter__(self):
        if self.on_start:
            self.on_start()
        yield from self.chunks
        if self.error is not None:
            raise self.error
        if self.gate is not None and not self.gate.wait(30):
            raise AssertionError("the stream waited 30 s: the sandbox was never terminated")

    def read(self):
        return b"".join(self.chunks) if self.chunks and isinstance(self.chunks[0], bytes) \
            else "".join(self.chunks)


class Proc:
    def __init__(self, stdout: Stream, stderr: Stream | None = None, code: int = 0,
                 gate: threading.Event | None = None) -> None:
        self.stdout, self.stderr = stdout, stderr or Stream([])
        self.returncode = code
        self.gate = gate

    def wait(self) -> int:
        if self.gate is not None and not self.gate.wait(30):
            raise AssertionError("wait() waited 30 s: the sandbox was never terminated")
        return self.returncode


class Remote:
    """The recorder: every call that would reach Modal, and the scripted answers."""

    def __init__(self, script: str = "ok", volume: dict | None = None) -> None:
        self.script = script
        self.volume = volume if volume is not None else {}
        self.calls: list[tuple] = []
        self.sandboxes: list[Sandbox] = []
        self.lock = threading.Lock()
        self.shipped: list[str] = []
        self.mounts: list[tuple[str, str, str]] = []
        self.shipped_bytes = b""

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


class Sandbox:
    def __init__(self, remote: Remote, kw: dict) -> None:
        self.remote, self.kw = remote, kw
        self.object_id = f"sb-fake{len(remote.sandboxes) + 1}"
        self.terminated = threading.Event()

    def record(self, *call: Any) -> None:
        with self.remote.lock:
            self.remote.calls.append(call)

    def exec(self, *argv: str, **kw: Any) -> Proc:
        self.record("exec", self.object_id, argv, kw)
        script = self.remote.script
        if argv[0] == "sh":
            return Proc(Stream([]))
        if argv[0] == "tar":
            assert kw.get("text") is False
            return Proc(Stream([tarball({"junit.xml": JUNIT, "reports.jsonl": REPORTS})]))
        assert argv[:3] == ("python", "-m", "pytest"), argv
        if script == "ok":
            return Proc(Stream(["==== test session starts ====\n", "remote output ",
                                "streamed\n", "==== 1 passed in 1.00s ====\n"]),
                        Stream(["a warning on stderr\n"]), 0)
        if script == "fail":
            return Proc(Stream(["F\n==== 1 failed in 1.00s ====\n"]), code=1)
        if script == "lost":
            return Proc(Stream(["partial output\n"],
                               error=modal.exception.ConnectionError("stream reset")), code=0)
        if script == "killed":
            return Proc(Stream(["...\n"]), code=137)
        if script.startswith("hang"):  # runs until terminated
            # "hang": Ctrl-C as soon as the remote pytest streams (an event, not a delay)
            ctrl_c = _thread.interrupt_main if script == "hang" else None
            return Proc(Stream(["running...\n"], gate=self.terminated, on_start=ctrl_c),
                        gate=self.terminated, code=-1)
        raise AssertionError(script)

    def terminate(self) -> None:
        self.record("terminate", self.object_id)
        self.terminated.set()

    def detach(self) -> None:
        self.record("detach", self.object_id)


@pytest.fixture
def remote(monkeypatch: pytest.MonkeyPatch) -> Remote:
    r = Remote()
    for k, v in SECRET_ENV.items():
        monkeypatch.setenv(k, v)

    def lookup(name: str, **kw: Any) -> str:
        r.calls.append(("App.lookup", name, kw))
        if r.script == "auth":
            raise modal.exception.AuthError("token rejected")
        return "app-object"

    def build(self: Any, app: Any = None) -> Any:
        r.calls.append(("Image.build", repr(self), app))
        if r.script == "build-fails":
            raise modal.exception.RemoteError("Image build for im-123 failed")
        return self

    def create(*args: Any, **kw: Any) -> Sandbox:
        r.calls.append(("Sandbox.create", args, kw))
        if r.script == "hang-ctrl-c-at-create":  # the earliest a container can exist
            _thread.interrupt_main()
        if r.script == "no-gpu":
            raise modal.exception.ResourceExhaustedError("no B200 available")
        r.mounts = mounts_of(kw["image"])
        files = [(p, local) for local, _, _ in r.mounts for p in Path(local).rglob("*")
                 if p.is_file()]
        r.shipped = sorted(str(p.relative_to(local)) for p, local in files)
        r.shipped_bytes = b"".join(p.read_bytes() for p, _ in files)
        sb = Sandbox(r, kw)
        r.sandboxes.append(sb)
        return sb

    def listdir(self: Any, path: str, recursive: bool = False) -> list[FileEntry]:
        r.calls.append(("Volume.listdir", path))
        if r.volume is None:
            raise modal.exception.NotFoundError("Volume 'flashinfer-trace' not found")
        node: Any = r.volume
        for part in [p for p in path.split("/") if p]:
            node = node[part]
        return [FileEntry(path=f"{path.strip('/')}/{k}".lstrip("/"), mtime=0, size=0,
                          type=FileEntryType.DIRECTORY if isinstance(v, dict) else
                          FileEntryType.FILE) for k, v in node.items()]

    monkeypatch.setattr(modal.App, "lookup", staticmethod(lookup))
    monkeypatch.setattr(modal.Image, "build", build)
    monkeypatch.setattr(modal.Sandbox, "create", staticmethod(create))
    monkeypatch.setattr(modal.Volume, "listdir", listdir)
    return r


def mounts_of(image: Any) -> list[tuple[str, str, str]]:
    """(local dir, remote path, layer kind) of every local-files mount of a real modal.Image."""
    out = []

    def walk(obj: Any, parent: str) -> None:
        for dep in obj._deps_() if callable(getattr(obj, "_deps_", None)) else []:
            if type(dep).__name__ == "Mount":
                out.extend((str(e.local_dir), str(e.remote_path), parent) for e in dep.entries)
            else:
                walk(dep, repr(dep))
    walk(image, repr(image))
    return out


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    root = pytester.path
    (root / "kernels" / "ok").mkdir(parents=True)
    (root / "kernels" / "ok" / "config.toml").write_text("[solution]\n")
    (root / ".env").write_text("TOKEN=s3cr3t\n")
    (root / "id_ed25519").write_text("s3cr3t key\n")
    (root / ".modal.toml").write_text('[p]\ntoken_id = "ak-s3cr3t"\n')
    return root


DATASET = {"flashinfer-trace": {"definitions": {}, "workloads": {}}}


def run(pytester: pytest.Pytester, *args: str) -> int:
    config = pytester.parseconfig("--modal", *args)
    return controller.main(config)


def exec_argvs(remote: Remote) -> list[tuple[str, ...]]:
    return [c[2] for c in remote.calls if c[0] == "exec"]


def test_success_creates_runs_fetches_and_terminates(pytester, project, remote, capsys):
    remote.volume = DATASET
    code = run(pytester, "--fib-dataset=../ds", "-k", "scale2", "--junitxml=out/j.xml", "-q")
    out, err = capsys.readouterr()
    assert code == 0, err
    assert remote.names() == [
        "Volume.listdir", "Volume.listdir", "App.lookup", "Image.build", "Sandbox.create",
        "exec", "exec", "exec", "terminate", "detach"]
    assert remote.calls[2] == ("App.lookup", "pytest-fib", {"create_if_missing": True})
    (_, args, kw), = [c for c in remote.calls if c[0] == "Sandbox.create"]
    assert args == () and kw["gpu"] == "B200" and kw["timeout"] == 3600
    assert isinstance(kw["image"], modal.Image) and kw["app"] == "app-object"
    assert kw["workdir"] == f"/fib/ws/{project.name}"
    (mount, vol), = kw["volumes"].items()
    assert mount == "/fib/ws/ds" and isinstance(vol, modal.Volume)
    from modal._utils.async_utils import synchronizer
    options = synchronizer._translate_in(vol)._mount_options
    assert (options.read_only, options.sub_path) == (True, "flashinfer-trace")
    prep, pytest_argv, fetch = exec_argvs(remote)
    assert prep[:2] == ("sh", "-c") and "/fib/out" in prep[2]
    pytest_argv = tuple(a for a in pytest_argv if not a.startswith("--basetemp"))  # pytester's
    assert pytest_argv == ("python", "-m", "pytest", "-p", "pytest_fib.remote.sender",
                           "--fib-remote-reports=/fib/out/reports.jsonl",
                           "--fib-dataset=/fib/ws/ds", "-kscale2",
                           "--junitxml=/fib/out/junit.xml", "-q", "-o", "cache_dir=/fib/out/cache")
    assert fetch == ("tar", "-C", "/fib/out", "-czf", "-", ".")
    assert "remote output streamed\n" in out and "a warning on stderr" in err
    junit = (project / "out" / "j.xml").read_text()
    assert junit.count("<testcase") == 1 and 'name="correctness[n=1]"' in junit


def test_image_is_pinned_and_code_is_attached_not_baked(pytester, project, remote):
    assert run(pytester) == 0
    (_, _, kw), = [c for c in remote.calls if c[0] == "Sandbox.create"]
    remotes = {r: kind for _, r, kind in remote.mounts}
    assert set(remotes) == {f"/fib/ws/{project.name}", "/fib/site", "/fib/input"}
    assert all(kind == "Image(local files)" for kind in remotes.values())  # copy=False layers
    assert "Image.from_registry('nvidia/cuda:12.8.1-devel-ubuntu24.04')" in _chain(kw["image"])
    pins = modal_backend.TORCH + modal_backend.PACKAGES + modal_backend.NO_DEPS
    assert all("==" in p for p in pins)
    assert {p.split("==")[0] for p in pins} >= {"torch", "triton", "flashinfer-bench",
                                                 "apache-tvm-ffi", "pytest", "pytest-benchmark",
                                                 "hypothesis", "safetensors", "pydantic"}


def _chain(image: Any) -> str:
    seen = []

    def walk(obj: Any) -> None:
        seen.append(repr(obj))
        for dep in obj._deps_() if callable(getattr(obj, "_deps_", None)) else []:
            walk(dep)
    walk(image)
    return "\n".join(seen)


def test_credentials_stay_home(pytester, project, remote, capsys):
    assert run(pytester) == 0
    out, err = capsys.readouterr()
    (_, _, kw), = [c for c in remote.calls if c[0] == "Sandbox.create"]
    allowed = {"PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTEST_FIB_REMOTE",
               "COLUMNS", *plan.FORWARDED_ENV}
    envs = [kw["env"]] + [c[3]["env"] for c in remote.calls if c[0] == "exec" and "env" in c[3]]
    for env in envs:
        assert set(env) <= allowed and "s3cr3t" not in repr(env)
    assert kw["env"]["FIB_SEED"] == "11"
    assert "kernels/ok/config.toml" in remote.shipped
    for name in (".env", "id_ed25519", ".modal.toml"):
        assert name not in remote.shipped
    assert b"s3cr3t" not in remote.shipped_bytes and len(remote.shipped_bytes) > 1000
    argv = " ".join(" ".join(a) for a in exec_argvs(remote))
    assert "s3cr3t" not in argv + out


def test_test_failures_pass_the_exit_code_through(pytester, project, remote):
    remote.script = "fail"
    assert run(pytester) == 1
    assert remote.names().count("terminate") == 1


@pytest.mark.parametrize("script, where", [
    ("lost", "lost the output stream"), ("no-gpu", "could not start a B200 sandbox"),
    ("killed", "status 137"), ("build-fails", "image build failed")])
def test_infrastructure_failures_are_exit_8_and_clean_up(pytester, project, remote, capsys,
                                                         script, where):
    remote.script = script
    assert run(pytester) == plan.EXIT_INFRA
    err = capsys.readouterr().err
    assert "infrastructure failure" in err and where in err
    created = remote.names().count("Sandbox.create")
    if script == "build-fails":
        assert created == 0
    elif script != "no-gpu":
        assert remote.names().count("terminate") == created == 1


@pytest.mark.parametrize("script", ["hang", "hang-ctrl-c-at-create"])
def test_ctrl_c_terminates_the_sandbox(pytester, project, remote, capsys, script):
    """The remote side hangs until terminated (a stream that waited 30 s for it would fail the
    shard, exit 8): Ctrl-C must terminate it, whenever it comes once a sandbox may exist."""
    remote.script = script
    assert run(pytester) == int(pytest.ExitCode.INTERRUPTED)
    assert remote.names().count("terminate") == 1
    assert "interrupted: remote side terminated (sb-fake1)" in capsys.readouterr().err


def test_missing_or_empty_volume_names_the_commands(pytester, project, remote):
    remote.volume = None
    with pytest.raises(pytest.UsageError) as e:
        run(pytester, "--fib-dataset=../ds")
    assert "modal volume create flashinfer-trace" in str(e.value)
    assert "modal volume put flashinfer-trace ./flashinfer-trace/ /" in str(e.value)
    remote.volume = {}
    with pytest.raises(pytest.UsageError, match="it is empty"):
        run(pytester, "--modal-volume=myvol")
    assert "Sandbox.create" not in remote.names()


def test_rejected_token_is_a_usage_error(pytester, project, remote):
    remote.script = "auth"
    with pytest.raises(pytest.UsageError, match="modal token new"):
        run(pytester)


def test_shards_run_in_parallel_sandboxes(pytester, project, remote, capsys):
    assert run(pytester, "--modal-shards=3", "--modal-gpu=H100", "-k", "x") == 0
    creates = [c[2] for c in remote.calls if c[0] == "Sandbox.create"]
    assert len(creates) == 3 and {c["gpu"] for c in creates} == {"H100"}
    assert sorted(c["tags"]["shard"] for c in creates) == ["1/3", "2/3", "3/3"]
    shards = sorted(a[8] for a in exec_argvs(remote) if a[:3] == ("python", "-m", "pytest"))
    assert shards == ["--fib-shard=1/3", "--fib-shard=2/3", "--fib-shard=3/3"]
    assert all("-p" in a and "pytest_fib.remote.shard" in a for a in exec_argvs(remote)
               if a[:3] == ("python", "-m", "pytest"))
    assert remote.names().count("terminate") == 3
