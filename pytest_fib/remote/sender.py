"""Remote side of ``pytest --modal``: a pytest plugin loaded in every container with
``-p pytest_fib.remote.sender --fib-remote-reports=/fib/out/reports.jsonl``.

It writes what the controller replays locally (issue 16, item 4), as pytest-xdist's worker does
(``xdist/remote.py``): one JSON object a line, flushed as it happens (a session killed half-way
still leaves the reports of the items that finished), each of them plain JSON-safe data:

* ``{"kind": "collected", "selected": [...], "ran": [...]}``: the node ids selected by the whole
  session (-k, -m, --lf, node ids; before a shard keeps its part) and those this container runs;
* ``{"kind": "collect", "report": ...}``: a collection report that did not pass;
* ``{"kind": "test", "report": ...}``: every test report (setup, call, teardown);

reports serialised by pytest's own ``pytest_report_to_serializable``, the form pytest-xdist
ships. Nothing here imports torch or modal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

import pytest

SELECTED = pytest.StashKey[list[str]]()  # set by shard.py before it keeps its part
_SENDER = pytest.StashKey["Sender"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """--fib-remote-reports PATH (set by the --modal controller)."""
    parser.addoption("--fib-remote-reports", dest="fib_remote_reports", metavar="PATH",
                     help="(set by pytest --modal) write serialised reports to PATH (JSON lines).")


class Sender:
    """Writes one JSON line per event to the reports file."""

    def __init__(self, config: pytest.Config, path: Path) -> None:
        self.config = config
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file: IO[str] = path.open("w", encoding="utf-8")

    def send(self, kind: str, **data: Any) -> None:
        self.file.write(json.dumps({"kind": kind, **data}, separators=(",", ":")) + "\n")
        self.file.flush()

    def serialise(self, report: Any) -> dict[str, Any]:
        data: dict[str, Any] = self.config.hook.pytest_report_to_serializable(
            config=self.config, report=report)
        return data

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """The selection, for the controller's collection check."""
        ran = [item.nodeid for item in session.items]
        self.send("collected", selected=self.config.stash.get(SELECTED, ran), ran=ran)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """Collection reports that did not pass (as xdist: the passing ones carry nothing)."""
        if not report.passed:
            self.send("collect", report=self.serialise(report))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Every test report, as it happens."""
        self.send("test", report=self.serialise(report))

    def pytest_unconfigure(self) -> None:
        """Close the reports file."""
        self.file.close()


def pytest_configure(config: pytest.Config) -> None:
    """With --fib-remote-reports, register the sender."""
    path = config.getoption("fib_remote_reports", None)
    if path:
        sender = Sender(config, Path(path))
        config.stash[_SENDER] = sender
        config.pluginmanager.register(sender, "fib-remote-sender")
