"""Local side of ``pytest --modal``: the remote reports, replayed into this session's hooks
(issue 16, item 4), as pytest-xdist's controller does (``xdist/dsession.py``).

The controller runs a local pytest session that collects nothing itself (the items live
remotely, with the GPU, the dataset on the volume and the image's packages): ``pytest_collection``
and ``pytest_runtestloop`` are taken over by :class:`ReplayPlugin`, which runs the remote session,
then fires ``pytest_collectreport``, ``pytest_runtest_logstart``/``logreport``/``logfinish`` with
the reports each container wrote (``remote/sender.py``), rebuilt by
``pytest_report_from_serializable``. So this side's junit (``--junitxml``), cache (``--lf``,
``--ff``), terminal reporter stats and any other plugin's hooks see the remote items as if they had
run here. What the user watches is the remote terminal, streamed live; the local terminal reporter
is silenced so that nothing is printed twice.

Collections are compared as xdist compares its workers': every shard must have selected the same
items, and every item a container ran must have been reported (and none that it did not
collect); a difference fails the session, naming the items only on one side.
"""

from __future__ import annotations

import dataclasses
import io
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

TESTS_FAILED = int(pytest.ExitCode.TESTS_FAILED)


@dataclasses.dataclass
class Received:
    """What one container wrote: its selection and its reports, in order."""

    label: str  # "1/2", or "" unsharded
    selected: list[str] | None = None  # None: the session never finished collecting
    ran: list[str] | None = None
    records: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def reported(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.records:
            if r["kind"] == "test":
                seen.setdefault(r["report"]["nodeid"], None)
        return list(seen)


def read(path: Path, label: str) -> Received:
    """A reports file; a torn last line (a killed session) is ignored."""
    got = Received(label)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return got
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("kind") == "collected":
            got.selected, got.ran = list(record["selected"]), list(record["ran"])
        elif record.get("kind") in ("collect", "test"):
            got.records.append(record)
    return got


def _names(ids: Iterable[str], limit: int = 20) -> str:
    ids = sorted(ids)
    more = f"\n    ... and {len(ids) - limit} more" if len(ids) > limit else ""
    return "".join(f"\n    {i}" for i in ids[:limit]) + more


def collection_problems(received: Sequence[Received], finished: Callable[[str], bool],
                        ran_tests: bool = True) -> list[str]:
    """What differs between the sides, as messages naming the items only on one side.

    * shards: each collected the whole session; their selections must be the same;
    * each container: the items it reported on are the items it ran -- none missing (unless the
      container did not finish: an infrastructure failure, reported as such; or ``ran_tests`` is
      false: --collect-only) and none extra."""
    problems: list[str] = []
    have = [r for r in received if r.selected is not None]
    if len(have) > 1:
        first = have[0]
        for other in have[1:]:
            a, b = set(first.selected or ()), set(other.selected or ())
            if a != b:
                text = (f"shards {first.label} and {other.label} collected different items "
                        f"({len(a)} and {len(b)} selected)")
                if a - b:
                    text += f"; only on shard {first.label}:{_names(a - b)}"
                if b - a:
                    text += f"\n  only on shard {other.label}:{_names(b - a)}"
                problems.append(text)
    for r in have:
        ran, reported = set(r.ran or ()), set(r.reported)
        where = f"shard {r.label}" if r.label else "the remote session"
        if reported - ran:
            problems.append(f"{where} reported on items it did not collect:"
                            f"{_names(reported - ran)}")
        if ran - reported and ran_tests and finished(r.label):
            problems.append(f"{where} collected items it never reported on:"
                            f"{_names(ran - reported)}")
    return problems


def mismatch_report(message: str) -> pytest.CollectReport:
    """A failed collection report carrying the difference (xdist reports its diff this way)."""
    return pytest.CollectReport("", "failed", longrepr=f"pytest --modal: {message}", result=[])


def _untangle(data: dict[str, Any]) -> dict[str, Any]:
    """JSON has no tuples: a skip's ``longrepr`` (path, line, reason) and a ``location`` come
    back as lists, which junitxml and the terminal reject (xdist's execnet keeps tuples)."""
    data = dict(data)
    for key in ("longrepr", "location"):
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
    return data


def replay(config: pytest.Config, received: Received) -> None:
    """Fire this side's hooks with one container's reports, in the order they happened."""
    hook = config.hook
    started: set[str] = set()
    for record in received.records:
        report = hook.pytest_report_from_serializable(config=config,
                                                      data=_untangle(record["report"]))
        if record["kind"] == "collect":
            hook.pytest_collectreport(report=report)
            continue
        if report.nodeid not in started:
            started.add(report.nodeid)
            hook.pytest_runtest_logstart(nodeid=report.nodeid, location=report.location)
        hook.pytest_runtest_logreport(report=report)
        if report.when == "teardown":
            hook.pytest_runtest_logfinish(nodeid=report.nodeid, location=report.location)


class _Null(io.StringIO):
    def write(self, s: str) -> int:
        return len(s)


class ReplayPlugin:
    """Registered for the local session under --modal: collects nothing, runs the remote session
    in ``pytest_runtestloop`` and replays its reports. ``run`` returns the exit code and fills
    ``received``; ``after`` runs once this side's plugins have finished the session."""

    def __init__(self, run: Callable[[ReplayPlugin], int],
                 after: Callable[[], None]) -> None:
        self.run = run
        self.after = after
        self.exitstatus = 0
        self.received: list[Received] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Silence this side's terminal: the remote terminal, streamed live, says it all."""
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            from _pytest.config import create_terminal_writer

            tr._tw = create_terminal_writer(session.config, _Null())

    def pytest_internalerror(self, excrepr: Any) -> None:
        """The silenced terminal would swallow it: say it on stderr."""
        for line in str(excrepr).split("\n"):
            sys.stderr.write("INTERNALERROR> " + line + "\n")
        sys.stderr.flush()

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool:
        """Collect nothing: the remote session's reports are replayed instead."""
        return True  # nothing is collected here

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        """Run the remote session, replaying its reports here as they arrive."""
        self.exitstatus = self.run(self)
        if self.exitstatus == int(pytest.ExitCode.INTERRUPTED):
            # as if interrupted here: this side's terminal reporter expects the exception
            try:
                raise KeyboardInterrupt("the remote session was interrupted")
            except KeyboardInterrupt:
                session.config.hook.pytest_keyboard_interrupt(
                    excinfo=pytest.ExceptionInfo.from_current())
        session.testscollected = sum(len(r.ran or ()) for r in self.received)
        return True

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Bring the shards' files home once every plugin has finished."""
        self.after()
