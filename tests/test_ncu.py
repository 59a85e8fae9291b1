"""ncu.py: what --fib-ncu runs and how it reads the report back (issue 19). The profiling run
itself needs a GPU and Nsight Compute: tools/gpu/ncu19.sh, results in docs/diagnostics.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_fib import ncu

# ncu --import R --csv --page raw --print-units base --metrics ...: a message line, the header,
# the units row, one row per profiled launch (two launches of one kernel, one of another).
RAW = (  # the format ncu 2025.3.1 wrote on an H200 (tools/gpu/ncu19.sh), names shortened
    "==PROF== Connected to process 646\n"
    '"ID","Process ID","Process Name","Host Name","thread Domain:Push/Pop_Range:PL_Type:PL_Value:'
    'CLR_Type:Color:Msg_Type:Msg","Id:Domain:Start/Stop_Range:PL_Type:PL_Value:CLR_Type:Color:'
    'Msg_Type:Msg","Kernel Name","Context","Stream","Block Size","Grid Size","Device","CC",'
    '"dram__bytes.sum","gpu__time_duration.sum",'
    '"sm__throughput.avg.pct_of_peak_sustained_elapsed"\n'
    '"","","","","","","","","","","","","","byte","ns","%"\n'
    + "".join(f'"{i}","646","python3.12","127.0.0.1","646  ""<default domain>:fib_solution:none"" ",'
              f'"","{name}","1","7","(256, 1, 1)","(7, 1, 1)","0","9.0","{dram}","{ns}","{sm}"\n'
              for i, (name, dram, ns, sm) in enumerate([
                  ("_rmsnorm_kernel", "117,760", "3,104", "4.21"),
                  ("_rmsnorm_kernel", "117,760", "3,008", "4.30"),
                  ("void scale<float>(float*, int)", "n/a", "1,500", "1.00")])))


def test_kernels_are_summarised_per_name_in_launch_order() -> None:
    rows = ncu.kernels(RAW)
    assert [r["kernel"] for r in rows] == ["_rmsnorm_kernel", "void scale<float>(float*, int)"]
    first, second = rows
    assert first["calls"] == 2
    assert first[ncu.DURATION] == pytest.approx(3056.0)
    assert first[ncu.DRAM] == pytest.approx(117760.0)
    assert first[ncu.SM] == pytest.approx(4.255)
    assert ncu.DRAM not in second  # "n/a": shown as "-", never as 0


def test_the_table_gives_duration_bytes_and_throughput_and_the_report() -> None:
    text = ncu.table(ncu.kernels(RAW), Path("/r/x.ncu-rep"))
    lines = text.splitlines()
    assert lines[0].split() == ["kernel", "calls", "duration", "DRAM", "bytes", "SM", "throughput"]
    assert "3.06 us" in lines[1] and "118 kB" in lines[1] and "4.3 %" in lines[1]
    assert lines[2].rstrip().endswith("1.0 %") and " - " in lines[2]
    assert "/r/x.ncu-rep" in lines[-1]


def test_no_kernel_in_the_range_is_said() -> None:
    assert "profiled no kernel" in ncu.table(ncu.kernels("==PROF== nothing\n"), Path("r"))


@pytest.mark.parametrize(("value", "expected"), [
    ("basic", ["--set", "basic"]), ("full", ["--set", "full"]),
    ("SpeedOfLight, MemoryWorkloadAnalysis",
     ["--section", "SpeedOfLight", "--section", "MemoryWorkloadAnalysis"])])
def test_a_set_or_a_section_list(value: str, expected: list[str]) -> None:
    cmd = ncu.command(value, Path("/out/item"), "ncu")
    joined = " ".join(cmd)
    assert " ".join(expected) in joined
    # only the solution's calls, bounded; the three metrics of the table always collected
    assert cmd[cmd.index("--nvtx-include") + 1] == f"{ncu.RANGE}/" and "--nvtx" in cmd
    assert int(cmd[cmd.index("--launch-count") + 1]) == ncu.LAUNCH_LIMIT
    assert cmd[cmd.index("--metrics") + 1].split(",") == list(ncu.METRICS)
    assert cmd[cmd.index("--export") + 1] == "/out/item"


@pytest.mark.parametrize("value", ["", "basic;rm -rf", "Speed Of Light"])
def test_anything_else_is_refused_with_the_fix(value: str) -> None:
    with pytest.raises(ValueError, match="neither an ncu set"):
        ncu.parse_choice(value)


def test_report_names_are_safe_file_names() -> None:
    path = ncu.report_path(Path("/o"), "gemm/n=4 ../x::y")
    assert path.parent == Path("/o") and "/" not in path.name and not path.name.startswith(".")


def test_a_bad_set_is_a_usage_error_naming_the_flag(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest_subprocess("--fib-device=cpu", "--fib-ncu=Speed Of Light")
    result.stderr.fnmatch_lines(["*--fib-ncu='Speed Of Light': *neither an ncu set*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_ncu_needs_a_gpu(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest_subprocess("--fib-device=cpu", "--fib-ncu")
    result.stderr.fnmatch_lines(["*--fib-ncu='basic': needs a CUDA GPU*"])


@pytest.mark.parametrize(("summary", "errors"), [
    ("========= ERROR SUMMARY: 66 errors", 66),
    ("========= ERROR SUMMARY: 0 errors", 0),
    ("========= RACECHECK SUMMARY: 3 hazards displayed (2 errors, 1 warnings)", 2),
    ("========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)", 0)])
def test_sanitizer_errors_from_every_tools_summary(summary: str, errors: int) -> None:
    """racecheck's summary line differs from the other tools': a race must fail the item too."""
    from pytest_fib.diagnostics import sanitizer_errors

    assert sanitizer_errors(f"========= COMPUTE-SANITIZER\n{summary}\n") == errors
