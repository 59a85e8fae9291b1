"""Controller side of an item: reference, worker call, verdict.

It returns an :class:`~pytest_fib.outcome.Outcome` (a pass) or raises one (``outcome.py``) and does
nothing else: recording and every output are ``results.py``'s, hints ``hints.py``'s, sanitizer
commands ``diagnostics.py``'s.

Runs in the pytest process, which never executes solution code: the reference and the inputs the
verdict depends on are computed here (bit-identical to the worker's, see ``inputs.py``) and the
worker only sends back what the solution produced (``transfer.py``), and whether it changed its
inputs (compared in the worker, on the device, with guarded functions). Imports torch (first
item only).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from . import check, convention, sampling, transfer
from .cases import Case
from .diagnostics import diagnostic_wrapper, sanitizer_errors
from .hints import binding_hint, dps_hint, returned_hint
from .inputs import (
    WorkloadError,
    check_workload,
    load_blobs,
    make_inputs,
    timed_cycles,
    trial_seed,
)
from .memo import Memo
from .models import InvalidFile, validate
from .outcome import CompiledOnly, FibFailure, FibSkip, Outcome, Status, TimingInfo, fail
from .pool import Pool, WorkerLost
from .protocol import Reply, Request
from .session import FibSession


class Runner:
    """One per session, created at the first item: the workers and what items share."""

    def __init__(self, fib: FibSession) -> None:
        self.fib = fib
        self.settings = fib.settings
        self.device = "cuda" if self.settings.device == "cuda" else "cpu"
        self.log_dir = Path(tempfile.mkdtemp(prefix="pytest-fib-"))
        self.pool = Pool(self.device, self.log_dir, diagnostic_wrapper(self.settings))
        self.ref_pool = Pool(self.device, self.log_dir)  # trusted reference code, timed apart
        # (definition, workload uuid, seed) -> (inputs, reference outputs), and with the timed
        # calls' perturbation cycles -> the reference outputs the timed outputs are checked
        # against: every solution of a definition shares them (memo.py)
        self._refs = Memo(REFERENCE_MEMO_BYTES)
        self._ref_times: dict[tuple[str, str], Any] = {}
        self._upcoming: list[tuple[Case, str]] = []  # plan()
        self._ahead: dict[int, Iterator[bool]] = {}  # per solution: reference_ahead()
        self._ref_judged: dict[tuple[str, str], float | str] = {}  # --fib-clock=flashinfer-bench
        self._null: dict[tuple[Any, ...], str | None] = {}
        self._profiled: set[tuple[str, str]] = set()  # --fib-ncu: (solution, workload) done
        self.transfer = "ipc"  # outputs by CUDA IPC on a GPU (transfer.py); "host" after a failure

    def plan(self, items: list[tuple[Case, str]]) -> None:
        """The session's items in the order they will run: (case, kind)."""
        self._upcoming = items

    def reference_ahead(self, case: Case) -> Iterator[bool]:
        """The reference's work for the items of this case's solution (its own first), one
        worker call a step: done while its build runs, instead of after (the edit-one-kernel
        loop, docs/performance.md). It stops at the first item it cannot prepare (the item then
        reports why) and when the memo could not keep more."""
        mine = [(c, k) for c, k in self._upcoming if c.solution.raw is case.solution.raw]
        for item, kind in sorted(mine, key=lambda ck: ck[0] is not case):
            if self._refs.full():
                return
            try:
                definition, workload = self.models(item)
                if kind == "correctness":
                    tol = self.settings.tolerance_for(item.definition.name,
                                                      item.definition.op_type)
                    seeds = self.seeds(item, tol.trials)
                    if self.device == "cpu" and item.solution.needs_gpu:
                        seeds = seeds[:1]  # compiled only here: the item checks one trial's
                    for seed in seeds:
                        self.reference(item, definition, workload, seed)
                        yield True
                elif kind == "timing" and self.device == "cuda":  # a host clock: not while
                    self.reference_timing(item, definition, workload,  # a build loads the CPU
                                          self.timing_seeds(item))
                    yield True
            except KeyboardInterrupt:
                raise
            except BaseException:  # noqa: BLE001 -- a failure or skip: the item reports it
                return

    def prestart(self, timing: bool) -> None:
        """Start the workers the session will need, without waiting: on a GPU the reference
        timer's start-up (torch, a CUDA context, CUPTI) then overlaps the first items' builds."""
        for pool in (self.pool, self.ref_pool):
            pool.warm_profiler = timing
        self.pool.start()
        if timing and self.device == "cuda":  # on a CPU its imports would skew host-clock times
            self.ref_pool.start()

    def close(self) -> None:
        """Stop both pools and remove the worker logs and the solutions' working folders."""
        for pool in (self.pool, self.ref_pool):
            pool.stop()  # killed, not waited for: seconds of CUDA teardown off the session
        # Worker logs go; what a failed item's worker printed stays in failed/, which its
        # failure message names (pool.WorkerProcess.keep_log).
        kept = self.log_dir / "failed"
        if kept.is_dir() and any(kept.iterdir()):
            for log in self.log_dir.glob("worker-*.log"):
                log.unlink(missing_ok=True)
            shutil.rmtree(self.log_dir / "homes", ignore_errors=True)
        else:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    # -- shared pieces -------------------------------------------------------------------------

    def models(self, case: Case) -> tuple[Any, Any]:
        """The case's definition and workload as flashinfer-bench models, checked."""
        try:
            definition = validate("definition", case.definition.raw, case.definition.path)
            workload = validate("workload", case.workload.raw,
                                f"{case.workload.path}:{case.workload.line}")
            validate("solution", case.solution.raw, case.solution.path)
        except InvalidFile as e:
            raise fail(Status.INVALID_FILE, f"INVALID_FILE\n{e}") from None
        try:  # the workload's own faults are its own, before any solution is blamed for them
            check_workload(definition, workload)
            load_blobs(definition, workload, str(self.settings.dataset), self.device)
        except WorkloadError as e:
            where = f"{case.workload.path}:{case.workload.line}"
            if e.missing:
                pytest.skip(f"{e} (workload {where})")
            raise fail(Status.INVALID_WORKLOAD,
                       f"INVALID_WORKLOAD: {where} (workload {case.workload.uuid}): {e}") from None
        return definition, workload

    def seeds(self, case: Case, trials: int) -> list[int]:
        """One input seed per correctness trial."""
        return [trial_seed(self.settings.seed, case.definition.name, case.workload.uuid, t)
                for t in range(trials)]

    def reference(self, case: Case, definition: Any, workload: Any,
                  seed: int) -> tuple[list[Any], list[Any]]:
        """One trial's inputs (made here too: the checks need them) and the reference's outputs
        on them (computed in a worker, reference.py)."""
        key = (case.definition.name, case.workload.uuid, seed)
        found = self._refs.get(key)
        if found is not None:
            return cast(tuple[list[Any], list[Any]], found)
        inputs = make_inputs(definition, workload, self.device, seed, str(self.settings.dataset))
        resp = self.reference_call(case, seed)
        outputs = [transfer.unpack(o) for o in resp["outputs"]]
        self._refs.put(key, (inputs, outputs))
        return inputs, outputs

    def reference_call(self, case: Case, seed: int, **extra: Any) -> Reply:
        """The reference run by a worker under --fib-timeout: a hang is a TIMEOUT, an exception
        or a dead process a REFERENCE_ERROR, on this item only; the session goes on."""
        req = cast(Request, {
            "op": "reference", "definition": case.definition.raw,
            "workload": case.workload.raw, "root": str(self.settings.dataset),
            "where": {"definition": case.definition.path,
                      "workload": f"{case.workload.path}:{case.workload.line}"},
            "device": self.device, "seed": seed,
            "transfer": "host" if self.refs_pool.wrapper else self.transfer, **extra})
        where = (f"{case.definition.path}; workload {case.workload.path}:"
                 f"{case.workload.line}")
        try:
            resp = self.refs_pool.call(req, self.settings.timeout)
        except WorkerLost as e:
            status = (Status.REFERENCE_TIMEOUT if "timed out" in str(e)
                      else Status.REFERENCE_ERROR)
            raise fail(status, f"{status.word}: the definition's reference ({where}) did not "
                               f"finish: {e}") from None
        if resp["status"] == "reference_error":
            raise fail(Status.REFERENCE_ERROR, f"REFERENCE_ERROR: the definition's reference "
                                               f"failed on this workload ({where}): "
                                               f"{resp['message']}") from None
        if resp["status"] == "invalid":
            raise fail(Status.INVALID_FILE, f"INVALID_FILE\n{resp['message']}")
        if resp["status"] != "ok":
            raise worker_error(resp)
        return resp

    @property
    def refs_pool(self) -> Pool:
        """References share the solutions' worker (a child of their own there), except under a
        diagnostic tool, whose one-shot worker is for the solution alone."""
        return self.ref_pool if self.pool.wrapper else self.pool

    def request(self, op: str, case: Case, seeds: list[int], **extra: Any) -> Request:
        """A request to run the case's solution (``op``: correctness or timing)."""
        if self.fib.builds is not None:  # the build pool may be building it now (buildcache.py)
            key = id(case.solution.raw)
            if key not in self._ahead:  # one generator per solution, made on its first request
                self._ahead[key] = self.reference_ahead(case)
            ahead = self._ahead[key]
            self.fib.builds.wait(case.solution.raw, idle=lambda: next(ahead, None) is not None)
        return cast(Request, {  # op and **extra: the worker checks them
            "op": op, "definition": case.definition.raw, "workload": case.workload.raw,
            "solution": self.as_called(case), "root": str(self.settings.dataset),
            "where": {"definition": case.definition.path,
                      "workload": f"{case.workload.path}:{case.workload.line}",
                      "solution": case.solution.path},
            "device": self.device, "needs_gpu": case.solution.needs_gpu, "seeds": seeds,
            # A one-shot worker (sanitizer, ncu) exits after answering: nothing it shared survives.
            "transfer": "host" if self.pool.wrapper else self.transfer, **extra,
        })

    def convention(self, case: Case) -> convention.Convention:
        """How the solution is called (destination-passing or value-returning), and why."""
        raw = case.definition.raw
        return convention.decide(case.solution.raw, len(raw["inputs"]), len(raw["outputs"]),
                                 self.settings.strict_spec)

    def as_called(self, case: Case) -> dict[str, Any]:
        """The Solution JSON with the calling convention it is called with; when the file does
        not declare one, the item's output says which was used and why."""
        how = self.convention(case)
        if not how.note:
            return case.solution.raw
        self.note(case, f"calling convention: {how.note}")
        spec = {**case.solution.raw["spec"], "destination_passing_style": how.dps}
        return {**case.solution.raw, "spec": spec}

    def note(self, case: Case, text: str) -> None:
        """A line for the item's output (once), besides its verdict."""
        notes = self.fib.notes.setdefault(case.key, [])
        if text not in notes:
            notes.append(text)

    def called_as(self, case: Case) -> str:
        """The item's notes, for its failure message."""
        return "".join(f"\nNote: {n}" for n in self.fib.notes.get(case.key, []))

    def call(self, request: Request, case: Case) -> Reply:
        """The solution's worker answer, or the verdict it already is (raised)."""
        try:
            resp = self.pool.call(request, self.settings.timeout)
        except WorkerLost as e:
            status = Status.TIMEOUT if "timed out" in str(e) else Status.RUNTIME_ERROR
            raise fail(status, f"{status.word}: {e}", log=str(e)) from None
        if "diagnostics" in resp:
            self.diagnose(case, resp["diagnostics"])
        answer = resp["status"]
        if answer == "build_error":
            from .compiler_output import build_error_text

            text = (f"COMPILE_ERROR: {case.solution.name} ({case.solution.path}) did not build:\n"
                    f"{build_error_text(case.solution, resp['message'], resp['errors'])}"
                    f"{binding_hint(case)}")
            raise fail(Status.COMPILE_ERROR, text, log=text)
        if answer == "compiled":
            took = resp.get("build_seconds", 0)
            raise CompiledOnly(Outcome(Status.COMPILED, f"{case.solution.language} solution "
                                       "compiled OK " + (f"({took:.1f} s)" if took >= 0.05
                                                         else "(cached build)")))
        if answer == "unavailable":
            pytest.skip(f"compile check not possible here: {resp['message']}")
        if answer == "needs_package":
            pytest.skip(f"{resp['message']} ({case.solution.path})")
        if answer == "needs_gpu":
            pytest.skip(f"solution needs a CUDA GPU at run time: {resp['message']}")
        if answer == "invalid":
            raise fail(Status.INVALID_FILE, f"INVALID_FILE\n{resp['message']}")
        if answer == "runtime_error":
            hint = dps_hint(case, resp["message"]) if self.convention(case).dps else ""
            text = (f"RUNTIME_ERROR: {resp['message']}{hint}{self.called_as(case)}\n"
                    f"{resp.get('traceback', '')}\n--- worker output ---\n{resp.get('log', '')}"
                    ).strip()
            raise fail(Status.RUNTIME_ERROR, text, log=text)
        if answer != "ok":
            raise worker_error(resp)
        return self.received(request, resp, case)

    def received(self, request: Request, resp: Reply, case: Case) -> Reply:
        """The response with this process's own copies of the outputs the worker shared by CUDA
        IPC. Should mapping them fail here, the request runs again with host copies, and so does
        every later one (slower, never wrong). A tampered worker's answer is void and its process
        gone: nothing to copy."""
        if resp.get("tampered"):
            return resp
        try:
            parts: list[Any] = [*resp.get("trials", []), *resp.get("checked", {}).values()]
            for part in parts:
                part["outputs"] = [transfer.unpack(o) for o in part["outputs"]]
            if resp.get("draws") is not None:
                resp["draws"] = transfer.unpack(resp["draws"])
        except Exception as e:  # any failure to map: fall back, say so once
            if request.get("transfer") == "host":
                raise
            self.transfer = "host"
            sys.stderr.write(f"pytest-fib: CUDA IPC from the worker failed ({type(e).__name__}: "
                             f"{e}); outputs now travel through host memory\n")
            return self.call({**request, "transfer": "host"}, case)
        return resp

    def diagnose(self, case: Case, report: str) -> None:
        """Attach a sanitizer/ncu report to the item; sanitizer errors fail it."""
        self.fib.diagnostics[case.key] = report
        if self.settings.sanitizer:
            errors = sanitizer_errors(report)
            if errors:
                raise fail(Status.SANITIZER, f"SANITIZER ({self.settings.sanitizer}): {errors} "
                                             f"error(s) reported:\n{report}", log=report)

    # -- correctness ---------------------------------------------------------------------------

    def property_example(self, case: Case, axes: dict[str, int]) -> None:
        """One hypothesis example: the solution on drawn axes, one trial, judged as usual."""
        from hypothesis import reject

        from .properties import synthetic_workload

        tag = "-".join(f"{k}{v}" for k, v in sorted(axes.items()))
        drawn = Case(case.definition, synthetic_workload(case.workload, axes, tag), case.solution)
        try:
            self.correctness(drawn, trials=1)
        except FibSkip as e:
            if e.outcome.status is Status.NOT_DISCRIMINATIVE:
                return  # this shape cannot discriminate: nothing learned, not a failure
            raise
        except FibFailure as e:
            if e.outcome.status is Status.REFERENCE_ERROR:
                reject()  # axes the constraints allow but the reference refuses: not a case
            raise

    def profile(self, case: Case) -> None:
        """--fib-ncu: the solution's kernels on this workload under Nsight Compute, once per
        solution x workload, in a one-shot worker of its own (ncu.py); the per-kernel table
        becomes the item's "pytest-fib ncu report" section. The item's own checks and timing
        run outside ncu, as always."""
        pair = (case.solution.path, case.workload.uuid)
        if not self.settings.ncu or pair in self._profiled:
            return
        self._profiled.add(pair)
        from . import ncu

        folder = self.settings.ncu_dir or Path(".pytest-fib", "ncu")
        folder.mkdir(parents=True, exist_ok=True)
        report = ncu.report_path(folder, f"{case.definition.name}-{case.solution.name}-"
                                         f"{case.workload.uuid[:8]}")
        exe = ncu.executable() or "ncu"
        pool = Pool(self.device, self.log_dir, ncu.command(self.settings.ncu, report, exe))
        req = self.request("profile", case, self.seeds(case, 1), transfer="host")
        try:
            resp = pool.call(req, max(self.settings.timeout, 300))
            if resp["status"] != "ok":
                text = (f"not profiled: the solution's run under ncu ended with "
                        f"{resp['status']}: {resp.get('message', '')}")
            else:
                text = ncu.table(ncu.kernels(ncu.read_back(Path(f"{report}.ncu-rep"), exe)),
                                 Path(f"{report}.ncu-rep"))
        except (WorkerLost, RuntimeError, OSError) as e:
            text = f"not profiled: ncu failed: {e}"
        finally:
            pool.close()
        self.fib.diagnostics[case.key] = text

    def correctness(self, case: Case, trials: int | None = None) -> Outcome:
        """The solution on fresh inputs against the reference: PASSED, or the failure raised."""
        self.profile(case)
        definition, workload = self.models(case)
        tol = self.settings.tolerance_for(case.definition.name, case.definition.op_type)
        required = tol.matched_ratio or check.default_matched_ratio(case.definition.name)
        seeds = self.seeds(case, trials or tol.trials)
        # The reference first: a workload it cannot run (an index out of range, say) is the
        # workload's fault, reported before any solution is blamed for it.
        self.reference(case, definition, workload, seeds[0])
        plan = self.draw_plan(case, definition, workload, seeds[0])
        extra: dict[str, Any] = {"draws": dataclasses.asdict(plan)} if plan else {}
        try:
            resp = self.call(self.request("correctness", case, seeds, **extra), case)
        except CompiledOnly as e:
            # Nothing to run it on here; the workload and its reference still are checked.
            self.reference(case, definition, workload, seeds[0])
            raise FibSkip(dataclasses.replace(e.outcome, message=(
                f"{e.outcome.message}; the reference ran on these inputs; running the solution "
                "needs a CUDA GPU"))) from None
        if resp.get("tampered"):
            raise fail(Status.HARNESS_TAMPERED, "HARNESS_TAMPERED: the solution replaced "
                       "functions the harness checks its inputs and outputs with: "
                       f"{', '.join(resp['tampered'])}. The verdict is void.",
                       log="harness tampering")
        names = list(case.definition.raw["outputs"])
        rules = check.rules_for(case.definition.raw)
        worst = check.Verdict("PASSED")
        for t, (seed, trial) in enumerate(zip(seeds, resp["trials"], strict=False)):
            inputs, refs = self.reference(case, definition, workload, seed)
            if trial["mutated"]:
                raise fail(Status.INPUT_MUTATED, f"INPUT_MUTATED (trial {t + 1} of {len(seeds)}): "
                                                 f"{trial['mutated']}", log=trial["mutated"])
            verdict = check.compare_outputs(names, trial["outputs"], refs, tol.atol, tol.rtol,
                                            required, rules)
            if verdict.passed and plan:
                verdict = sampling.check_samples(case.definition.name, list(definition.inputs),
                                                 inputs, trial["outputs"][rules.index(
                                                     check.SAMPLES)])
            if not verdict.passed:
                hint = returned_hint(case) if trial.get("returned") else ""
                raise fail(Status[verdict.status],
                           f"{verdict.status} (trial {t + 1} of {len(seeds)}, "
                           f"--fib-seed={self.settings.seed}):\n{verdict.message}{hint}"
                           f"{self.called_as(case)}", log=verdict.message,
                           max_abs=verdict.max_abs, max_rel=verdict.max_rel)
            worst = check.Verdict("PASSED", max_abs=max(worst.max_abs, verdict.max_abs),
                                  max_rel=max(worst.max_rel, verdict.max_rel),
                                  matched_ratio=min(worst.matched_ratio, verdict.matched_ratio))
        if plan:
            verdict = self.distribution(case, definition, workload, seeds[0], plan, resp["draws"])
            if not verdict.passed:
                raise fail(Status[verdict.status], f"{verdict.status} "
                           f"(--fib-seed={self.settings.seed}):\n{verdict.message}",
                           log=verdict.message)
            worst = verdict
        passed = Outcome(Status.PASSED, log=resp.get("log", ""), metrics={
            "max_abs": worst.max_abs, "max_rel": worst.max_rel,
            "matched_ratio": worst.matched_ratio})
        if plan:
            return passed  # a sampler's distribution check discriminates by construction
        null = self.null_candidate(case, definition, workload, seeds[0], tol.atol, tol.rtol,
                                   required)
        if null:
            raise FibSkip(dataclasses.replace(
                passed, status=Status.NOT_DISCRIMINATIVE,
                message=f"NOT_DISCRIMINATIVE: {null} passes the tolerance on this workload too "
                        f"(atol={tol.atol:g}, rtol={tol.rtol:g}), so a pass means nothing here. "
                        "Tighten the tolerance for this definition (ini fib_tolerances) or use "
                        "inputs with larger outputs."))
        return passed

    def draw_plan(self, case: Case, definition: Any, workload: Any,
                  seed: int) -> sampling.DrawPlan | None:
        """For a sampling operator: how to draw enough samples to judge its distribution."""
        if not sampling.is_sampling(case.definition.raw):
            return None
        inputs, _ = self.reference(case, definition, workload, seed)
        batch, vocab = sampling.batch_and_vocab(list(definition.inputs), inputs)
        return sampling.DrawPlan.for_inputs(batch, vocab, self.device,
                                            sampling.exact_expected(case.definition.raw))

    def distribution(self, case: Case, definition: Any, workload: Any, seed: int,
                     plan: sampling.DrawPlan, draws: Any) -> check.Verdict:
        """The solution's sample frequencies against the expected distribution: the renormalised
        top-k probabilities where that is exact, else the reference's own frequencies over as
        many draws (sampling.py says why)."""

        names = list(definition.inputs)
        inputs, _ = self.reference(case, definition, workload, seed)
        batch, vocab = sampling.batch_and_vocab(names, inputs)
        if draws is None or draws.numel() % (plan.calls * batch * plan.repeat):
            return check.Verdict("INCORRECT_SHAPE", "the samples drawn on the repeated batch do "
                                 "not have one row per input row")
        # every draw, not only the trials' few samples, must be a token the filter allows
        per_row = draws.reshape(plan.calls * plan.repeat, batch, -1).transpose(0, 1)
        allowed = sampling.check_samples(case.definition.name, names, inputs,
                                         per_row.reshape(batch, -1))
        if not allowed.passed:
            return allowed
        observed = sampling.frequencies(list(draws), batch, vocab)
        if sampling.exact_expected(case.definition.raw):
            expected = sampling.expected_distribution(case.definition.name, names, inputs)
        else:
            resp = self.reference_call(case, seed, draws=dataclasses.asdict(plan))
            expected = sampling.frequencies(list(transfer.unpack(resp["draws"])), batch, vocab)
        exact = sampling.exact_expected(case.definition.raw)
        verdict = sampling.judge_distribution(observed, expected, plan.repeat * plan.calls, exact)
        if verdict.passed and verdict.message:
            self.note(case, verdict.message)
        return verdict

    def null_candidate(self, case: Case, definition: Any, workload: Any, seed: int, atol: float,
                       rtol: float, required: float) -> str | None:
        """Would a null candidate pass here? An all-zeros output, or an input echoed back as the
        output (KernelBench #165: outputs so small that zeros pass). Once per workload."""
        key = (case.definition.name, case.workload.uuid, atol, rtol, required)
        if key not in self._null:
            import torch

            inputs, refs = self.reference(case, definition, workload, seed)
            names = list(case.definition.raw["outputs"])
            found = None
            zeros = [torch.zeros_like(r) for r in refs]
            rules = check.rules_for(case.definition.raw)
            if check.compare_outputs(names, zeros, refs, atol, rtol, required, rules).passed:
                found = "an all-zeros output"
            echo = [next((i for i in inputs if isinstance(i, torch.Tensor)
                          and i.shape == r.shape and i.dtype == r.dtype), None) for r in refs]
            if found is None and all(e is not None for e in echo) and check.compare_outputs(
                    names, echo, refs, atol, rtol, required, rules).passed:
                found = "the input echoed back as the output"
            self._null[key] = found
        return self._null[key]

    # -- timing --------------------------------------------------------------------------------

    def timing(self, case: Case) -> Outcome:
        """The solution timed, its timed outputs checked: PASSED with the timing summary and
        samples, or the failure raised."""
        self.profile(case)
        try:
            return self._timing(case)
        except CompiledOnly as e:
            raise FibSkip(dataclasses.replace(e.outcome, message=(
                f"{e.outcome.message}; timing it needs a CUDA GPU"))) from None

    def _timing(self, case: Case) -> Outcome:
        from . import timing

        definition, workload = self.models(case)
        tol = self.settings.tolerance_for(case.definition.name, case.definition.op_type)
        required = tol.matched_ratio or check.default_matched_ratio(case.definition.name)
        seeds = self.timing_seeds(case)
        per_set = max(1, case.definition.nbytes(case.workload.axes))
        recheck = recheck_sets(len(seeds), self.settings.warmup, self.settings.iterations,
                               limit=max(1, min(16, RECHECK_BYTES // per_set)))
        baseline = self.fib.baseline_for(case)
        extra: dict[str, Any] = {}
        if baseline is not None:
            extra = {"baseline": baseline.raw}
        req = self.request("timing", case, seeds, warmup=self.settings.warmup,
                           iterations=self.settings.iterations, recheck=recheck, **extra)
        if baseline is not None:
            req["where"]["baseline"] = baseline.path
        if self.settings.judge_clock:
            req["judge"] = True
        resp, parts = self.timed_call(req, case)
        names = list(case.definition.raw["outputs"])
        checked = resp.get("checked", {})
        expected = self.perturbed_references(case, [
            (seeds[k], timed_cycles(k, len(seeds), self.settings.iterations)) for k in checked])
        for produced, refs in zip(checked.values(), expected, strict=True):
            verdict = check.compare_outputs(names, produced["outputs"], refs, tol.atol, tol.rtol,
                                            required, check.rules_for(case.definition.raw))
            mutated = produced["mutated"]
            if not verdict.passed or mutated:
                raise fail(
                    Status.TIMED_OUTPUT_WRONG,
                    "TIMED_OUTPUT_WRONG: the outputs of the timed calls do not match the reference "
                    "(the correctness item passed: does the solution behave differently when it "
                    f"is timed, or reuse stale results?):\n{verdict.message or mutated}",
                    log=verdict.message or str(mutated))
        m = parts[0]
        ref_m = self.reference_timing(case, definition, workload, seeds)
        info = self.timing_info(case, m, ref_m)
        if self.settings.judge_clock:
            self.judge_info(info, judged(resp), self._ref_judged.get(
                (case.definition.name, case.workload.uuid)))
        if len(parts) > 1 and parts[1].samples_s and baseline is not None:
            point, lo, hi = timing.ratio_ci(parts[1].samples_s, m.samples_s)
            info["baseline"] = baseline.name
            info["speedup_vs_baseline"] = point
            info["speedup_vs_baseline_ci95"] = [lo, hi]
            info["baseline_latency_ms"] = timing.summarize(parts[1].samples_s)["median_ms"]
        peak = info.get("peak_bandwidth_GBps")
        if peak and info["achieved_GBps"] > 1.05 * peak:
            raise fail(
                Status.IMPLAUSIBLE_TIME,
                f"IMPLAUSIBLE_TIME: {info['latency_ms'] * 1e3:.2f} us for {info['bytes']} bytes "
                f"is {info['achieved_GBps']:.0f} GB/s, above the GPU's peak memory bandwidth "
                f"({peak:.0f} GB/s): the kernel cannot have read its inputs and written its "
                "outputs. Timing something other than the computation?", log="implausible time")
        return Outcome(Status.PASSED, timing=info, samples_s=list(m.samples_s),
                       notes=list(m.notes))

    def timed_call(self, req: Request, case: Case) -> tuple[Reply, list[Any]]:
        """The worker's timing answer and its measurements, computed here from the raw records."""
        def send() -> Reply:
            resp = self.call(req, case)
            if resp.get("tampered"):
                raise fail(Status.TIMER_TAMPERED, "TIMER_TAMPERED: the solution replaced timing "
                           f"functions the harness relies on: {', '.join(resp['tampered'])}. "
                           "The time is void.", log="timer tampering")
            return resp

        return resolved(req, send)

    def perturbed_references(self, case: Case, jobs: list[tuple[int, list[int]]]
                             ) -> list[list[Any]]:
        """For each (seed, cycles): the reference's outputs on the inputs as the worker left them
        after the timed calls' perturbations (one request for all)."""
        keys = [(case.definition.name, case.workload.uuid, seed, tuple(cycles))
                for seed, cycles in jobs]
        found = [self._refs.get(key) for key in keys]
        missing = [job for job, got in zip(jobs, found, strict=True) if got is None]
        if missing:
            resp = self.reference_call(case, missing[0][0], batch=missing)
            fresh = iter([[transfer.unpack(o) for o in outputs] for outputs in resp["batch"]])
            for k, got in enumerate(found):
                if got is None:
                    found[k] = next(fresh)
                    self._refs.put(keys[k], found[k])
        return cast(list[list[Any]], found)

    def timing_seeds(self, case: Case) -> list[int]:
        """Distinct input sets, rotated over the timed calls (every call distinct when they fit),
        so neither caches nor a replay of an earlier answer can serve a timed call."""
        per_set = max(1, case.definition.nbytes(case.workload.axes))
        budget = 2 * 2**30 if self.device == "cuda" else 64 * 2**20
        n = max(2, min(self.settings.iterations, budget // per_set, 128))
        return [trial_seed(self.settings.seed, case.definition.name, case.workload.uuid, 1000 + k)
                for k in range(n)]

    def reference_timing(self, case: Case, definition: Any, workload: Any,
                         seeds: list[int]) -> Any:
        """The definition's reference timed the same way, on the same inputs, in this process
        (reference code is trusted). Cached per workload: every solution shares it."""
        key = (case.definition.name, case.workload.uuid)
        if key in self._ref_times:
            return self._ref_times[key]
        # In its own worker: the profiler never runs in this process (CUPTI teardown at exit is
        # not always clean), and no solution code ever shares a process with the reference.
        req: Request = {"op": "time_reference", "definition": case.definition.raw,
               "workload": case.workload.raw, "root": str(self.settings.dataset),
               "where": {"definition": case.definition.path,
                         "workload": f"{case.workload.path}:{case.workload.line}"},
               "device": self.device, "seeds": seeds[: min(len(seeds), 8)],
               "warmup": self.settings.warmup,
               "iterations": max(3, self.settings.iterations // 2)}
        if self.settings.judge_clock:
            req["judge"] = True

        def send() -> Reply:
            try:
                resp = self.ref_pool.call(req, self.settings.timeout)
            except WorkerLost as e:
                raise fail(Status.REFERENCE_ERROR,
                           f"REFERENCE_ERROR: timing the reference failed: {e}") from None
            if resp["status"] != "ok":
                raise fail(Status.REFERENCE_ERROR, f"REFERENCE_ERROR: timing the reference "
                           f"failed: {resp.get('message')}\n{resp.get('traceback', '')}")
            return resp

        resp, (m, *_) = resolved(req, send)
        self._ref_times[key] = m
        self._ref_judged[key] = judged(resp)
        return m

    @staticmethod
    def judge_info(info: TimingInfo, mine: float | str, ref: float | str | None) -> None:
        """--fib-clock=flashinfer-bench: what flashinfer-bench 0.1.2's method read for the same
        solution and reference, beside the kernel's own time (a string: why it read nothing)."""
        if isinstance(mine, str) or not isinstance(ref, float):
            why = mine if isinstance(mine, str) else (ref or "the reference was not timed")
            info["notes"] = [*info["notes"], f"flashinfer-bench's clock read nothing: {why}"]
            return
        info["judge_latency_ms"] = mine
        info["judge_reference_latency_ms"] = ref
        info["judge_speedup"] = ref / mine if mine > 0 else 0.0

    def timing_info(self, case: Case, m: Any, ref_m: Any) -> TimingInfo:
        """The JSON-safe timing summary (pytest-benchmark's extra_info, the report's rows)."""
        from . import timing

        stats = timing.summarize(m.samples_s)
        latency = stats["median_ms"]
        ref_latency = timing.summarize(ref_m.samples_s)["median_ms"]
        nbytes = case.definition.nbytes(case.workload.axes)
        info: TimingInfo = {
            "definition": case.definition.name, "op_type": case.definition.op_type,
            "workload_uuid": case.workload.uuid, "axes": dict(case.workload.axes),
            "solution": case.solution.name, "author": case.solution.author,
            "language": case.solution.language, "clock": m.clock, "device": self.device,
            "latency_ms": latency, "iqr_ms": stats["iqr_ms"], "samples": int(stats["n"]),
            "reference_latency_ms": ref_latency,
            "speedup": ref_latency / latency if latency > 0 else 0.0,
            "bytes": nbytes, "achieved_GBps": nbytes / (latency / 1e3) / 1e9 if latency else 0.0,
            "notes": m.notes,
        }
        if self.device == "cuda":
            peak = timing.peak_bandwidth(0)
            if peak:
                info["peak_bandwidth_GBps"] = peak / 1e9
                info["pct_of_peak_bandwidth"] = 100 * info["achieved_GBps"] / (peak / 1e9)
            import torch

            info["gpu"] = torch.cuda.get_device_name(0)
            # which GPU of the machine: under -n N each worker sees only its own (distribute.py)
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
            info["gpu_device"] = visible or "0"
            uuid = getattr(torch.cuda.get_device_properties(0), "uuid", None)
            if uuid is not None:
                info["gpu_uuid"] = str(uuid)
        return info


def worker_error(resp: Reply) -> FibFailure:
    """A worker answer of no known kind: pytest-fib's own bug."""
    return fail(Status.WORKER_ERROR,
                "pytest-fib worker error (a bug in pytest-fib, please report): "
                f"{resp.get('message')}\n{resp.get('traceback', '')}")


def resolved(req: Request, send: Callable[[], Reply]) -> tuple[Reply, list[Any]]:
    """Send a timing request and compute its measurements here, from the raw records the worker
    returns (timing.resolve: the process that ran the timed code never computes a time). A CUPTI
    trace that cannot be split into iterations (a solution that launches the marker kernel
    itself) is timed again with CUDA events: never silently, the item notes why and the summary
    lists it on a warning line."""
    from . import timing

    why = ""
    for clock in ("auto", "cuda-events"):
        req["clock"] = clock
        resp = send()
        try:
            parts = timing.resolve(timing.Measurement(**resp.get("measurement", {})),
                                   resp.get("parts", 1))
        except timing.Unresolvable as e:
            why = f"CUPTI trace unusable ({e}); timed again with CUDA events around each call"
            continue
        if why:
            parts[0].notes.append(why)
        return resp, parts
    raise fail(Status.TIMING_UNREADABLE, f"the timing trace could not be read: {why}")


def judged(resp: Reply) -> float | str:
    """--fib-clock=flashinfer-bench: the time its method read (ms), or why there is none."""
    if "judge_ms" in resp:
        return float(resp["judge_ms"])
    return resp.get("judge_error", "the worker sent no flashinfer-bench time")


# What the controller keeps of the reference's answers, shared by every solution of a definition
# (memo.py): past it, the oldest go (an item's own newest ones stay, whatever their size).
REFERENCE_MEMO_BYTES = 2 * 2**30
RECHECK_BYTES = 512 * 2**20  # timed outputs (and inputs) shipped back for re-checking, per item


def recheck_sets(n_sets: int, warmup: int, iterations: int, limit: int = 16) -> list[int]:
    """Input sets whose last timed output is checked against the reference: every set a replay
    could exploit (used more than once over warm-up and timed calls), up to ``limit`` spread
    evenly, plus the last set timed (catches work skipped only while timed)."""
    uses = [0] * n_sets
    for i in range(warmup):
        uses[i % n_sets] += 1
    for i in range(iterations):
        uses[i % n_sets] += 1
    reused = [k for k in range(n_sets) if uses[k] > 1]
    if len(reused) > limit:
        step = len(reused) / limit
        reused = [reused[int(j * step)] for j in range(limit)]
    last = (iterations - 1) % n_sets
    return sorted(set(reused) | {last})
