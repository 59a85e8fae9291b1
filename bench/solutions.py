"""Load the project's solutions (kernels/<definition>/<solution>/) and the embedded definitions
as flashinfer-bench models, the way the plugin packs them (pack_solution_from_files)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KERNELS = REPO / "kernels"
DATASET = REPO / "pytest_fib" / "data" / "default"


def solution_dirs() -> list[Path]:
    return sorted(p.parent for p in KERNELS.glob("*/*/config.toml"))


def load_definition(name: str):
    from flashinfer_bench.data import Definition

    (path,) = DATASET.glob(f"definitions/*/{name}.json")
    return Definition.model_validate(json.loads(path.read_text()))


def load_solution(folder: Path):
    from flashinfer_bench.agents import pack_solution_from_files
    from flashinfer_bench.data import BuildSpec

    cfg = tomllib.loads((folder / "config.toml").read_text())
    sol, build = cfg["solution"], cfg["build"]
    spec = BuildSpec(
        language=build["language"],
        target_hardware=build.get("target_hardware", ["NVIDIA H200"]),
        entry_point=build["entry_point"],
        destination_passing_style=build.get("destination_passing_style", True),
        binding=build.get("binding"),
    )
    return pack_solution_from_files(
        str(folder / "solution" / build["language"]),
        spec,
        sol["name"],
        sol["definition"],
        sol.get("author", "pytest-fib"),
        sol.get("description", ""),
    )
