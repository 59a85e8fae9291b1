"""Find the user's own solutions in the kernels folder.

Two layouts work side by side, anywhere below the folder:

* the contest starter kit: a folder with ``config.toml`` (``[solution] name, definition, author``;
  ``[build] language, entry_point, destination_passing_style``) and its sources in
  ``solution/<language>/`` -- packed exactly as the starter kit's ``pack_solution.py`` does through
  ``flashinfer_bench.agents.pack_solution_from_files`` (top-level files of that folder with a source
  extension), so what is tested is what would be submitted;
* a Solution JSON file (``*.json``), as flashinfer-bench writes them.

No torch here: items are collected from this, validated with flashinfer-bench's models at setup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._toml import tomllib
from .dataset import (
    Problem,
    SolutionRec,
    _read_json,
    check_solution,
    not_utf8,
    unsafe_solution_names,
)

# flashinfer_bench.agents.solution_handler.VALID_SOURCE_EXTENSIONS (0.1.2)
SOURCE_EXTENSIONS = frozenset({".py", ".cu", ".cuh", ".cpp", ".c", ".h", ".hpp", ".cc", ".cxx"})
SKIP_DIRS = frozenset({"__pycache__", ".git", "build", ".pytest_cache", ".hypothesis",
                       "node_modules", "venv", "site-packages"})


def discover(root: Path, json: bool = True) -> tuple[list[SolutionRec], list[Problem]]:
    """All solutions below ``root`` (starter-kit folders, and Solution JSON files unless
    ``json`` is false)."""
    solutions: list[SolutionRec] = []
    problems: list[Problem] = []
    if not root.is_dir():
        return solutions, problems
    kit_dirs = sorted(p.parent for p in root.rglob("config.toml") if not _skipped(p, root))
    for kit in kit_dirs:
        rec, problem = read_starter_kit(kit)
        if rec:
            solutions.append(rec)
        if problem:
            problems.append(problem)
    for path in sorted(root.rglob("*.json")) if json else ():
        if _skipped(path, root) or any(k in path.parents for k in kit_dirs):
            continue
        raw, problem = _read_json(path, str(path))
        if problem is None:
            error = check_solution(raw) or unsafe_solution_names(raw)
            problem = (Problem(str(path), None, f"not a usable Solution JSON: {error}")
                       if error else None)
        if problem:
            problems.append(problem)
            continue
        solutions.append(SolutionRec(
            name=raw["name"], definition=raw["definition"], author=raw["author"],
            language=raw["spec"]["language"], path=str(path), origin="local", raw=raw))
    return solutions, problems


def _skipped(path: Path, root: Path) -> bool:
    return any(part in SKIP_DIRS or part.startswith(".")
               for part in path.relative_to(root).parts[:-1])


def read_starter_kit(folder: Path) -> tuple[SolutionRec | None, Problem | None]:
    cfg_path = folder / "config.toml"
    where = str(cfg_path)
    try:
        cfg = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as e:
        return None, Problem(where, None, f"not valid TOML: {e}")
    sol, build = cfg.get("solution"), cfg.get("build")
    if not isinstance(sol, dict) or not isinstance(build, dict):
        return None, Problem(where, None, "needs [solution] (name, definition, author) and "
                                          "[build] (language, entry_point) tables")
    missing = [f"[solution] {k}" for k in ("name", "definition", "author") if not sol.get(k)]
    missing += [f"[build] {k}" for k in ("language", "entry_point") if not build.get(k)]
    if missing:
        return None, Problem(where, None, f"missing {', '.join(missing)}")
    language = str(build["language"])
    src_dir = folder / "solution" / language
    if not src_dir.is_dir():
        return None, Problem(where, None, f"[build] language = {language!r} but {src_dir} does "
                                          f"not exist (sources go in solution/{language}/)")
    sources = []
    for p in sorted(src_dir.iterdir()):
        if not (p.is_file() and p.suffix.lower() in SOURCE_EXTENSIONS):
            continue
        data = p.read_bytes()
        try:
            sources.append({"path": p.name, "content": data.decode("utf-8")})
        except UnicodeDecodeError as e:
            # A Solution JSON carries sources as text, so a binary file cannot be packed
            # (flashinfer-bench's pack_solution_from_files fails on it too): name it and the fix.
            line, reason = not_utf8(data, e)
            return None, Problem(str(p), line, f"{reason}, or move it out of solution/{language}/ "
                                               f"(every {p.suffix} file there is packed as source "
                                               f"text of the solution in {where})")
    entry, problem = full_entry_point(str(build["entry_point"]), language,
                                      [s["path"] for s in sources])
    if problem:
        return None, Problem(where, None, problem)
    spec: dict[str, Any] = {
        "language": language,
        "target_hardware": list(build.get("target_hardware", ["cuda"])),
        "entry_point": entry,
        "destination_passing_style": bool(build.get("destination_passing_style", True)),
    }
    for key in ("binding", "dependencies"):
        if key in build:
            spec[key] = build[key]
    raw: dict[str, Any] = {"name": str(sol["name"]), "definition": str(sol["definition"]),
           "author": str(sol["author"]), "spec": spec, "sources": sources}
    if sol.get("description"):
        raw["description"] = str(sol["description"])
    error = check_solution(raw) or unsafe_solution_names(raw)
    if error:
        return None, Problem(where, None, error)
    expect = cfg.get("selftest")
    if expect is not None and not (isinstance(expect, dict) and expect.get("expect")):
        return None, Problem(where, None, "[selftest] needs expect = \"<CHECK>\" (and stage)")
    if expect is not None:
        expect = {"expect": str(expect["expect"]), "stage": str(expect.get("stage", "correctness")),
                  "gpu": bool(expect.get("gpu", False)), "why": str(expect.get("why", ""))}
    return SolutionRec(name=raw["name"], definition=raw["definition"], author=raw["author"],
                       language=language, path=where, origin="local", raw=raw,
                       expect=expect), None


# Where the starter kit's shorthand ``entry_point = "run"`` points, by language: the files that can
# define the function, and the conventional names that win when there are several (issue 18).
ENTRY_FILES = {"python": (".py",), "triton": (".py",), "tilelang": (".py",),
               "cuda": (".cu", ".cpp", ".cc", ".cxx"), "cpp": (".cpp", ".cc", ".cxx", ".cu")}
CONVENTIONAL = ("main.py", "kernel.py", "binding.py", "main.cpp", "binding.cpp", "main.cu",
                "kernel.cu")


def full_entry_point(entry: str, language: str, files: list[str]) -> tuple[str, str | None]:
    """``"run"`` -> ``"kernel.py::run"`` when the sources make the file unambiguous (one file that
    can define it, else one conventional name: main.py, kernel.py, binding.py, main.cpp, ...);
    ``"file::run"`` unchanged. (entry point, None) or ("", the problem and its fix)."""
    if "::" in entry or not entry.isidentifier():
        return entry, None  # a full entry point, or not a function name: checked as given
    exts = ENTRY_FILES.get(language, tuple(SOURCE_EXTENSIONS))
    candidates = [f for f in files if f.lower().endswith(exts)]
    if len(candidates) > 1:
        candidates = [f for f in candidates if f in CONVENTIONAL] or candidates
    if len(candidates) == 1:
        return f"{candidates[0]}::{entry}", None
    found = ", ".join(candidates) if candidates else f"no {'/'.join(exts)} file"
    return "", (f"[build] entry_point = {entry!r} does not say which file defines it "
                f"(solution/{language}/ has {found}); write entry_point = \"<file>::{entry}\", "
                f"e.g. \"{(candidates or ['kernel' + exts[0]])[0]}::{entry}\"")
