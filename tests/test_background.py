"""Work other plugins do at session end, started after the first item (background.py):
pytest-benchmark's machine info is computed by its own function, in pytest-fib's thread, and is
what --benchmark-json holds; a session that saves nothing does not compute it."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import Project
from pytest_benchmark import plugin as benchmark_plugin


@pytest.fixture
def generated(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The threads pytest-benchmark's machine-info function ran in, when pytest-fib called it
    (pytest-benchmark's own hook calls the function it registered, not this attribute)."""
    threads: list[str] = []
    own = benchmark_plugin.pytest_benchmark_generate_machine_info

    def spy() -> dict[str, object]:
        threads.append(threading.current_thread().name)
        return {**own(), "spied": True}

    monkeypatch.setattr(benchmark_plugin, "pytest_benchmark_generate_machine_info", spy)
    return threads


def test_the_machine_info_is_computed_while_items_run(project: Project, generated: list[str]
                                                      ) -> None:
    project.dataset()
    project.kit("ok")
    out = project.root / "bench.json"
    result = project.run("-m", "timing", f"--benchmark-json={out}")
    result.assert_outcomes(passed=3)
    assert generated == ["fib-prefetch"]
    info = json.loads(out.read_text())["machine_info"]
    assert info["spied"] is True and "cpu" in info and "python_version" in info


def test_a_session_that_saves_no_benchmark_does_not_compute_it(project: Project,
                                                               generated: list[str]) -> None:
    project.dataset()
    project.kit("ok")
    project.run("-m", "timing").assert_outcomes(passed=3)
    assert generated == []
