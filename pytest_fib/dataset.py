"""Locate and read a FlashInfer-Trace dataset for collection, without torch.

Collection must stay fast and torch-free (``import flashinfer_bench.data`` imports torch: about
2 s), so this module reads the JSON only for what items need: names, op types, axes, dtypes, uuids.
Full validation with flashinfer-bench's pydantic models happens at item setup (``models.py``). The
light checks here mirror exactly the schema rules that make flashinfer-bench 0.1.2 refuse a file, so
that ``--collect-only`` can already name every unloadable file; ``tests/test_dataset.py`` pins them
to the installed flashinfer-bench so the two cannot drift apart silently.

One bad file never hides the others: each becomes a ``Problem`` naming the file (and line) and the
reason, and the rest loads.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import paths

# flashinfer-bench 0.1.2's DType enum and languages (pinned by tests/test_dataset.py).
KNOWN_DTYPES = frozenset({
    "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "float4_e2m1",
    "int64", "int32", "int16", "int8", "bool",
})
KNOWN_LANGUAGES = frozenset({"python", "triton", "cpp", "cuda", "tilelang"})
INPUT_TYPES = frozenset({"random", "scalar", "safetensors"})
DTYPE_BYTES = {
    "float32": 4, "float16": 2, "bfloat16": 2, "float8_e4m3fn": 1, "float8_e5m2": 1,
    "float4_e2m1": 0.5, "int64": 8, "int32": 4, "int16": 2, "int8": 1, "bool": 1, "uint8": 1,
}


@dataclasses.dataclass(frozen=True)
class Problem:
    """A file (or one line of it) that cannot be used, and why.

    ``kind`` is "invalid" (the file is broken: the item fails) or "unsupported" (valid for a newer
    schema than flashinfer-bench 0.1.2 knows: reported and skipped, never fatal).
    """

    path: str
    line: int | None
    message: str
    kind: str = "invalid"

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclasses.dataclass(frozen=True)
class DefinitionRec:
    name: str
    op_type: str
    path: str
    raw: dict[str, Any]

    @property
    def var_axes(self) -> list[str]:
        return [k for k, a in self.raw["axes"].items() if a.get("type") == "var"]

    def shape(self, tensor: dict[str, Any], axes: dict[str, int]) -> list[int] | None:
        if tensor.get("shape") is None:
            return None
        consts = {k: a.get("value") for k, a in self.raw["axes"].items()
                  if a.get("type") == "const"}
        return [int(consts.get(ax, axes.get(ax, 0)) or 0) for ax in tensor["shape"]]

    def nbytes(self, axes: dict[str, int], which: str = "both") -> int:
        """Bytes of the inputs and/or outputs at these axis values (each read or written once)."""
        groups = {"inputs": ["inputs"], "outputs": ["outputs"], "both": ["inputs", "outputs"]}
        total = 0.0
        for group in groups[which]:
            for spec in self.raw[group].values():
                n = 1
                for d in self.shape(spec, axes) or []:
                    n *= d
                total += n * DTYPE_BYTES.get(spec.get("dtype", ""), 4)
        return int(total)


@dataclasses.dataclass(frozen=True)
class WorkloadRec:
    definition: str
    uuid: str
    axes: dict[str, int]
    path: str
    line: int
    raw: dict[str, Any]  # the workload object itself (axes, inputs, uuid)

    @property
    def blobs(self) -> list[str]:
        return [i["path"] for i in self.raw.get("inputs", {}).values()
                if isinstance(i, dict) and i.get("type") == "safetensors"]


@dataclasses.dataclass(frozen=True)
class SolutionRec:
    name: str
    definition: str
    author: str
    language: str
    path: str  # the file a user edits: config.toml or the Solution JSON
    origin: str  # "local" or "dataset"
    raw: dict[str, Any]  # a Solution JSON object
    # --fib-selftest exploits: {"expect": CHECK, "stage": "correctness"|"timing"|"property",
    # "gpu": bool}; never part of the Solution JSON
    expect: dict[str, Any] | None = None

    @property
    def needs_gpu(self) -> bool:
        """Compiled CUDA cannot run without a GPU; Triton runs in its interpreter, C++ on the
        host."""
        return self.language == "cuda" or any(
            s["path"].endswith((".cu", ".cuh")) for s in self.raw.get("sources", []))

    @property
    def content_hash(self) -> str:
        """Hash of everything that changes behaviour (flashinfer-bench's Solution.hash fields)."""
        return content_hash(self.raw)


def content_hash(raw: dict[str, Any]) -> str:
    spec = raw.get("spec", {})
    h = hashlib.sha1()
    for part in (raw.get("name", ""), raw.get("definition", ""), spec.get("language", ""),
                 spec.get("entry_point", ""), str(spec.get("binding") or ""),
                 str(spec.get("destination_passing_style", True)), *spec.get("dependencies", []),
                 *(p for s in raw.get("sources", []) for p in (s.get("path", ""),
                                                               s.get("content", "")))):
        h.update(str(part).encode())
    return h.hexdigest()


@dataclasses.dataclass
class Dataset:
    root: Path
    definitions: dict[str, DefinitionRec] = dataclasses.field(default_factory=dict)
    workloads: dict[str, list[WorkloadRec]] = dataclasses.field(default_factory=dict)
    solutions: list[SolutionRec] = dataclasses.field(default_factory=list)
    problems: list[Problem] = dataclasses.field(default_factory=list)
    # definitions that exist but cannot be used; their workloads/solutions are not problems again
    unusable: dict[str, Problem] = dataclasses.field(default_factory=dict)

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


def not_utf8(data: bytes, e: UnicodeDecodeError) -> tuple[int, str]:
    """(line, reason) for bytes that are not UTF-8: where the first bad byte is, and the fix."""
    line = data.count(b"\n", 0, e.start) + 1
    column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
    return line, (f"not UTF-8 text: byte 0x{data[e.start]:02x} at line {line}, column {column} "
                  f"({e.reason}); save the file as UTF-8")


def _read_json(path: Path, label: str) -> tuple[Any, Problem | None]:
    try:
        data = path.read_bytes()
        return json.loads(data.decode("utf-8")), None
    except json.JSONDecodeError as e:
        return None, Problem(label, e.lineno, f"not valid JSON: {e.msg} (column {e.colno})")
    except UnicodeDecodeError as e:
        return None, Problem(label, *not_utf8(data, e))
    except OSError as e:
        return None, Problem(label, None, f"cannot be read: {e}")


def check_definition(raw: Any) -> tuple[str, str] | None:
    """Return (kind, reason) when flashinfer-bench 0.1.2 would refuse this definition, else None."""
    if not isinstance(raw, dict):
        return "invalid", "a definition must be a JSON object"
    missing = [k for k in ("name", "op_type", "axes", "inputs", "outputs", "reference")
               if k not in raw or (k != "outputs" and not raw[k])]
    if missing:
        return "invalid", f"missing required field(s): {', '.join(missing)}"
    if not all(isinstance(raw[k], str) for k in ("name", "op_type", "reference")):
        return "invalid", "name, op_type and reference must be strings"
    if not all(isinstance(raw[k], dict) for k in ("axes", "inputs", "outputs")):
        return "invalid", "axes, inputs and outputs must be JSON objects"
    for name, axis in raw["axes"].items():
        if not isinstance(axis, dict) or axis.get("type") not in ("const", "var"):
            return "invalid", f"axis {name!r} must have type 'const' or 'var'"
        if axis["type"] == "const" and not (isinstance(axis.get("value"), int)
                                            and axis["value"] >= 0):
            return "invalid", f"const axis {name!r} needs a non-negative integer 'value'"
    for group in ("inputs", "outputs"):
        for tname, spec in raw[group].items():
            if not isinstance(spec, dict) or "dtype" not in spec:
                return "invalid", f"{group[:-1]} {tname!r} needs a dtype"
            if spec["dtype"] not in KNOWN_DTYPES:
                return "unsupported", (f"{group[:-1]} {tname!r} has dtype {spec['dtype']!r}, "
                                       "which flashinfer-bench 0.1.2 does not know")
            for ax in spec.get("shape") or []:
                if ax not in raw["axes"]:
                    return "invalid", f"{group[:-1]} {tname!r} uses undefined axis {ax!r}"
    overlap = sorted(set(raw["inputs"]) & set(raw["outputs"]))
    if overlap:
        return "unsupported", (f"tensor(s) {', '.join(overlap)} are both input and output "
                               "(in-place), which flashinfer-bench 0.1.2 does not allow")
    try:
        tree = ast.parse(raw["reference"])
    except SyntaxError as e:
        return "invalid", f"reference is not valid Python: {e.msg} (line {e.lineno})"
    if not any(isinstance(n, ast.FunctionDef) and n.name == "run" for n in tree.body):
        return "invalid", "reference must define a top-level function named 'run'"
    return None


def check_solution(raw: Any) -> str | None:
    if not isinstance(raw, dict):
        return "a solution must be a JSON object"
    missing = [k for k in ("name", "definition", "author", "spec", "sources") if not raw.get(k)]
    if missing:
        return f"missing required field(s): {', '.join(missing)}"
    spec = raw["spec"]
    if not isinstance(spec, dict) or spec.get("language") not in KNOWN_LANGUAGES:
        return f"spec.language must be one of {sorted(KNOWN_LANGUAGES)}"
    if not isinstance(spec.get("target_hardware"), list) or not spec["target_hardware"]:
        return "spec.target_hardware must be a non-empty list (e.g. [\"cuda\"])"
    if spec.get("binding") not in (None, "tvm-ffi", "torch"):
        return f"spec.binding {spec['binding']!r} must be 'tvm-ffi' or 'torch'"
    entry = spec.get("entry_point", "")
    if not isinstance(entry, str) or entry.count("::") != 1:
        return f"spec.entry_point {entry!r} must look like 'file.py::function'"
    paths = [s.get("path") for s in raw["sources"] if isinstance(s, dict)]
    if len(set(paths)) != len(paths):
        return "duplicate source paths"
    if entry.split("::")[0] not in paths:
        return f"entry file {entry.split('::')[0]!r} is not among the sources {paths}"
    return None


def unsafe_solution_names(raw: dict[str, Any]) -> str | None:
    """Why a (schema-valid) solution's names cannot become file names, else None (paths.py)."""
    return paths.unsafe({"solution name": raw["name"], "author": raw["author"]})


def _iter_jsonl(path: Path) -> Iterator[tuple[int, str | Problem]]:
    """Non-blank lines; a line that is not UTF-8 comes back as its Problem (one bad byte must not
    abort the session: issue 14). ``path`` is the label the Problem names."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield lineno, Problem(str(path), lineno, not_utf8(raw, e)[1].replace(
                    "at line 1, ", "at "))
                continue
            if line.strip():
                yield lineno, line


def load(root: Path, with_solutions: bool) -> Dataset:
    """Read definitions, workloads and (optionally) the dataset's own solutions."""
    ds = Dataset(root=root)
    for path in sorted((root / "definitions").rglob("*.json")):
        _load_definition(ds, path)
    for path in sorted((root / "workloads").rglob("*.jsonl")):
        _load_workloads(ds, path)
    if with_solutions:
        for path in sorted((root / "solutions").rglob("*.json")):
            raw, problem = _read_json(path, ds.rel(path))
            if problem is None:
                error = check_solution(raw) or unsafe_solution_names(raw)
                problem = Problem(ds.rel(path), None, error) if error else None
            if problem is not None:
                ds.problems.append(problem)
                continue
            ds.solutions.append(SolutionRec(
                name=raw["name"], definition=raw["definition"], author=raw["author"],
                language=raw["spec"]["language"], path=str(path), origin="dataset", raw=raw))
    return ds


def _load_definition(ds: Dataset, path: Path) -> None:
    label = ds.rel(path)
    raw, problem = _read_json(path, label)
    if problem is None:
        verdict = check_definition(raw)
        if verdict is not None:
            problem = Problem(label, None, verdict[1], verdict[0])
            if isinstance(raw, dict) and isinstance(raw.get("name"), str):
                ds.unusable[raw["name"]] = problem
    if problem is None:
        unsafe = paths.unsafe({"definition name": raw["name"], "op_type": raw["op_type"]})
        problem = Problem(label, None, unsafe) if unsafe else None
    if problem is None and raw["name"] in ds.definitions:
        problem = Problem(label, None, f"duplicate definition name {raw['name']!r} (also in "
                          f"{ds.rel(Path(ds.definitions[raw['name']].path))})")
    if problem is not None:
        ds.problems.append(problem)
        return
    ds.definitions[raw["name"]] = DefinitionRec(raw["name"], raw["op_type"], str(path), raw)


def _load_workloads(ds: Dataset, path: Path) -> None:
    label = ds.rel(path)
    seen: set[str] = set()
    try:
        lines = list(_iter_jsonl(path))
    except OSError as e:
        ds.problems.append(Problem(label, None, f"cannot be read: {e}"))
        return
    for lineno, line in lines:
        if isinstance(line, Problem):
            ds.problems.append(dataclasses.replace(line, path=label))
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            ds.problems.append(Problem(label, lineno, f"not valid JSON: {e.msg}"))
            continue
        problem = _check_workload_line(ds, raw, seen)
        if problem == "":
            continue  # belongs to an unusable definition: reported once, with the definition
        if problem:
            ds.problems.append(Problem(label, lineno, problem))
            continue
        wl = raw["workload"]
        seen.add(wl["uuid"])
        ds.workloads.setdefault(raw["definition"], []).append(WorkloadRec(
            raw["definition"], wl["uuid"], dict(wl["axes"]), str(path), lineno, wl))


def _check_workload_line(ds: Dataset, raw: Any, seen: set[str]) -> str | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("workload"), dict):
        return "expected a trace object with a 'workload' field"
    name, wl = raw.get("definition"), raw["workload"]
    if name in ds.unusable:
        return ""
    if name not in ds.definitions:
        return f"definition {name!r} is not in the dataset's definitions/"
    if not isinstance(wl.get("uuid"), str) or not wl["uuid"]:
        return "workload has no uuid"
    if wl["uuid"] in seen:
        return f"duplicate workload uuid {wl['uuid']}"
    axes, inputs = wl.get("axes"), wl.get("inputs")
    if not isinstance(axes, dict) or not isinstance(inputs, dict):
        return "workload needs 'axes' and 'inputs' objects"
    definition = ds.definitions[name]
    missing = [a for a in definition.var_axes if a not in axes]
    if missing:
        return f"workload {wl['uuid']} gives no value for axis/axes {', '.join(missing)}"
    bad = [a for a, v in axes.items() if not isinstance(v, int) or v < 0]
    if bad:
        return f"workload {wl['uuid']}: axis values must be non-negative integers ({bad})"
    for iname, spec in inputs.items():
        if not isinstance(spec, dict) or spec.get("type") not in INPUT_TYPES:
            return f"workload {wl['uuid']}: input {iname!r} has unknown type"
        if iname not in definition.raw["inputs"]:
            return f"workload {wl['uuid']}: input {iname!r} is not an input of {name}"
    return None
