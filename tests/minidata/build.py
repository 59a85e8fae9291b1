"""Write the mini-dataset: every op family of the public FlashInfer-Trace dataset, at sizes a
2-core CPU runs in seconds, in flashinfer-bench's layout (definitions/, workloads/, blob/,
solutions/), plus ``expect.json``: what each solution's correctness items must end as.

``python -m tests.minidata OUT`` writes it; tests build it once per session (``build(root)``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pkgutil
import uuid as uuidlib
from pathlib import Path
from typing import Any

from .spec import Family, Solution, Workload

AUTHOR = "minidata"
SEED = 20261204


def families(only: list[str] | None = None) -> list[Family]:
    import torch

    from . import families as pkg

    out = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if only and info.name not in only:
            continue
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        gen = torch.Generator().manual_seed(SEED + int(hashlib.sha1(info.name.encode()).hexdigest()[:6], 16))
        out.append(module.make(gen))
    return out


def workload_uuid(w: Workload, index: int) -> str:
    """Stable per definition and position: the dataset is the same on every build."""
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"pytest-fib-minidata/{w.definition}/{index}"))


def solution_json(s: Solution, language: str = "python") -> dict[str, Any]:
    return {"name": s.name, "definition": s.definition, "author": AUTHOR,
            "description": s.why or "correct",
            "spec": {"language": language, "target_hardware": ["cpu", "cuda"],
                     "entry_point": "main.py::run", "dependencies": [],
                     "destination_passing_style": s.dps},
            "sources": [{"path": "main.py", "content": s.source}]}


def build(root: Path, only: list[str] | None = None) -> Path:
    """Write the dataset under ``root``; returns ``root``."""
    from safetensors.torch import save_file

    root = Path(root)
    expect: dict[str, Any] = {}
    for fam in families(only):
        op_types = {}
        for d in fam.definitions:
            op_types[d["name"]] = d["op_type"]
            path = root / "definitions" / d["op_type"] / f"{d['name']}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(d, indent=2) + "\n")
        lines: dict[str, list[str]] = {}
        counts: dict[str, int] = {}
        for w in fam.workloads:
            op_type = op_types[w.definition]
            index = counts[w.definition] = counts.get(w.definition, -1) + 1
            blob_dir = Path("blob") / "workloads" / op_type / w.definition
            for file, tensors in w.blobs.items():
                (root / blob_dir).mkdir(parents=True, exist_ok=True)
                save_file({k: v.contiguous() for k, v in tensors.items()}, str(root / blob_dir / file))
            inputs = {}
            for name, spec in w.inputs.items():
                spec = dict(spec)
                if spec.get("type") == "safetensors":
                    spec["path"] = f"./{(blob_dir / spec.pop('file')).as_posix()}"
                inputs[name] = spec
            line = {"definition": w.definition, "solution": None,
                    "workload": {"uuid": workload_uuid(w, index), "axes": w.axes,
                                 "inputs": inputs},
                    "evaluation": None}
            lines.setdefault(w.definition, []).append(json.dumps(line))
        for name, rows in lines.items():
            path = root / "workloads" / op_types[name] / f"{name}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(rows) + "\n")
        for s in fam.solutions:
            path = root / "solutions" / AUTHOR / op_types[s.definition] / s.definition / f"{s.name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(solution_json(s), indent=2) + "\n")
            expect[s.name] = {"family": fam.name, "definition": s.definition,
                              "expect": s.expect, "why": s.why}
    (root / "expect.json").write_text(json.dumps(expect, indent=2, sort_keys=True) + "\n")
    return root
