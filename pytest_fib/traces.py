"""Durable results: FlashInfer-Trace JSONL, one line per finished item, flushed as it finishes.

``--fib-traces DIR`` treats DIR as a dataset root: lines go to
``DIR/traces/<author>/<op_type>/<definition>.jsonl``, built and validated with flashinfer-bench's
own ``Trace`` model, so ``TraceSet.from_path(DIR)`` and the existing tools read them.

* A correctness item writes its verdict (``PASSED`` with zero performance, or the failure status);
  the timing item then writes ``PASSED`` with the measured performance. Each line is appended with a
  single ``write`` on an ``O_APPEND`` descriptor and fsynced: a session killed at any moment leaves
  every finished item on disk and a file whose complete lines all parse.
* ``--fib-resume`` reads the side index ``DIR/.pytest-fib/index.jsonl`` -- outside ``traces/``, so
  ``TraceSet.from_path(DIR)`` reads only Trace lines (issue 14). Its key covers everything a verdict
  depends on: the solution's and the definition's content, the workload, tolerances and trials,
  seed, device and the harness itself; a resumed item reports the recorded status and message (a
  recorded failure fails again), anything changed runs again.
* A torn last line (a kill mid-write) is cut off at the start of the next session and kept in
  ``DIR/.pytest-fib/torn/``; the header names it.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

from .cases import Case
from .paths import component, inside
from .settings import Settings

SIDE = ".pytest-fib"  # pytest-fib's own files, beside traces/: never read by TraceSet.from_path
INDEX = f"{SIDE}/index.jsonl"  # relative to the --fib-traces folder
LEGACY_INDEX = "traces/.pytest-fib-index.jsonl"  # before issue 14: broke TraceSet.from_path

def append_line(path: Path, obj: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # a killed writer left a torn line: never glue onto it
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every complete line; a torn last line (a kill mid-write) is ignored, not an error."""
    out: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return out
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def resume_key(case: Case, kind: str, settings: Settings) -> str:
    """Everything the verdict of one item depends on: a recorded result is reused only when all
    of it is the same (issue 14: a changed reference once resumed as passed)."""
    tol = settings.tolerance_for(case.definition.name, case.definition.op_type)
    digest = hashlib.sha256(json.dumps({
        "solution": case.solution.content_hash, "definition": case.definition.raw,
        "workload": case.workload.raw, "tolerance": dataclasses.asdict(tol),
        "seed": settings.seed, "device": settings.device, "harness": harness_version(),
        "strict_spec": settings.strict_spec,
    }, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return "|".join((case.definition.name, case.workload.uuid, case.solution.name, kind, digest))


@functools.lru_cache(maxsize=1)
def harness_version() -> str:
    """pytest-fib's version and a digest of its own source: an edited harness is a new harness."""
    h = hashlib.sha256()
    package = Path(__file__).parent
    for path in sorted(package.rglob("*.py")):
        if "selftest" not in path.relative_to(package).parts:
            h.update(path.relative_to(package).as_posix().encode())
            h.update(path.read_bytes())
    return f"{_version()}+{h.hexdigest()[:12]}"


def recorded(root: Path) -> dict[str, dict[str, str]]:
    """resume key -> {"status", "message", "file"}, from the side index (the last line wins)."""
    return {r["key"]: {"status": r["status"], "message": r.get("message", ""),
                       "file": r.get("file", "")}
            for r in read_lines(root / INDEX) if "key" in r and "status" in r}


def recorded_seed(root: Path) -> int | None:
    """The seed of the last recorded item: --fib-resume without --fib-seed continues with it."""
    seeds = [r["seed"] for r in read_lines(root / INDEX) if isinstance(r.get("seed"), int)]
    return seeds[-1] if seeds else None


def set_aside_torn(root: Path) -> list[str]:
    """Cut a torn last line (a session killed mid-write) off every trace file and the index, keep
    it under ``DIR/.pytest-fib/torn/``, and say what was done. Run once per session, before any
    item writes (the xdist controller, before its workers start)."""
    files = sorted((root / "traces").rglob("*.jsonl")) if (root / "traces").is_dir() else []
    files += [p for p in (root / INDEX, root / LEGACY_INDEX) if p.is_file()]
    said = []
    for path in files:
        with path.open("r+b") as fh:
            data = fh.read()
            if not data or data.endswith(b"\n"):
                continue
            cut = data.rfind(b"\n") + 1
            rel = path.relative_to(root).as_posix()
            aside = root / SIDE / "torn" / (rel.replace("/", "__") + ".part")
            aside.parent.mkdir(parents=True, exist_ok=True)
            with aside.open("ab") as out:
                out.write(data[cut:] + b"\n")
            fh.truncate(cut)
            fh.flush()
            os.fsync(fh.fileno())
        said.append(f"{rel}: a torn last line ({len(data) - cut} bytes, from a session killed "
                    f"mid-write) was set aside in {aside.relative_to(root).as_posix()}")
    legacy = root / LEGACY_INDEX
    if legacy.is_file():  # an index from before issue 14 (keys of another form): out of traces/
        (root / SIDE).mkdir(exist_ok=True)
        legacy.replace(root / SIDE / "index-legacy.jsonl")
        said.append(f"{LEGACY_INDEX}: moved to {SIDE}/index-legacy.jsonl (flashinfer-bench's "
                    "TraceSet.from_path cannot read it there)")
    return said


def environment(device: str) -> dict[str, Any]:
    libs: dict[str, str] = {"pytest-fib": _version()}
    try:
        import torch

        libs["torch"] = torch.__version__
        if torch.version.cuda:
            libs["cuda"] = str(torch.version.cuda)
        hardware = torch.cuda.get_device_name(0) if device == "cuda" else _cpu_name()
    except Exception:  # noqa: BLE001 -- torch missing or broken: still record where it ran
        hardware = _cpu_name()
    try:
        import triton

        libs["triton"] = triton.__version__
    except Exception:  # noqa: BLE001 -- triton missing or broken: not recorded
        pass
    return {"hardware": hardware, "libs": libs}


def _version() -> str:
    from . import __version__

    return __version__


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return "CPU " + line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU " + (platform.processor() or platform.machine())


class TraceWriter:
    def __init__(self, root: Path, device: str) -> None:
        self.root = root
        self.env = environment(device)

    def path(self, case: Case) -> Path:
        """``traces/<author>/<op_type>/<definition>.jsonl``, each name one safe path component
        (checked when the files were loaded; ``inside`` refuses anything that still escapes)."""
        parts = [component(case.solution.author), component(case.definition.op_type),
                 component(case.definition.name)]
        if None in parts:  # load-time checks make this unreachable; never write elsewhere
            raise ValueError(f"unsafe name in {case.solution.path} or {case.definition.path}")
        return inside(self.root, "traces", *parts[:2], f"{parts[2]}.jsonl")  # type: ignore[arg-type]

    def write(self, case: Case, kind: str, status: str, log: str = "",
              correctness: dict[str, Any] | None = None,
              performance: dict[str, Any] | None = None, *, key: str = "",
              message: str = "", seed: int | None = None) -> None:
        """One Trace line; with ``key`` also its resume-index line (the status and the message
        the item showed, so that a resumed item reports exactly what was recorded)."""
        from flashinfer_bench.data import Trace

        evaluation: dict[str, Any] = {
            "status": status, "environment": self.env,
            "timestamp": datetime.datetime.now().isoformat(), "log": log[-8000:]}
        if status in ("PASSED", "INCORRECT_NUMERICAL"):
            evaluation["correctness"] = correctness or {"max_relative_error": 0.0,
                                                        "max_absolute_error": 0.0}
            evaluation["correctness"].setdefault("extra", {})["pytest_fib_item"] = kind
        if status == "PASSED":
            evaluation["performance"] = performance or {
                "latency_ms": 0.0, "reference_latency_ms": 0.0, "speedup_factor": 0.0}
        trace = Trace.model_validate({
            "definition": case.definition.name, "workload": case.workload.raw,
            "solution": case.solution.name, "evaluation": evaluation})
        append_line(self.path(case), json.loads(trace.model_dump_json()))
        if key:
            append_line(self.root / INDEX, {
                "key": key, "status": status, "message": message[-20000:], "seed": seed,
                "nodeid_kind": kind,
                "file": self.path(case).relative_to(self.root).as_posix()})
