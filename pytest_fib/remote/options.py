"""Options of ``--modal`` (placeholder: owned by the remote work; keep imports light)."""

from __future__ import annotations

import pytest


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("fib-modal", "pytest-fib: run the session on Modal")
    group.addoption("--modal", action="store_true", default=False,
                    help="run this session (same selection and options) on a Modal GPU.")
