"""settings.py: one resolution order (CLI > environment > ini > default) and usage errors that
name where a bad value came from and how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

import helpers
from pytest_fib import settings
from pytest_fib.settings import Tolerance, parse_size, parse_tolerance_line, resolve


@pytest.fixture
def data(pytester: pytest.Pytester) -> Path:
    return helpers.make_dataset(pytester.path / "data")


def resolved(pytester: pytest.Pytester, *args: str) -> settings.Settings:
    return resolve(pytester.parseconfig(*args))


def usage_error(pytester: pytest.Pytester, *args: str) -> str:
    with pytest.raises(pytest.UsageError) as excinfo:
        resolved(pytester, *args)
    return str(excinfo.value)


# -- precedence ----------------------------------------------------------------------------------


def test_timeout_default_when_nothing_is_set(pytester: pytest.Pytester, data: Path) -> None:
    assert resolved(pytester, f"--fib-dataset={data}").timeout == settings.DEFAULT_TIMEOUT


def test_timeout_ini_beats_default(pytester: pytest.Pytester, data: Path) -> None:
    pytester.makeini("[pytest]\nfib_timeout = 7\n")
    assert resolved(pytester, f"--fib-dataset={data}").timeout == 7


def test_timeout_env_beats_ini(pytester: pytest.Pytester, data: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nfib_timeout = 7\n")
    monkeypatch.setenv("FIB_TIMEOUT", "8")
    assert resolved(pytester, f"--fib-dataset={data}").timeout == 8


def test_timeout_cli_beats_env_and_ini(pytester: pytest.Pytester, data: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nfib_timeout = 7\n")
    monkeypatch.setenv("FIB_TIMEOUT", "8")
    assert resolved(pytester, f"--fib-dataset={data}", "--fib-timeout=9").timeout == 9


def test_dataset_sources_in_order(pytester: pytest.Pytester,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Three valid datasets, one per source: each higher source wins and is named."""
    for name in ("by_ini", "by_env", "by_cli"):
        helpers.make_dataset(pytester.path / name)
    pytester.makeini("[pytest]\nfib_dataset = by_ini\n")
    s = resolved(pytester)
    assert (s.dataset.name, s.dataset_source) == ("by_ini", "ini fib_dataset")
    monkeypatch.setenv("FIB_DATASET_PATH", str(pytester.path / "by_env"))
    s = resolved(pytester)
    assert (s.dataset.name, s.dataset_source) == ("by_env", "FIB_DATASET_PATH")
    s = resolved(pytester, "--fib-dataset=by_cli")
    assert (s.dataset.name, s.dataset_source) == ("by_cli", "--fib-dataset")


def test_ini_dataset_is_relative_to_the_rootdir(pytester: pytest.Pytester, data: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nfib_dataset = data\n")
    sub = pytester.mkdir("sub")
    monkeypatch.chdir(sub)
    assert resolved(pytester, str(sub)).dataset == data.resolve()


def test_cpu_budget_sources(pytester: pytest.Pytester, data: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nfib_cpu_budget = 1MB\n")
    assert resolved(pytester, f"--fib-dataset={data}").cpu_budget == 2**20
    monkeypatch.setenv("FIB_CPU_BUDGET", "2MB")
    assert resolved(pytester, f"--fib-dataset={data}").cpu_budget == 2 * 2**20
    s = resolved(pytester, f"--fib-dataset={data}", "--fib-cpu-budget=3MB")
    assert s.cpu_budget == 3 * 2**20


def test_seed_from_env_and_cli(pytester: pytest.Pytester, data: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIB_SEED", "11")
    s = resolved(pytester, f"--fib-dataset={data}")
    assert (s.seed, s.seed_source) == (11, "FIB_SEED")
    s = resolved(pytester, f"--fib-dataset={data}", "--fib-seed=12")
    assert (s.seed, s.seed_source) == (12, "--fib-seed")


def test_random_seed_is_labelled_random(pytester: pytest.Pytester, data: Path) -> None:
    s = resolved(pytester, f"--fib-dataset={data}")
    assert s.seed_source == "random" and 0 <= s.seed < 2**31


def test_cpu_run_defaults_to_short_timing(pytester: pytest.Pytester, data: Path) -> None:
    s = resolved(pytester, f"--fib-dataset={data}", "--fib-device=cpu")
    assert (s.device, s.gpu_count, s.warmup, s.iterations) == ("cpu", 0, 1, 5)


def test_cli_tolerances_reach_the_settings(pytester: pytest.Pytester, data: Path) -> None:
    s = resolved(pytester, f"--fib-dataset={data}", "--fib-atol=0.5", "--fib-rtol=0.25",
                 "--fib-matched-ratio=0.9", "--fib-trials=2")
    assert s.tolerance == Tolerance(atol=0.5, rtol=0.25, matched_ratio=0.9, trials=2)


def test_settings_are_json_safe(pytester: pytest.Pytester, data: Path) -> None:
    import json

    s = resolved(pytester, f"--fib-dataset={data}", "--fib-traces=out")
    round_trip = json.loads(json.dumps(s.to_json()))
    assert round_trip["dataset"] == str(data.resolve())
    assert round_trip["traces"] == str((pytester.path / "out").resolve())


# -- usage errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("args, env, ini, named", [
    (["--fib-timeout=soon"], {}, "", "--fib-timeout"),
    ([], {"FIB_TIMEOUT": "soon"}, "", "FIB_TIMEOUT"),
    ([], {}, "fib_timeout = soon", "ini fib_timeout"),
    (["--fib-seed=x"], {}, "", "--fib-seed"),
    ([], {"FIB_SEED": "-3"}, "", "FIB_SEED"),
    (["--fib-atol=tight"], {}, "", "--fib-atol"),
    (["--fib-trials=0"], {}, "", "--fib-trials"),
    (["--fib-iterations=0"], {}, "", "--fib-iterations"),
    (["--fib-timeout=0.5"], {}, "", "--fib-timeout"),
])
def test_bad_number_names_its_source(pytester: pytest.Pytester, data: Path,
                                     monkeypatch: pytest.MonkeyPatch, args: list[str],
                                     env: dict[str, str], ini: str, named: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    message = usage_error(pytester, f"--fib-dataset={data}", *args)
    assert named in message
    assert "Give a" in message  # the fix: "Give a number." / "Give a larger value."


@pytest.mark.parametrize("option", ["--fib-atol", "--fib-rtol", "--fib-timeout"])
def test_nan_is_not_a_number_setting(pytester: pytest.Pytester, data: Path, option: str) -> None:
    assert option in usage_error(pytester, f"--fib-dataset={data}", f"{option}=nan")


def test_bad_cpu_budget_names_flag_and_fix(pytester: pytest.Pytester, data: Path) -> None:
    message = usage_error(pytester, f"--fib-dataset={data}", "--fib-cpu-budget=lots")
    assert "--fib-cpu-budget" in message and "64MB" in message


@pytest.mark.parametrize("args, env, ini, source", [
    (["--fib-dataset=nowhere"], {}, "", "--fib-dataset"),
    ([], {"FIB_DATASET_PATH": "nowhere"}, "", "FIB_DATASET_PATH"),
    ([], {}, "fib_dataset = nowhere", "ini fib_dataset"),
])
def test_missing_dataset_names_path_and_source(pytester: pytest.Pytester,
                                               monkeypatch: pytest.MonkeyPatch, args: list[str],
                                               env: dict[str, str], ini: str,
                                               source: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    message = usage_error(pytester, *args)
    assert source in message
    assert str(pytester.path / "nowhere") in message
    assert "does not exist" in message and "definitions/" in message


def test_dataset_without_definitions_folder(pytester: pytest.Pytester) -> None:
    pytester.mkdir("empty")
    message = usage_error(pytester, "--fib-dataset=empty")
    assert "holds no definitions/ folder" in message


def test_kernels_folder_must_exist_when_given(pytester: pytest.Pytester, data: Path) -> None:
    message = usage_error(pytester, f"--fib-dataset={data}", "--fib-kernels=nokernels")
    assert "--fib-kernels" in message and "nokernels" in message and "not a directory" in message


def test_resume_needs_traces(pytester: pytest.Pytester, data: Path) -> None:
    message = usage_error(pytester, f"--fib-dataset={data}", "--fib-resume")
    assert "--fib-resume" in message and "--fib-traces" in message


def test_cuda_without_gpu_is_a_usage_error(pytester: pytest.Pytester, data: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "detect_gpus", lambda: 0)
    message = usage_error(pytester, f"--fib-dataset={data}", "--fib-device=cuda")
    assert "--fib-device" in message and "--fib-device cpu" in message


def test_sanitizer_without_gpu_is_a_usage_error(pytester: pytest.Pytester, data: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "detect_gpus", lambda: 0)
    message = usage_error(pytester, f"--fib-dataset={data}", "--fib-sanitizer=memcheck")
    assert "--fib-sanitizer" in message and "GPU" in message


def test_bad_device_from_env(pytester: pytest.Pytester, data: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIB_DEVICE", "tpu")
    message = usage_error(pytester, f"--fib-dataset={data}")
    assert "tpu" in message and "cpu" in message


def test_bad_device_from_env_names_the_variable(pytester: pytest.Pytester, data: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIB_DEVICE", "tpu")
    assert "FIB_DEVICE" in usage_error(pytester, f"--fib-dataset={data}")


# -- parse_size ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("1000000", 1_000_000),
    ("64MB", 64 * 2**20),
    ("64mb", 64 * 2**20),
    ("64M", 64 * 2**20),
    ("1.5GiB", int(1.5 * 2**30)),
    (" 2 kB ", 2048),
    ("1T", 2**40),
    ("0", 0),
])
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text, "--fib-cpu-budget") == expected


@pytest.mark.parametrize("text", ["", "lots", "64XB", "-1MB", "1e6", "MB"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(pytest.UsageError, match="FIB_CPU_BUDGET.*Use bytes or a unit"):
        parse_size(text, "FIB_CPU_BUDGET")


@pytest.mark.parametrize("text", ["1.2.3MB", "."])
def test_parse_size_rejects_malformed_numbers(text: str) -> None:
    with pytest.raises(pytest.UsageError):
        parse_size(text, "--fib-cpu-budget")


# -- fib_tolerances ini lines --------------------------------------------------------------------


def test_tolerance_line_overrides_only_what_it_names() -> None:
    base = Tolerance(atol=0.5, rtol=0.5, matched_ratio=None, trials=3)
    name, tol = parse_tolerance_line("rmsnorm: atol=1e-3 trials=5", base, "ini fib_tolerances")
    assert name == "rmsnorm"
    assert tol == Tolerance(atol=1e-3, rtol=0.5, matched_ratio=None, trials=5)


def test_tolerance_line_all_keys() -> None:
    _, tol = parse_tolerance_line(" gemm :atol=1 rtol=2 matched_ratio=0.95 trials=4", Tolerance(),
                                  "ini fib_tolerances")
    assert tol == Tolerance(atol=1.0, rtol=2.0, matched_ratio=0.95, trials=4)


@pytest.mark.parametrize("line, says", [
    ("rmsnorm atol=1", "expected '<definition or op_type>: key=value"),
    (": atol=1", "expected '<definition or op_type>: key=value"),
    ("rmsnorm: tol=1", "Known: atol, rtol, matched_ratio, trials"),
    ("rmsnorm: atol", "Known: atol, rtol, matched_ratio, trials"),
    ("rmsnorm: atol=big", "Give a number"),
    ("rmsnorm: trials=1.5", "Give a number"),
    ("rmsnorm: atol=-1", "must be >= 0"),
])
def test_tolerance_line_errors(line: str, says: str) -> None:
    with pytest.raises(pytest.UsageError) as excinfo:
        parse_tolerance_line(line, Tolerance(), "ini fib_tolerances")
    assert "ini fib_tolerances" in str(excinfo.value) and says in str(excinfo.value)


def test_tolerance_line_rejects_zero_trials() -> None:
    with pytest.raises(pytest.UsageError):
        parse_tolerance_line("scale2: trials=0", Tolerance(), "ini fib_tolerances")


def test_tolerance_for_last_matching_override_wins(pytester: pytest.Pytester, data: Path) -> None:
    pytester.makeini("[pytest]\nfib_tolerances =\n    scale: atol=0.1\n    scale2: atol=0.2\n"
                     "    other: atol=0.3\n")
    s = resolved(pytester, f"--fib-dataset={data}", "--fib-rtol=0.05")
    assert s.tolerance_for("scale2", "scale") == Tolerance(atol=0.2, rtol=0.05)
    assert s.tolerance_for("scale3", "scale") == Tolerance(atol=0.1, rtol=0.05)  # by op type
    assert s.tolerance_for("x", "y") == Tolerance(atol=1e-2, rtol=0.05)  # the base


def test_bad_ini_tolerance_line_is_a_usage_error(pytester: pytest.Pytester, data: Path) -> None:
    pytester.makeini("[pytest]\nfib_tolerances =\n    scale2: speed=fast\n")
    assert "ini fib_tolerances" in usage_error(pytester, f"--fib-dataset={data}")
