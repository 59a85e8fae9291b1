"""A build failure as its author reads it (issue 18): each compiler error once, against the file
the author edits, not the build cache's copy.

flashinfer-bench's builders compile a copy of the sources in their cache
(``~/.cache/flashinfer_bench/cache/tvm_ffi/<name>_<hash>/kernel.cu``) and put ninja's whole output
into the exception's message; ``build.compiler_errors`` already picks the error lines from it. So
the message keeps its first line (what failed), the error lines follow once, and every path of a
cached copy becomes the author's own: ``solution/cuda/kernel.cu`` in a starter kit.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


def user_path(solution: Any, source: str) -> str:
    """Where the author edits ``source``: the starter kit's ``solution/<language>/<source>``, or
    the Solution JSON that carries it (``solution.json:kernel.cu``)."""
    where = Path(solution.path)
    if where.name == "config.toml":
        return str(where.parent / "solution" / solution.language / source)
    return f"{where}:{source}"


def to_user_paths(text: str, solution: Any) -> str:
    """Absolute paths ending in one of the solution's source files -> the author's file."""
    for src in solution.raw.get("sources", []):
        name = src["path"]
        mine = user_path(solution, name)
        pattern = re.compile(r"(?<![\w.\-])/[^\s\"'()<>:]*/" + re.escape(name) + r"(?![\w.\-])")
        text = pattern.sub(mine.replace("\\", "\\\\"), text)
        # the compile check without a GPU compiles in a temporary folder and names files bare
        bare = re.compile(r"(?m)^" + re.escape(name) + r"(?=[(:])")
        text = bare.sub(mine.replace("\\", "\\\\"), text)
    return text


def build_error_text(solution: Any, message: str, errors: str) -> str:
    """What failed (the message's first line) and the compiler's error lines, once each."""
    lines = message.strip().splitlines()
    head = lines[0] if lines else "build failed"
    if not errors.strip():
        return to_user_paths(message.strip(), solution)
    seen: dict[str, None] = {}
    for line in errors.splitlines():
        seen.setdefault(to_user_paths(line, solution), None)
    # a failure replayed from the build cache says so, and how to build again (buildcache.py)
    cached = [line for line in lines[1:] if line.startswith("(cached build result from")]
    return (f"{to_user_paths(head, solution)}\n--- compiler errors ---\n" + "\n".join(seen)
            + "".join(f"\n{line}" for line in cached))
