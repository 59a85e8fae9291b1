"""TOML on every Python pytest-fib supports: ``tomllib`` (3.11+), else its backport ``tomli``
(a dependency on 3.10 only, pyproject.toml). One place, so no module imports ``tomllib`` itself."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["tomllib"]
