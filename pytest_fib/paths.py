"""Names from a dataset that become file names, and the output folders they land in (issue 14).

A downloaded dataset must not choose where pytest-fib writes: an ``author`` of ``../../../x`` or
``/etc`` once wrote outside ``--fib-traces``. Every name that becomes a path component (author,
op_type, definition, solution) goes through ``component``; a name it cannot make safe is a load
problem naming the file, found when the file is read, not when the first result is written. The
writers check once more (``inside``) so that no later change can reintroduce the escape.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# Separators of any platform, characters Windows refuses, and control characters: each becomes "_".
_UNSAFE = re.compile(r'[/\\:*?"<>|\x00-\x1f\x7f]')
MAX_BYTES = 200  # below every common file-name limit (255 bytes), leaving room for a suffix


def component(name: object) -> str | None:
    """``name`` as one safe path component, or None when nothing sensible is left.

    Separators become "_" (``../x`` -> ``.._x``, one component); a leading "." becomes "_" (no
    hidden files, no ``..``); empty, all-dot or over-long names cannot be made safe.
    """
    if not isinstance(name, str):
        return None
    text = _UNSAFE.sub("_", name.strip())
    if not text or set(text) == {"."} or len(text.encode()) > MAX_BYTES:
        return None
    return "_" + text[1:] if text.startswith(".") else text


def unsafe(fields: dict[str, object]) -> str | None:
    """The reason the first of these named fields cannot become a file name, else None."""
    for field, value in fields.items():
        if component(value) is None:
            return (f"{field} {value!r} cannot be used as a file or folder name (empty, only "
                    f"dots, or over {MAX_BYTES} bytes): rename it")
    return None


def inside(root: Path, *parts: str) -> Path:
    """``root / parts...`` after checking that it stays inside ``root`` (defence in depth)."""
    path = root.joinpath(*parts)
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
        raise ValueError(f"pytest-fib refuses to write {path}: it is outside {root}")
    return path


def output_dir_problem(path: Path) -> str | None:
    """Why ``path`` cannot be an output folder (a file there, or a folder that cannot be created
    or written), else None. Creates nothing: a session that fails later leaves no empty folder."""
    probe = path
    while not probe.exists():
        if probe.is_symlink():
            return f"{probe} is a broken symbolic link"
        parent = probe.parent
        if parent == probe:
            return "no part of it exists"
        probe = parent
    if not probe.is_dir():
        where = "is a file" if probe == path else f"lies under {probe}, which is a file"
        return f"{where}, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "is not writable" if probe == path else f"cannot be created: {probe} is not writable"
        return what
    return None
