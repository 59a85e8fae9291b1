"""The collection tree: anchor folder -> definition -> solution -> correctness/timing items.

Node ids are a contract (``-k``, ``--lf``, benchmark comparison and the remote collection check use
them): ``kernels::rmsnorm_h4096::my_solution::correctness[batch_size=7-33bf737d]``.

Items are ``pytest.Function`` subclasses, not custom ``pytest.Item``s, because timing items request
pytest-benchmark's ``benchmark`` fixture (a custom Item cannot request fixtures: pytest #2471).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import results
from .cases import Case, safe, workload_id
from .dataset import DefinitionRec, Problem, SolutionRec, WorkloadRec
from .keys import FIB_SESSION
from .outcome import FibFailure, Outcome, Status, fail, of
from .session import FibSession, orphan_problem
from .traces import resume_key

if TYPE_CHECKING:
    from .runner import Runner


def _structured_id(node: pytest.Item) -> None:
    """pytest >= 9.2 keeps a structured id next to the node id string and --lf compares that
    one with the parsed string it stored: keep them the same for names with a [param] part."""
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # older pytest: the string id is all there is
        return
    node._id = NodeId.parse(str(node.nodeid))


def _fib(node: pytest.Item | pytest.Collector) -> FibSession:
    return node.config.stash[FIB_SESSION]


class FibSuite(pytest.Directory):
    """A folder that holds solutions (the kernels folder, or the dataset for its solutions).

    It collects like an ordinary directory (``pytest.Dir``, which is final: its loop is repeated
    in :meth:`_entries`) and adds one node per definition under test."""

    def __init__(self, *, origin: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.origin = origin

    @classmethod
    def from_parent(cls, parent: pytest.Collector, *, path: Path,  # type: ignore[override]
                    origin: str) -> FibSuite:
        """A folder outside the rootdir would get an empty node id; name it relative to the
        rootdir instead (``../data``), which is also what a user types to select it."""
        nodeid = None
        if parent.config.rootpath not in path.parents and path != parent.config.rootpath:
            nodeid = os.path.relpath(path, parent.config.rootpath)
        suite: FibSuite = super().from_parent(parent=parent, path=path, origin=origin,
                                              nodeid=nodeid)
        return suite

    def _mine(self, sol: SolutionRec) -> bool:
        return self.origin in ("all", sol.origin)

    def _entries(self) -> Iterable[pytest.Item | pytest.Collector]:
        """What ``pytest.Dir`` collects here: sub-folders and test files, by name."""
        ihook = self.ihook
        for entry in sorted(os.scandir(self.path), key=lambda e: e.name):
            path = Path(entry.path)
            if entry.is_dir():
                if not self.session.isinitpath(path, with_parents=True) and (
                        ihook.pytest_ignore_collect(collection_path=path, config=self.config)):
                    continue
                col = ihook.pytest_collect_directory(path=path, parent=self)
                if col is not None:
                    yield col
            elif entry.is_file():
                if not self.session.isinitpath(path) and ihook.pytest_ignore_collect(
                        collection_path=path, config=self.config):
                    continue
                yield from ihook.pytest_collect_file(file_path=path, parent=self)

    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        yield from self._entries()
        fib = _fib(self)
        for problem in self._problems(fib):
            name = f"load[{safe(self._rel(problem))}]"
            yield ProblemItem.from_parent(self, name=name, problem=problem, **self._child_id(name))
        for sol in fib.orphans:
            if self._mine(sol):
                name = f"load[{safe(sol.name)}]"
                yield ProblemItem.from_parent(self, name=name, problem=orphan_problem(fib, sol),
                                              **self._child_id(name))
        by_definition: dict[str, list[SolutionRec]] = {}
        for sol in fib.solutions:
            if self._mine(sol):
                by_definition.setdefault(sol.definition, []).append(sol)
        for name in sorted(by_definition):
            yield DefinitionNode.from_parent(self, name=name, solutions=by_definition[name],
                                             **self._child_id(name))

    def _child_id(self, name: str) -> dict[str, Any]:
        """A starter kit at the rootdir (issue 18): its ids start at the definition,
        ``rmsnorm_h4096::mine::correctness[...]``, not ``.::rmsnorm_h4096::...``."""
        if self.path != self.config.rootpath:
            return {}
        return {"nodeid": name}

    def _rel(self, problem: Problem) -> str:
        """The file relative to this anchor (stable across checkouts), with its line."""
        path = Path(problem.path)
        if path.is_absolute() and self.path in path.parents:
            path = path.relative_to(self.path)
        return f"{path}:{problem.line}" if problem.line else str(path)

    def _problems(self, fib: FibSession) -> list[Problem]:
        """Local problems under the kernels folder; dataset problems under the dataset anchor."""
        kernels = fib.settings.kernels

        def is_local(p: Problem) -> bool:
            return Path(p.path).is_absolute() and kernels in Path(p.path).parents
        if self.origin == "dataset":
            return [p for p in fib.problems if not is_local(p)]
        if self.origin == "local" and fib.settings.solutions == "all":
            return [p for p in fib.problems if is_local(p)]  # the dataset anchor shows the rest
        return list(fib.problems)  # local mode: the dataset's problems are this run's too


class DefinitionNode(pytest.Collector):
    """One definition under a suite: a node per solution of it."""

    def __init__(self, *, solutions: list[SolutionRec], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.solutions = solutions

    def collect(self) -> Iterable[pytest.Collector]:
        names: dict[str, int] = {}
        for sol in self.solutions:
            names[sol.name] = names.get(sol.name, 0) + 1
        for sol in self.solutions:
            name = safe(sol.name)
            if names[sol.name] > 1:  # same name, different content: keep ids unique and stable
                name = f"{name}@{sol.content_hash[:8]}"
            yield SolutionNode.from_parent(self, name=name, solution=sol)


class SolutionNode(pytest.Collector):
    """One solution: a correctness and a timing item per workload, and one property item."""

    def __init__(self, *, solution: SolutionRec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.solution = solution

    def collect(self) -> Iterable[pytest.Item]:
        fib = _fib(self)
        mine = [c for c in fib.cases if c.solution is self.solution]
        for case in mine:
            wid = workload_id(case.workload)
            for kind, func in (("correctness", correctness), ("timing", timing)):
                resumed = (fib.recorded.get(resume_key(case, kind, fib.settings))
                           if fib.recorded else None)
                yield FibItem.from_parent(self, name=f"{kind}[{wid}]", callobj=func,
                                          case=case, kind=kind, resumed=resumed)
        if mine:
            yield self._property_item(fib, mine)

    def _property_item(self, fib: FibSession, mine: list[Case]) -> FibItem:
        from . import properties

        definition = mine[0].definition
        workloads = [c.workload for c in mine]
        base = Case(definition, workloads[0], self.solution)
        budget = properties.GPU_BUDGET if fib.settings.device == "cuda" else properties.CPU_BUDGET
        blocked = properties.blocked_reason(definition, workloads)
        if blocked:
            base = Case(definition, workloads[0], self.solution, f"no property test: {blocked}")
            func: Any = _no_property
        else:
            func = _lazy_property(definition, workloads, budget, fib.settings.hypothesis_examples,
                                  fib.settings.seed)
            if self.solution.expect is not None:
                func = _judge_whole(func)  # self-test: judge the shrunk outcome, not each example
        return FibItem.from_parent(self, name="property", callobj=func, case=base,
                                   kind="property")

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return Path(self.solution.path), 0, self.name


class FibItem(pytest.Function):
    """One (definition, workload, solution) check: correctness or timing."""

    def __init__(self, *, case: Case, kind: str, resumed: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _structured_id(self)
        self.case = case
        self.kind = kind
        sol = case.solution
        for mark in ("fib", kind, case.definition.op_type, sol.language):
            self.add_marker(mark)
        # under pytest -n: a definition's items stay on one worker (one GPU), see distribute.py
        self.add_marker(pytest.mark.xdist_group(case.definition.name))
        if sol.needs_gpu:
            self.add_marker("gpu")
        # --fib-resume: what an earlier run recorded for exactly this case, reported again
        self.resumed = None if case.skip else resumed
        if case.skip:
            self.add_marker(pytest.mark.skip(reason=case.skip))

    def runtest(self) -> None:
        if self.resumed is None:
            super().runtest()
            return
        rec = self.resumed
        if "benchmark" in self.funcargs:  # not timed again: no "fixture was not used" warning
            results.unmeasured(self.funcargs["benchmark"])
        where = f"{self.config.stash[FIB_SESSION].settings.traces}/{rec['file']}"
        note = (f"recorded as {rec['status']} in {where} by an earlier run with the same "
                "solution, definition, workload, tolerances, seed and harness; not run again "
                "(--fib-resume)")
        if rec["status"] != "PASSED":
            raise fail(Status.RECORDED, f"{rec['message'] or rec['status']}\n({note})")
        self.add_report_section("call", "pytest-fib", note)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return Path(self.case.solution.path), 0, self.nodeid.split("::", 1)[-1]

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> Any:
        if isinstance(excinfo.value, FibFailure):
            # hypothesis adds the shrunk falsifying example (and how to reproduce) as notes
            notes = [n for n in getattr(excinfo.value, "__notes__", []) if "request=" not in n]
            notes += [f"Falsifying example: {n.split('axes=')[1].rstrip(',)')}"
                      for n in getattr(excinfo.value, "__notes__", []) if "axes=" in n]
            return "\n".join([str(excinfo.value), *notes])
        return super().repr_failure(excinfo)


def _runner(node: pytest.Item) -> Runner:
    """The session's runner, created (and its workers started) at the first item."""
    fib = _fib(node)
    if fib.runner is None:
        from .runner import Runner  # imports torch: only once the first item runs

        fib.runner = Runner(fib)
        fib.runner.plan([(i.case, i.kind) for i in node.session.items
                         if isinstance(i, FibItem) and i.resumed is None and not i.case.skip])
        fib.runner.prestart(timing=any(getattr(i, "kind", None) == "timing"
                                       for i in node.session.items))
    return fib.runner


def prestart(session: pytest.Session) -> None:
    """Once collection is over, start the workers of a session that will run items: their
    start-up (torch, CUDA contexts) then overlaps pytest's own until the first item."""
    if any(isinstance(i, FibItem) and i.resumed is None for i in session.items):
        _runner(session.items[0])


def _lazy_property(definition: DefinitionRec, workloads: list[WorkloadRec], budget: int,
                   examples: int, seed: int) -> Any:
    """The property item's test, made when it runs: hypothesis takes seconds to import, which a
    session that deselects every property item (``-m "correctness or timing"``) never pays, and
    which would otherwise delay every build (they start once collection ends)."""
    def property_test(request: pytest.FixtureRequest) -> None:
        """Correct on drawn shapes (hypothesis), not only on the listed workloads."""
        from . import properties

        properties.register_profile()
        properties.make_test(definition, workloads, budget, examples, seed,
                             _property_example)(request)

    return property_test


def _no_property(request: pytest.FixtureRequest) -> None:
    """Placeholder for a definition whose inputs cannot be drawn (always skipped)."""


def _property_example(item: FibItem, axes: dict[str, int]) -> None:
    fib = _fib(item)
    failed = [k for k, (outcome, _) in fib.outcomes.items()
              if outcome == "failed" and k.startswith(f"{item.case.definition.name}::"
                                                       f"{item.case.solution.name}::")]
    if failed:
        # Already wrong on a listed workload: more shapes add nothing (and a hanging or crashing
        # solution would cost a timeout per example while hypothesis shrinks).
        pytest.skip(f"{len(failed)} correctness item(s) of this solution failed: not "
                    "property-tested")
    _runner(item).property_example(item.case, axes)


def _judge_whole(hypothesis_test: Any) -> Any:
    def property_selftest(request: pytest.FixtureRequest) -> None:
        def run() -> Outcome:
            hypothesis_test(request)
            return Outcome(Status.PASSED)

        _judged(request.node, run)

    return property_selftest


def correctness(request: pytest.FixtureRequest) -> None:
    """Run the solution on fresh inputs and compare with the definition's reference."""
    item = request.node
    fib = _fib(item)
    _judged(item, lambda: results.recorded(fib, item, lambda: _runner(item).correctness(item.case)))


def _judged(item: FibItem, run: Callable[[], Outcome]) -> None:
    """Run an item; under --fib-selftest, invert it: an exploit passes only when the check meant
    for it (``[selftest] expect`` in its config.toml) catches it at the stage it targets."""
    expect = item.case.solution.expect
    if expect is None:
        run()
        return
    fib = _fib(item)
    if expect["gpu"] and fib.settings.device != "cuda":
        pytest.skip(f"self-test exploit {expect['expect']} needs a GPU")
    try:
        wanted = Status.named(expect["expect"])
    except KeyError:
        known = ", ".join(s.word for s in Status if s.recorded_as not in (None, "PASSED"))
        raise fail(Status.SELFTEST, f"SELFTEST: exploit {item.case.solution.name!r} expects "
                   f"{expect['expect']!r}, which is no status pytest-fib reports (the checks: "
                   f"{known}, SIDE_STREAM)") from None
    try:
        outcome = run()
        got, text = Status.PASSED, ""
        if item.kind == "timing" and wanted in Status.flagged(outcome.notes):
            got = wanted  # a timing note (SIDE_STREAM) flags what a pass hid
            text = next(n for n in outcome.notes if n.startswith(f"{wanted.word}:"))
    # hypothesis re-raises the shrunk example's failure (an AssertionError)
    except (FibFailure, pytest.skip.Exception, AssertionError) as e:
        got, text = of(e), str(e)
    stage = expect["stage"]
    if item.kind != stage:
        if got is wanted and item.kind == "correctness":
            fib.selftest.append((item.case.solution.name, expect, got.word, item.kind))
            return  # caught even earlier than intended: still caught by its check
        if item.kind == "correctness":
            if got is Status.PASSED:
                return  # behaves when not timed: its timing item is where it must be caught
            raise fail(Status.SELFTEST, f"SELFTEST: exploit {item.case.solution.name!r} was "
                       f"caught by {got.word} at {item.kind}, not by {wanted.word} at {stage}:"
                       f"\n{text}")
        pytest.skip(f"self-test: this exploit targets the {stage} check")
    if got is not wanted:
        raise fail(Status.SELFTEST, f"SELFTEST: exploit {item.case.solution.name!r} "
                   f"({expect['why']}) was NOT caught by {wanted.word}; the harness said "
                   f"{got.word}:\n{text}")
    fib.selftest.append((item.case.solution.name, expect, got.word, item.kind))


def timing(request: pytest.FixtureRequest, benchmark: Any) -> None:
    """Time the solution (device time on a GPU, host clock on a CPU) after it passed correctness."""
    item = request.node
    fib = _fib(item)
    outcome = fib.outcomes.get(item.case.key)
    # Not run in this process (deselected, or on another xdist worker): time it anyway -- the
    # outputs of the timed calls are checked against the reference, so a wrong kernel still fails.
    before = fib.recorded.get(resume_key(item.case, "correctness", fib.settings))
    passed_before = before is not None and before["status"] == "PASSED"
    if outcome is not None and outcome[0] != "passed" and not passed_before:
        pytest.skip(f"correctness {outcome[0]}: not timed")
    if fib.settings.device == "cpu" and not fib.settings.host_timing:
        pytest.skip("timing needs a GPU: on the CPU the host clock would time Triton's "
                    "interpreter, not the kernel (--fib-device=cpu times it anyway)")
    _judged(item, lambda: _timed(fib, item, benchmark))


def _timed(fib: FibSession, item: FibItem, benchmark: Any) -> Outcome:
    """The timing check, recorded; its samples become the item's pytest-benchmark benchmark."""
    try:
        outcome = results.recorded(fib, item, lambda: _runner(item).timing(item.case))
    except BaseException:
        results.unmeasured(benchmark)
        raise
    results.measured(benchmark, outcome)
    return outcome


class ProblemItem(pytest.Item):
    """A file that cannot be used: fails (broken) or skips (valid for a newer schema)."""

    def __init__(self, *, problem: Problem, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _structured_id(self)
        self.problem = problem
        self.add_marker("fib")

    def runtest(self) -> None:
        text = f"{self.problem.where}: {self.problem.message}"
        if self.problem.kind == "unsupported":
            pytest.skip(f"not loadable by flashinfer-bench 0.1.2 (newer schema): {text}")
        raise fail(Status.INVALID_FILE, text)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> Any:
        if isinstance(excinfo.value, (FibFailure, pytest.skip.Exception)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return Path(self.problem.path), (self.problem.line or 1) - 1, self.name
