"""The stash key of a pytest-fib session, apart from ``session.py`` so that ``plugin.py`` can read
it without importing the dataset and case modules: an unused plugin costs next to nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .session import FibSession  # noqa: F401 -- named in the string below (a runtime value)

FIB_SESSION = pytest.StashKey["FibSession"]()
