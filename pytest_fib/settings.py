"""Resolved settings: every ``--fib-*`` option, its environment variable and ini key, in one place.

Precedence is the one pytest-randomly and pytest-timeout document: command line, then environment,
then ini file, then the default. Bad values raise ``pytest.UsageError`` naming where the value came
from and how to fix it. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
from pathlib import Path
from typing import Any

import pytest

EMBEDDED_DATASET = Path(__file__).parent / "data" / "default"
SELFTEST_KERNELS = Path(__file__).parent / "selftest"

SOLUTION_MODES = ("local", "dataset", "all")
DEVICE_MODES = ("auto", "cpu", "cuda")
DEFAULT_CPU_BUDGET = 64 * 2**20  # bytes of inputs + outputs one CPU item may touch
DEFAULT_TIMEOUT = 300.0


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """flashinfer-bench's correctness rule: an element fails only if abs > atol and rel > rtol."""

    atol: float = 1e-2
    rtol: float = 1e-2
    matched_ratio: float | None = None  # None: the op type's default (1.0; MoE fp8: 0.95)
    trials: int = 3

    def merged(self, **changes: Any) -> Tolerance:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything a session needs, JSON-safe so it can cross process and machine boundaries."""

    dataset: Path
    dataset_source: str  # "--fib-dataset", "FIB_DATASET_PATH", "ini fib_dataset", "embedded"
    kernels: Path
    kernels_source: str
    solutions: str
    seed: int
    seed_source: str
    device: str  # "cpu" or "cuda" once resolved
    gpu_count: int
    tolerance: Tolerance
    tolerance_overrides: tuple[tuple[str, Tolerance], ...]
    cpu_budget: int
    timeout: float
    pack: Path | None
    traces: Path | None
    resume: bool
    report: Path | None
    warmup: int
    iterations: int
    explicit: bool  # some fib setting was given: the suite is wanted even without kernels/
    selftest: bool = False
    hypothesis_examples: int = 10
    baseline: str | None = None  # solution name to time every candidate against (interleaved)
    sanitizer: str | None = None  # memcheck, racecheck, synccheck, initcheck
    ncu: str | None = None  # --fib-ncu: an ncu set or section list (ncu.py); None: off
    ncu_dir: Path | None = None  # where --fib-ncu saves .ncu-rep files
    # --fib-clock=flashinfer-bench: timing items also report what flashinfer-bench 0.1.2's own
    # method (CUDA events around each call, time_runnable) reads for the same calls
    judge_clock: bool = False
    strict_spec: bool = False  # a missing destination_passing_style is true (flashinfer-bench)
    # Timing items run on the CPU only when asked for (--fib-device=cpu) or for the self-test:
    # the host clock times Triton's interpreter, not a kernel (issue 15).
    host_timing: bool = False

    def tolerance_for(self, definition: str, op_type: str) -> Tolerance:
        """The tolerance for one definition: the last matching ini override wins."""
        tol = self.tolerance
        for pattern, override in self.tolerance_overrides:
            if pattern in (definition, op_type):
                tol = override
        return tol

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in out.items()}


def _usage(source: str, value: object, problem: str, fix: str) -> pytest.UsageError:
    return pytest.UsageError(f"pytest-fib: {source}={value!r}: {problem}. {fix}")


def parse_size(text: str, source: str) -> int:
    """'64MB', '1.5GiB', '1000000' -> bytes."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", text)
    if not m:
        raise _usage(source, text, "not a size", "Use bytes or a unit, e.g. 64MB or 1GiB.")
    scale = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[m.group(2).lower()]
    try:
        return int(float(m.group(1)) * scale)
    except ValueError:
        raise _usage(source, text, "not a size",
                     "Use bytes or a unit, e.g. 64MB or 1GiB.") from None


def _first(config: pytest.Config, option: str, env: str | None, ini: str | None) -> tuple[Any, str]:
    """The first value set among CLI option, environment variable and ini key, with its source."""
    value = config.getoption(option)
    if value is not None:
        return value, "--" + option.replace("_", "-")
    if env and os.environ.get(env):
        return os.environ[env], env
    if ini:
        ini_value = config.getini(ini)
        if ini_value:
            return ini_value, f"ini {ini}"
    return None, "default"


def _number(value: Any, source: str, kind: type, minimum: float | None = None) -> Any:
    import math

    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise _usage(source, value, f"not a {kind.__name__}", "Give a number.") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise _usage(source, value, "must be a finite number", "Give a finite number.")
    if minimum is not None and number < minimum:
        raise _usage(source, value, f"must be >= {minimum}", "Give a larger value.")
    return number


def _path(config: pytest.Config, value: str, source: str) -> Path:
    base = config.rootpath if source.startswith("ini") else config.invocation_params.dir
    return (base / os.path.expanduser(value)).resolve()


def parse_tolerance_line(line: str, base: Tolerance, source: str) -> tuple[str, Tolerance]:
    """'rmsnorm: atol=1e-3 rtol=1e-3 matched_ratio=0.99 trials=5' -> ('rmsnorm', Tolerance)."""
    name, sep, rest = line.partition(":")
    if not sep or not name.strip():
        raise _usage(source, line, "expected '<definition or op_type>: key=value ...'",
                     "Example: 'rmsnorm: atol=1e-3 rtol=1e-3'.")
    changes: dict[str, Any] = {}
    for item in rest.split():
        key, eq, val = item.partition("=")
        if not eq or key not in ("atol", "rtol", "matched_ratio", "trials"):
            raise _usage(source, line, f"unknown setting {item!r}",
                         "Known: atol, rtol, matched_ratio, trials.")
        kind = int if key == "trials" else float
        changes[key] = _number(val, f"{source} ({name.strip()})", kind, 1 if key == "trials" else 0)
    return name.strip(), base.merged(**changes)


def detect_gpus() -> int:
    """Count CUDA devices without importing torch: ask the driver through ctypes (about 50 ms)."""
    import ctypes

    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


# The ini keys plugin.py registers: any of them set means the project uses pytest-fib.
INI_KEYS = ("fib_dataset", "fib_kernels", "fib_cpu_budget", "fib_timeout", "fib_tolerances")


def wanted(config: pytest.Config) -> bool:
    """Does this run use pytest-fib at all? Only a ``kernels/`` folder (invocation folder or
    rootdir), a ``--fib-*`` option or a ``fib_*`` ini key says so; ``FIB_*`` environment variables
    alone never do (issue 16: a stale ``FIB_DATASET_PATH`` must not break an unrelated project).
    Decided before anything is resolved: an unwanted plugin reads no dataset and probes no GPU."""
    if any(value not in (None, False) for name, value in vars(config.option).items()
           if name.startswith("fib_")):
        return True
    if any(config.getini(key) for key in INI_KEYS):
        return True
    return any((d / "kernels").is_dir() for d in (config.invocation_params.dir, config.rootpath)
               ) or kit_root(config) is not None


KIT_ROOT_SOURCE = "the starter kit at the rootdir"


def kit_root(config: pytest.Config) -> Path | None:
    """A contest starter-kit checkout used as it is (issue 18): ``config.toml`` and ``solution/``
    at the rootdir (or the invocation folder), and no ``kernels/`` folder. Two stat calls: an
    unrelated project pays nothing more."""
    for d in (config.invocation_params.dir, config.rootpath):
        if (d / "kernels").is_dir():
            return None
    return next((d for d in (config.rootpath, config.invocation_params.dir)
                 if (d / "config.toml").is_file() and (d / "solution").is_dir()), None)


SEED_CACHE_KEY = "fib/last-seed"


def last_seed(config: pytest.Config, value: Any, source: str) -> tuple[int, str] | None:
    """``--fib-seed=last``, or ``--lf``/``--ff`` without a seed: the last run's seed, from pytest's
    cache (issue 18: a rerun of failures with new random inputs may not fail again)."""
    rerun = value is None and (config.getoption("lf", False) or config.getoption("failedfirst",
                                                                                 False))
    if str(value).strip().lower() != "last" and not rerun:
        return None
    cache = getattr(config, "cache", None)
    last = cache.get(SEED_CACHE_KEY, None) if cache is not None else None
    if isinstance(last, int):
        return last, f"{source if not rerun else '--lf'}: the last run's seed"
    if rerun:
        return None  # nothing recorded: a fresh random seed, as without --lf
    why = ("no earlier run here recorded a seed" if cache is not None
           else "pytest's cache is off (-p no:cacheprovider)")
    raise _usage(source, value, why, "Give the seed itself (the header of the run prints it: "
                 "--fib-seed=N), or run once without --fib-seed.")


def remember_seed(config: pytest.Config, seed: int) -> None:
    """For the next ``--fib-seed=last`` / ``--lf`` (not from an xdist worker: one writer)."""
    cache = getattr(config, "cache", None)
    if cache is not None and not os.environ.get("PYTEST_XDIST_WORKER"):
        cache.set(SEED_CACHE_KEY, seed)


def resolve(config: pytest.Config) -> Settings:
    """Resolve every setting once; the only place that reads options, environment and ini."""
    explicit = False
    value, source = _first(config, "fib_dataset", "FIB_DATASET_PATH", "fib_dataset")
    if value is None:
        dataset, dataset_source = EMBEDDED_DATASET, "embedded default"
    else:
        dataset, dataset_source, explicit = _path(config, value, source), source, True
    if not dataset.is_dir() or not (dataset / "definitions").is_dir():
        problem = "does not exist" if not dataset.exists() else "holds no definitions/ folder"
        raise _usage(dataset_source, str(dataset), problem,
                     "Point it at a FlashInfer-Trace dataset root (the folder that holds "
                     "definitions/, workloads/, solutions/).")

    selftest = bool(config.getoption("fib_selftest"))
    value, source = _first(config, "fib_kernels", None, "fib_kernels")
    if selftest:
        if value:
            raise _usage(source, value, "cannot be combined with --fib-selftest",
                         "The self-test runs the exploit corpus shipped with pytest-fib; drop one.")
        kernels, kernels_source, explicit = SELFTEST_KERNELS, "--fib-selftest", True
    elif value:
        kernels, kernels_source = _path(config, value, source), source
    else:
        # The invocation folder first: pytest roots a run elsewhere when an option's value looks
        # like a path (`--fib-dataset ../data` makes ../ a rootdir candidate), the user's cwd not.
        kernels = next((d / "kernels" for d in (config.invocation_params.dir, config.rootpath)
                        if (d / "kernels").is_dir()), config.rootpath / "kernels")
        kernels_source = "default ./kernels"
        kit = kit_root(config)
        if kit is not None:
            kernels, kernels_source = kit.resolve(), KIT_ROOT_SOURCE
    explicit = explicit or value is not None
    if value is not None and not kernels.is_dir():
        raise _usage(source, str(kernels), "is not a directory",
                     "Give the folder that holds your solutions (starter-kit folders or "
                     "Solution JSON).")

    solutions = config.getoption("fib_solutions") or "local"
    if selftest and solutions != "local":
        raise _usage("--fib-solutions", solutions, "cannot be combined with --fib-selftest",
                     "The self-test runs only its own exploit corpus.")
    explicit = explicit or config.getoption("fib_solutions") is not None
    if solutions not in SOLUTION_MODES:
        raise _usage("--fib-solutions", solutions, "unknown mode", f"Use one of {SOLUTION_MODES}.")

    value, source = _first(config, "fib_seed", "FIB_SEED", None)
    last = last_seed(config, value, source)
    if last is not None:
        seed, seed_source = last
    elif value is None:
        seed, seed_source = random.Random().randrange(2**31), "random"
    else:
        seed, seed_source = _number(value, source, int, 0), source

    device, device_source = _first(config, "fib_device", "FIB_DEVICE", None)
    device = device or "auto"
    if device not in DEVICE_MODES:
        raise _usage(device_source, device, "unknown device", f"Use one of {DEVICE_MODES}.")
    gpus = 0 if device == "cpu" else detect_gpus()
    if device == "cuda" and gpus == 0:
        raise _usage("--fib-device", device, "no CUDA device is visible",
                     "Check nvidia-smi and CUDA_VISIBLE_DEVICES, or use --fib-device cpu.")
    resolved_device = "cuda" if gpus else "cpu"

    tolerance = Tolerance().merged(
        atol=_opt_number(config, "fib_atol", float),
        rtol=_opt_number(config, "fib_rtol", float),
        matched_ratio=_opt_number(config, "fib_matched_ratio", float),
        trials=_opt_number(config, "fib_trials", int, 1),
    )
    overrides = tuple(parse_tolerance_line(line, tolerance, "ini fib_tolerances")
                      for line in config.getini("fib_tolerances") if line.strip())

    value, source = _first(config, "fib_cpu_budget", "FIB_CPU_BUDGET", "fib_cpu_budget")
    cpu_budget = parse_size(str(value), source) if value is not None else DEFAULT_CPU_BUDGET

    value, source = _first(config, "fib_timeout", "FIB_TIMEOUT", "fib_timeout")
    timeout = _number(value, source, float, 1) if value is not None else DEFAULT_TIMEOUT

    def out_dir(option: str) -> Path | None:
        """An output folder, checked now (issue 14): a file there, or a folder that cannot be
        created, is a usage error before anything runs, not a traceback after the first item."""
        from .paths import output_dir_problem

        v = config.getoption(option)
        if not v:
            return None
        path: Path = (config.invocation_params.dir / os.path.expanduser(v)).resolve()
        problem = output_dir_problem(path)
        if problem:
            flag = "--" + option.replace("_", "-")
            raise _usage(flag, v, f"{path} {problem}" if not problem.startswith(str(path))
                         else problem, f"Give {flag} a folder pytest-fib can create and write.")
        return path

    sanitizer = config.getoption("fib_sanitizer")
    ncu = config.getoption("fib_ncu")
    if ncu is not None:
        from .ncu import parse_choice

        try:
            parse_choice(ncu)
        except ValueError as e:
            raise _usage("--fib-ncu", ncu, str(e), "Name a set (--fib-ncu=detailed) or sections "
                         "(--fib-ncu=SpeedOfLight,Occupancy).") from None
    if (sanitizer or ncu) and not gpus:
        raise _usage("--fib-sanitizer" if sanitizer else "--fib-ncu", sanitizer or ncu,
                     "needs a CUDA GPU", "Run it on a GPU machine (or with --modal).")
    if ncu and gpus:
        from .ncu import executable

        if executable() is None:
            raise _usage("--fib-ncu", ncu, "Nsight Compute's ncu is not on PATH, in "
                         "$CUDA_HOME/bin or in /usr/local/cuda/bin",
                         "Install Nsight Compute (it ships with the CUDA toolkit) or add its "
                         "folder to PATH.")
    clock = config.getoption("fib_clock", None) or "cupti"
    judge_clock = clock == "flashinfer-bench"
    if judge_clock and not gpus:
        raise _usage("--fib-clock", clock, "needs a CUDA GPU (flashinfer-bench times with CUDA "
                     "events)", "Run it on a GPU machine (or with --modal).")
    if sanitizer and ncu:
        raise _usage("--fib-ncu", ncu, "cannot be combined with --fib-sanitizer",
                     "Profile and sanitize in separate runs.")
    resume = bool(config.getoption("fib_resume"))
    traces = out_dir("fib_traces")
    if resume and traces is None:
        raise _usage("--fib-resume", True, "needs a results folder",
                     "Add --fib-traces DIR: resume skips what DIR already records.")
    if resume and traces is not None and seed_source == "random":
        # The seed is part of the resume key: resuming continues the recorded run's inputs.
        from .traces import recorded_seed

        previous = recorded_seed(traces)
        if previous is not None:
            seed, seed_source = previous, "--fib-resume (the recorded run's seed)"

    report = out_dir("fib_report")
    ncu_dir = None
    if ncu:  # next to the report, else in the folder pytest was started in
        ncu_dir = (report or config.invocation_params.dir / ".pytest-fib") / "ncu"
    return Settings(
        dataset=dataset, dataset_source=dataset_source, kernels=kernels,
        kernels_source=kernels_source, solutions=solutions, seed=seed, seed_source=seed_source,
        device=resolved_device, gpu_count=gpus, tolerance=tolerance,
        tolerance_overrides=overrides, cpu_budget=cpu_budget, timeout=timeout,
        pack=out_dir("fib_pack"), traces=traces, resume=resume, report=report,
        # A CPU run times the host clock only to exercise the pipeline: keep it short there.
        warmup=_or(_opt_number(config, "fib_warmup", int, 0), 10 if gpus else 1),
        iterations=_or(_opt_number(config, "fib_iterations", int, 1), 100 if gpus else 5),
        explicit=explicit, selftest=selftest, sanitizer=sanitizer, ncu=ncu,
        ncu_dir=ncu_dir, judge_clock=judge_clock, baseline=config.getoption("fib_baseline"),
        strict_spec=bool(config.getoption("fib_strict_spec", False)),
        host_timing=device == "cpu" or selftest,
        hypothesis_examples=_or(_opt_number(config, "fib_hypothesis_examples", int, 1), 10),
    )


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _opt_number(config: pytest.Config, option: str, kind: type, minimum: float = 0) -> Any:
    value = config.getoption(option)
    if value is None:
        return None
    return _number(value, "--" + option.replace("_", "-"), kind, minimum)
