"""Durable results: FlashInfer-Trace JSONL, one line per finished item, flushed as it finishes.

``--fib-traces DIR`` treats DIR as a dataset root: lines go to
``DIR/traces/<author>/<op_type>/<definition>.jsonl``, built and validated with flashinfer-bench's own
``Trace`` model, so ``TraceSet.from_path(DIR)`` and the existing tools read them.

* A correctness item writes its verdict (``PASSED`` with zero performance, or the failure status);
  the timing item then writes ``PASSED`` with the measured performance. Each line is appended with a
  single ``write`` on an ``O_APPEND`` descriptor and fsynced: a session killed at any moment leaves
  every finished item on disk and a file whose complete lines all parse.
* ``--fib-resume`` reads the side index ``DIR/traces/.pytest-fib-index.jsonl`` (definition, workload
  uuid, solution content hash, item kind): items recorded there for the same solution content are
  skipped; a changed kernel has a new hash and runs again.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any

from .cases import Case

INDEX = ".pytest-fib-index.jsonl"
FAILURES = {"INCORRECT_SHAPE", "INCORRECT_NUMERICAL", "INCORRECT_DTYPE", "RUNTIME_ERROR",
            "COMPILE_ERROR", "TIMEOUT"}


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
    out = []
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


def resume_key(case: Case, kind: str) -> str:
    return "|".join((case.definition.name, case.workload.uuid, case.solution.content_hash, kind))


def recorded(root: Path) -> dict[str, str]:
    """resume key -> status, from the side index."""
    return {r["key"]: r["status"] for r in read_lines(root / "traces" / INDEX) if "key" in r}


def environment(device: str) -> dict[str, Any]:
    libs: dict[str, str] = {"pytest-fib": _version()}
    try:
        import torch

        libs["torch"] = torch.__version__
        if torch.version.cuda:
            libs["cuda"] = str(torch.version.cuda)
        hardware = torch.cuda.get_device_name(0) if device == "cuda" else _cpu_name()
    except Exception:  # torch missing or broken: still record where it ran
        hardware = _cpu_name()
    try:
        import triton

        libs["triton"] = triton.__version__
    except Exception:
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
        return (self.root / "traces" / case.solution.author / case.definition.op_type /
                f"{case.definition.name}.jsonl")

    def write(self, case: Case, kind: str, status: str, log: str = "",
              correctness: dict[str, Any] | None = None,
              performance: dict[str, Any] | None = None) -> None:
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
        append_line(self.root / "traces" / INDEX, {
            "key": resume_key(case, kind), "status": status, "nodeid_kind": kind,
            "file": str(self.path(case).relative_to(self.root))})
