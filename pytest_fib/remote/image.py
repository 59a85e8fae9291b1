"""The remote image's pinned set, read from ``image.lock.toml`` beside this file.

Imports no modal: ``modal_backend`` builds the image from :func:`load`, and the tests resolve the
same set into a local virtual environment (``tests/test_environments.py``) without the Modal client.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from .._toml import tomllib

LOCK_FILE = Path(__file__).with_name("image.lock.toml")
_PIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+")


@dataclasses.dataclass(frozen=True)
class ImageLock:
    """Everything the image installs, in install order: torch from its index, the packages, then
    the ``--no-deps`` ones."""

    cuda_image: str
    python: str
    torch_index: str
    torch: tuple[str, ...]
    packages: tuple[str, ...]
    no_deps: tuple[str, ...]

    @property
    def pins(self) -> tuple[str, ...]:
        return self.torch + self.packages + self.no_deps

    def version(self, name: str) -> str:
        """The pinned version of one package (names compared as pip does)."""
        for pin in self.pins:
            pkg, _, version = pin.partition("==")
            if _normal(pkg) == _normal(name):
                return version
        raise KeyError(f"{name} is not pinned in {LOCK_FILE.name}")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(data: dict[str, Any], table: str, path: Path) -> tuple[str, ...]:
    pins = data.get(table, {}).get("pins", [])
    bad = [p for p in pins if not isinstance(p, str) or not _PIN.fullmatch(p)]
    if bad or not isinstance(pins, list):
        raise ValueError(f"{path}: [{table}] pins must be a list of exact pins 'name==version'; "
                         f"got {bad or pins!r}")
    return tuple(pins)


def load(path: Path = LOCK_FILE) -> ImageLock:
    """Read and check the lock file; a malformed one raises ValueError naming the file."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    try:
        return ImageLock(
            cuda_image=str(data["base"]["cuda_image"]), python=str(data["base"]["python"]),
            torch_index=str(data["torch"]["index"]), torch=_pins(data, "torch", path),
            packages=_pins(data, "packages", path), no_deps=_pins(data, "no_deps", path))
    except KeyError as e:
        raise ValueError(f"{path}: missing key {e}") from None
