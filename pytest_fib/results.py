"""Where finished outcomes go: the one record per case, and every output fed from it.

runner -> nodes -> **results** -> outputs. An item's outcome (``outcome.py``) is recorded here as it
finishes (:meth:`Results.record`); after each phase :func:`finished` feeds the consumers:

* FlashInfer-Trace lines (``--fib-traces``, ``traces.py``)
* pytest-benchmark (:func:`measured`, :func:`unmeasured`; the only caller of ``bench.py``'s feed)
* the xdist merge: a worker's records ride on its reports to the controller (:class:`XdistMerge`)
* the terminal summary and ``--fib-report`` read :attr:`FibSession.results` (``report.py``)

A new output format is one consumer here (called from :func:`finished` or read at the session's
end) plus its option in ``plugin.py``/``settings.py``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .cases import Case
from .keys import FIB_SESSION
from .outcome import TRACE_STATUSES, Outcome, Status, TimingInfo

if TYPE_CHECKING:
    from .nodes import FibItem
    from .session import FibSession


@dataclasses.dataclass
class Record:
    """What one case came to: its recorded status and the evidence outputs need."""

    case: Case
    status: str | None = None  # Status.recorded_as of its last verdict
    log: str = ""  # kept in the trace line and the report's failure list
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)  # max_abs, max_rel, ...
    timing: TimingInfo | None = None  # the timing summary (benchmark extra_info)
    samples_s: list[float] = dataclasses.field(default_factory=list)
    nodeid: str | None = None  # its correctness item's, for the report's failure list

    def wire(self) -> dict[str, Any]:
        """JSON-safe, for the xdist controller (no case, samples or log: they stay here)."""
        out: dict[str, Any] = {"key": self.case.key, **self.metrics}
        if self.status is not None:
            out["status"] = self.status
        if self.timing is not None:
            out["timing"] = self.timing
        return out


METRICS = ("max_abs", "max_rel", "matched_ratio")


class Results:
    """case key -> :class:`Record`, filled as items finish (one per pytest process)."""

    def __init__(self) -> None:
        self._records: dict[str, Record] = {}

    def __iter__(self) -> Iterator[Record]:
        return iter(self._records.values())

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: str) -> Record | None:
        return self._records.get(key)

    def _for(self, case: Case) -> Record:
        return self._records.setdefault(case.key, Record(case))

    def record(self, case: Case, outcome: Outcome) -> None:
        """Keep an outcome that is the solution's verdict (``Status.recorded_as``); a timing pass
        adds its timing to the case's record without changing its status."""
        status = outcome.status.recorded_as
        if status is None:
            return  # not the solution's verdict (an invalid file, the reference's error)
        rec = self._for(case)
        if outcome.status is Status.PASSED and outcome.timing is not None:
            rec.timing = outcome.timing
            rec.samples_s = outcome.samples_s
            rec.status = rec.status or "PASSED"
            return
        rec.status = status
        rec.log = outcome.log[-20000:]
        rec.metrics.update(outcome.metrics)

    def merge(self, case: Case, wire: dict[str, Any]) -> None:
        """A record a worker sent (:meth:`Record.wire`), into this process's."""
        rec = self._for(case)
        rec.status = wire.get("status", rec.status)
        rec.timing = wire.get("timing", rec.timing)
        rec.metrics.update({k: wire[k] for k in METRICS if k in wire})


def recorded(fib: FibSession, item: FibItem, produce: Any) -> Outcome:
    """Run ``produce`` (the runner's check) and record the outcome it returns or raises."""
    try:
        outcome: Outcome = produce()
    except BaseException as e:
        carried = getattr(e, "outcome", None)
        if isinstance(carried, Outcome):
            fib.results.record(item.case, carried)
        raise
    fib.results.record(item.case, outcome)
    return outcome


def measured(benchmark: Any, outcome: Outcome) -> None:
    """A timing pass's samples, as the item's pytest-benchmark benchmark."""
    from . import bench

    assert outcome.timing is not None
    bench.feed(benchmark, outcome.samples_s, outcome.timing["clock"], outcome.timing)


def unmeasured(benchmark: Any) -> None:
    """A timing item that ended before measuring (failed, skipped, resumed)."""
    from . import bench

    bench.not_measured(benchmark)


def finished(item: FibItem, rep: pytest.TestReport) -> None:
    """After each phase of an item: remember the correctness verdict, attach notes and reports,
    ship the record to the xdist controller, write the trace line."""
    fib = item.config.stash[FIB_SESSION]
    done = rep.when == "call" or (rep.when == "setup" and not rep.passed)
    if item.kind == "correctness" and done:
        message = str(rep.longrepr) if rep.longrepr is not None else ""
        fib.outcomes[item.case.key] = (rep.outcome, message)
    if rep.when != "call":
        return
    rec = fib.results.get(item.case.key) or Record(item.case)
    if item.kind == "correctness" and rec.nodeid is None:
        rec.nodeid = item.nodeid  # the report's failure list names the item
    # junit reads them from the teardown report, which pytest makes from the item's list
    props = junit_properties(item.kind, rec)
    item.user_properties.extend(props)
    rep.user_properties.extend(props)
    _sections(fib, item, rep)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _ship(item, rep, rec)
    if (fib.settings.traces is not None and rep.outcome in ("passed", "failed")
            and item.kind != "property"  # a property item has no workload of its own
            and item.resumed is None):  # already recorded
        _write_trace(fib, item, rep, rec)


def junit_properties(kind: str, rec: Record) -> list[tuple[str, object]]:
    """What --junitxml's <properties> carry (issue 18): the verdict's status and, for a timed
    item, latency, reference latency, speedup and the clock that measured them."""
    props: list[tuple[str, object]] = []
    if rec.status:
        props.append(("fib_status", rec.status))
    t = rec.timing
    if kind == "timing" and t is not None:
        props += [("fib_latency_ms", t["latency_ms"]),
                  ("fib_reference_latency_ms", t["reference_latency_ms"]),
                  ("fib_speedup", t["speedup"]), ("fib_clock", t["clock"])]
        if "judge_latency_ms" in t:  # --fib-clock=flashinfer-bench
            props += [("fib_judge_latency_ms", t["judge_latency_ms"]),
                      ("fib_judge_speedup", t.get("judge_speedup", 0.0))]
    return props


def _sections(fib: FibSession, item: FibItem, rep: pytest.TestReport) -> None:
    """The item's notes and its sanitizer/ncu report, as sections of its test report."""
    notes = fib.notes.get(item.case.key)
    if notes:
        rep.sections.append(("pytest-fib notes", "\n".join(notes)))
    report = fib.diagnostics.pop(item.case.key, None)
    if report:
        tool = fib.settings.sanitizer or "ncu"
        rep.sections.append((f"pytest-fib {tool} report", report))


def _ship(item: FibItem, rep: pytest.TestReport, rec: Record) -> None:
    """JSON-safe copies ride on the report to the xdist controller (:class:`XdistMerge`)."""
    rep.fib_result = rec.wire()  # type: ignore[attr-defined]
    if item.kind == "timing" and rep.passed and rec.timing is not None:
        rep.fib_benchmark = {  # type: ignore[attr-defined]
            "name": item.name, "fullname": item.nodeid, "extra_info": rec.timing,
            "samples_s": rec.samples_s, "clock": rec.timing["clock"]}


def _write_trace(fib: FibSession, item: FibItem, rep: pytest.TestReport, rec: Record) -> None:
    from .traces import TraceWriter, resume_key

    status = "PASSED" if rep.passed else (rec.status or "")
    if status not in TRACE_STATUSES:
        return  # not the solution's verdict (invalid file, reference error): no trace
    assert fib.settings.traces is not None
    if fib.traces is None:
        fib.traces = TraceWriter(fib.settings.traces, fib.settings.device)
    correctness = None
    if "max_abs" in rec.metrics:
        correctness = {"max_absolute_error": rec.metrics["max_abs"],
                       "max_relative_error": rec.metrics["max_rel"],
                       "extra": {"matched_ratio": rec.metrics.get("matched_ratio")}}
    performance = None
    if item.kind == "timing" and rep.passed and rec.timing is not None:
        t = rec.timing
        performance = {"latency_ms": t["latency_ms"],
                       "reference_latency_ms": t["reference_latency_ms"],
                       "speedup_factor": t["speedup"]}
    message = "" if rep.passed else str(rep.longrepr)  # what the item showed, for resume
    fib.traces.write(item.case, item.kind, status, rec.log if not rep.passed else "",
                     correctness, performance,
                     key=resume_key(item.case, item.kind, fib.settings), message=message,
                     seed=fib.settings.seed)


def merge_under_xdist(config: pytest.Config) -> None:
    """On the xdist controller: keep pytest-benchmark's outputs on, and merge what workers send."""
    from . import bench

    bench.enable_under_xdist_controller(config)
    config.pluginmanager.register(XdistMerge(config), "fib-xdist-benchmarks")


class XdistMerge:
    """Registered on the xdist controller only: records and timing samples that rode on a
    worker's report join the controller's results and benchmark session, so the summary,
    --fib-report and --benchmark-json/--benchmark-compare see every item."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Merge a worker's record and benchmark from its call report."""
        if report.when != "call":
            return
        payload = getattr(report, "fib_benchmark", None)
        if payload:
            from . import bench

            bench.add_from_report(self.config, payload)
        wire = getattr(report, "fib_result", None)
        fib = self.config.stash.get(FIB_SESSION, None)
        if wire and fib is not None:
            case = next((c for c in fib.cases if c.key == wire["key"]), None)
            if case is not None:
                fib.results.merge(case, wire)
