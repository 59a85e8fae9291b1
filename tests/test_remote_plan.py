"""Unit tests of what --modal ships and runs (pytest_fib/remote/plan.py, shard.py, merge.py):
pure functions, no subprocess, no network."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath

import pytest

from pytest_fib.remote import controller, merge, plan, shard

pytest_plugins = ["pytester"]


@pytest.fixture
def table(pytester: pytest.Pytester) -> dict:
    return plan.option_table(pytester.parseconfig())


# -- command line -------------------------------------------------------------------------------

def rewrite(table: dict, args: list[str], project: Path, **kw) -> list[str]:
    parsed = plan.parse_args(args, table)
    artifacts = plan.find_artifacts(parsed, project, kw.pop("cache", None))
    got = plan.remote_args(parsed, project=project, remote_project="/fib/ws/proj",
                            out="/fib/out", artifacts=artifacts, **{"dataset": None,
                                                                    "color": False, **kw})
    # first, always: the plugin that writes the reports replayed locally (remote/sender.py)
    assert got[:3] == ["-p", "pytest_fib.remote.sender",
                       "--fib-remote-reports=/fib/out/reports.jsonl"]
    return got[3:]


def test_modal_options_go_artifacts_move_and_the_rest_stays(table, tmp_path):
    args = ["-k", "rmsnorm and not slow", "--modal", "--modal-gpu", "H100", "--modal-shards=2",
            "--modal-volume", "vol/sub", "--modal-backend=local", "--modal-timeout", "60",
            "--junitxml", "out/j.xml", "--benchmark-json=b.json", "--fib-traces", "tr",
            "--fib-dataset", "../ds", "-m", "correctness", "-vx", "-rA", "kernels::a::b",
            str(tmp_path / "kernels") + "::x", "--fib-report=rep", "-pno:randomly", "-n", "2"]
    got = rewrite(table, args, tmp_path, dataset="/fib/ws/ds")
    assert got == ["--fib-dataset=/fib/ws/ds", "-krmsnorm and not slow",
                   "--junitxml=/fib/out/junit.xml", "--benchmark-json=/fib/out/benchmark.json",
                   "--fib-traces=/fib/out/traces", "-mcorrectness", "-vx", "-rA",
                   "kernels::a::b", "/fib/ws/proj/kernels::x", "--fib-report=/fib/out/report",
                   "-pno:randomly", "-n2"]
    arts = plan.find_artifacts(plan.parse_args(args, table), tmp_path, None)
    assert arts.paths == {"junit.xml": tmp_path / "out" / "j.xml",
                          "benchmark.json": tmp_path / "b.json", "traces": tmp_path / "tr",
                          "report": tmp_path / "rep"}


def test_optional_values_and_positionals_parse_like_argparse(table, tmp_path):
    parsed = plan.parse_args(["--benchmark-compare", "--lf", "--benchmark-compare", "0003",
                              "--", "-notanoption", "-k", "x"], table)
    assert [(a.name, a.values) for a in parsed] == [
        ("--benchmark-compare", []), ("--lf", []), ("--benchmark-compare", ["0003"]),
        (None, ["--"]), (None, ["-notanoption"]), (None, ["-k"]), (None, ["x"])]


def test_benchmark_storage_and_cache_are_redirected(table, tmp_path):
    got = rewrite(table, ["--benchmark-autosave", "--benchmark-storage", "file://./bs"], tmp_path,
                  cache=tmp_path / ".pytest_cache", color=True)
    assert got == ["--benchmark-autosave", "--benchmark-storage=file:///fib/out/benchmarks",
                   "-o", "cache_dir=/fib/out/cache", "--color=yes"]
    arts = plan.find_artifacts(plan.parse_args(["--benchmark-save=x"], table), tmp_path, None)
    assert arts.saves and arts.storage == tmp_path / ".benchmarks"
    assert rewrite(table, ["--color=no"], tmp_path, color=True) == ["--color=no"]


def test_shard_plugin_comes_first(table, tmp_path):
    got = rewrite(table, ["-q"], tmp_path, shard=(2, 3), dataset="/fib/volume")
    assert got == ["-p", "pytest_fib.remote.shard", "--fib-shard=2/3",
                   "--fib-dataset=/fib/volume", "-q"]


def test_kernels_outside_the_project_are_refused(table, tmp_path):
    parsed = plan.parse_args(["--fib-kernels=../elsewhere"], table)
    with pytest.raises(plan.PlanError, match="outside the project folder"):
        plan.check_paths(parsed, tmp_path / "proj", tmp_path / "proj")
    plan.check_paths(plan.parse_args(["--fib-kernels=k"], table), tmp_path, tmp_path)


# -- shipped files ------------------------------------------------------------------------------

SECRETS = [".env", ".env.local", ".modal.toml", ".netrc", ".pypirc", "deploy.pem", "server.key",
           "id_rsa", "id_ed25519.pub", "credentials.json", "gcp-credentials.json",
           "client_secret_123.json", "secrets.toml", "token.json", "prod.env", "cert.p12",
           "kernels/my/config/aws_credentials.json"]
JUNK = [".git/config", ".git/objects/ab/cd", ".venv/bin/python", "venv/pyvenv.cfg",
        "myenv/pyvenv.cfg", "myenv/lib/x.py", "__pycache__/a.pyc", "kernels/__pycache__/k.pyc",
        ".pytest_cache/v/x", ".hypothesis/db", ".benchmarks/a.json", ".ssh/id_rsa",
        ".aws/credentials", ".config/gcloud/creds.db", "build/lib/x.so", "dist/x.whl",
        "node_modules/a/index.js", "pkg.egg-info/PKG-INFO", ".mypy_cache/x", "data/big.bin"]
SHIPPED = ["conftest.py", "kernels/my/config.toml", "kernels/my/solution/cuda/kernel.cu",
           "kernels/my/solution/cuda/kernel.h", "pyproject.toml", "tests/test_x.py", "tox.ini",
           ".pytest.ini", "notes/env_setup.md"]


def test_ship_list_is_explicit_and_holds_no_secrets(tmp_path):
    for rel in SECRETS + JUNK + SHIPPED:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    got = plan.ship_list(tmp_path, skip=[tmp_path / "data"])
    assert got.files == sorted(SHIPPED)
    assert set(got.secrets) >= {s for s in SECRETS if "/" not in s or s.startswith("kernels")}
    assert not any(plan.is_secret(Path(f).name) for f in got.files)


def test_ship_list_honours_modal_ignore_and_skips_outside_links(tmp_path):
    (tmp_path / "kernels" / "big").mkdir(parents=True)
    (tmp_path / "kernels" / "big" / "weights.bin").write_text("x")
    (tmp_path / "kernels" / "k.py").write_text("x")
    (tmp_path / "outside.py").write_text("x")
    (tmp_path / "kernels" / "link.py").symlink_to(tmp_path / "kernels" / "k.py")
    elsewhere = tmp_path.parent / f"{tmp_path.name}-else.py"
    elsewhere.write_text("x")
    (tmp_path / "kernels" / "out.py").symlink_to(elsewhere)
    got = plan.ship_list(tmp_path, patterns=["kernels/big", "outside.*"])
    assert got.files == ["kernels/k.py", "kernels/link.py"]
    assert got.skipped_links == ["kernels/out.py"]


def test_stage_writes_exactly_the_list_and_an_entry_point(tmp_path):
    proj, pkg = tmp_path / "proj", tmp_path / "pkg"
    for p in (proj / "a.py", proj / ".env", pkg / "plugin.py", pkg / "__pycache__" / "x.pyc"):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    dest = tmp_path / "stage"
    plan.stage(dest, plan.ship_list(proj), plan.ship_list(pkg), "9.9",
               {"cache/v/cache/lastfailed": proj / "a.py"})
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == ["input/cache/v/cache/lastfailed", "project/a.py",
                     "site/pytest_fib-9.9.dist-info/METADATA",
                     "site/pytest_fib-9.9.dist-info/entry_points.txt",
                     "site/pytest_fib-9.9.dist-info/top_level.txt", "site/pytest_fib/plugin.py"]
    assert "fib = pytest_fib.plugin" in (
        dest / "site" / "pytest_fib-9.9.dist-info" / "entry_points.txt").read_text()


# -- environment --------------------------------------------------------------------------------

def test_remote_env_is_an_allowlist():
    local = {"MODAL_TOKEN_ID": "ak-1", "MODAL_TOKEN_SECRET": "as-1", "AWS_SECRET_ACCESS_KEY": "x",
             "GITHUB_TOKEN": "x", "HF_TOKEN": "x", "HOME": "/home/me", "PATH": "/usr/bin",
             "FIB_SEED": "5", "FIB_DATASET_PATH": "/home/me/ds", "PYTEST_ADDOPTS": "--x",
             "FIB_TIMEOUT": "9"}
    layout = plan.make_layout(Path("/p/proj"), Path("/p/proj"), None, None)
    env = plan.remote_env(layout, local, columns=100)
    assert env == {"PYTHONPATH": "/fib/site", "PYTHONUNBUFFERED": "1",
                   "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_FIB_REMOTE": "1", "COLUMNS": "100",
                   "FIB_SEED": "5", "FIB_TIMEOUT": "9"}


# -- layout and volume ----------------------------------------------------------------------------

@pytest.mark.parametrize("dataset, sub, project, ds, mirrored", [
    (None, None, "/fib/ws/proj", None, True),  # embedded dataset: no volume
    ("/home/u/proj/data", "", "/fib/ws/proj", "/fib/ws/proj/data", True),
    ("/home/u/flashinfer-trace", "", "/fib/ws/proj", "/fib/ws/flashinfer-trace", True),
    ("/home/u/flashinfer-trace", "flashinfer-trace", "/fib/ws/proj",
     "/fib/ws/flashinfer-trace", True),
    ("/data/ft", "x/y", "/fib/ws/_/_/proj", "/fib/ws/data/ft", True),
    ("/home", "", "/fib/ws/proj", "/fib/volume", False),  # the dataset holds the project
    (None, "sub", "/fib/ws/proj", "/fib/volume", False),  # --modal-volume only
])
def test_layout_mirrors_the_dataset_position(dataset, sub, project, ds, mirrored):
    lay = plan.make_layout(Path("/home/u/proj"), Path("/home/u/proj/kernels"),
                           Path(dataset) if dataset else None, sub)
    assert str(lay.project) == project and lay.cwd == PurePosixPath(project) / "kernels"
    assert (str(lay.dataset) if lay.dataset else None) == ds
    assert lay.mount == lay.dataset and lay.mount_sub == (sub or "")
    assert lay.mirrored == mirrored
    assert lay.at(lay.out, "/tmp/r") == "/tmp/r/fib/out" and lay.at(lay.out) == "/fib/out"


def lister(tree: dict):
    def list_dir(path: str):
        node = tree
        for part in [p for p in path.split("/") if p]:
            node = node.get(part, {})
        return [(k, isinstance(v, dict)) for k, v in node.items()]
    return list_dir


def test_detect_root():
    ds = {"definitions": {}, "workloads": {}}
    assert plan.detect_root(lister(ds)) == ""
    assert plan.detect_root(lister({"flashinfer-trace": ds, "README": 1})) == "flashinfer-trace"
    assert plan.detect_root(lister({"a": {"b": ds}}), explicit="/a/b/") == "a/b"
    with pytest.raises(plan.VolumeProblem, match="empty"):
        plan.detect_root(lister({}))
    with pytest.raises(plan.VolumeProblem, match="several datasets"):
        plan.detect_root(lister({"a": ds, "b": ds}))
    with pytest.raises(plan.VolumeProblem, match="it has: junk/, x"):
        plan.detect_root(lister({"junk": {}, "x": 1}))
    with pytest.raises(plan.VolumeProblem, match="/a holds no definitions"):
        plan.detect_root(lister({"a": {}}), explicit="a")


def test_volume_messages_name_the_commands():
    text = controller.volume_fix("flashinfer-trace", "it does not exist", "modal")
    assert "modal volume create flashinfer-trace" in text
    assert "modal volume put flashinfer-trace ./flashinfer-trace/ /" in text
    assert "trailing slash" in text
    assert "modal volume create" not in controller.volume_fix("v", "it is empty", "modal")


def test_credentials_detection(tmp_path):
    home = {"HOME": str(tmp_path)}
    assert controller.modal_credentials(home) is None
    assert controller.modal_credentials({**home, "MODAL_TOKEN_ID": "a"}) is None
    assert controller.modal_credentials({**home, "MODAL_TOKEN_ID": "a",
                                         "MODAL_TOKEN_SECRET": "b"}) is not None
    (tmp_path / ".modal.toml").write_text('[me]\ntoken_id = "ak"\ntoken_secret = "as"\n'
                                          'active = true\n[other]\ntoken_id = "x"\n')
    assert controller.modal_credentials(home) == str(tmp_path / ".modal.toml")
    assert controller.modal_credentials({**home, "MODAL_PROFILE": "other"}) is None
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text("not toml [")
    assert controller.modal_credentials({**home, "MODAL_CONFIG_PATH": str(cfg)}) is None


# -- exit codes, sharding, merging ---------------------------------------------------------------

@pytest.mark.parametrize("codes, expected", [
    ([0], 0), ([1], 1), ([5], 5), ([0, 5], 0), ([5, 5], 5), ([1, 0], 1), ([2, 1], 2),
    ([4, 1], 4), ([3, 4], 3), ([137], 8), ([0, -9], 8), ([1, 8], 8)])
def test_combine_exit_codes(codes, expected):
    assert plan.combine_exit_codes(codes) == expected


def test_shards_partition_the_selection_by_definition():
    ids = [f"kernels::def{d}::sol{s}::{kind}[n={n}-{d}{s}{n}]"
           for d in range(7) for s in range(d % 3 + 1) for kind in ("correctness", "timing")
           for n in range(d + 1)]
    ids += ["tests/test_a.py::test_1", "tests/test_a.py::test_2", "kernels::load[x]"]
    for n in (1, 2, 3, 5, 20):
        where = shard.split(ids, n)
        assert set(where) == set(ids) and set(where.values()) <= set(range(1, n + 1))
        for i in ids:  # a definition (or a file) never spans shards
            assert where[i] == where[[j for j in ids if shard.group_key(j) ==
                                      shard.group_key(i)][0]]
        assert shard.split(list(reversed(ids)), n) == where  # order does not matter
    loads = {}
    for i, k in shard.split(ids, 3).items():
        loads[k] = loads.get(k, 0) + 1
    assert max(loads.values()) - min(loads.values()) <= max(
        sum(1 for j in ids if shard.group_key(j) == g) for g in {shard.group_key(j) for j in ids})


def test_merge_junit(tmp_path):
    def suite(name, cases, fails, t):
        failure = '<failure message="x"/>'
        body = "".join(f'<testcase classname="c" name="{c}">'
                       f'{failure if c in fails else ""}</testcase>' for c in cases)
        p = tmp_path / f"{name}.xml"
        p.write_text(f'<?xml version="1.0"?><testsuites><testsuite name="pytest" errors="0" '
                     f'failures="{len(fails)}" skipped="0" tests="{len(cases)}" time="{t}" '
                     f'timestamp="2025-01-0{name}" hostname="h">{body}</testsuite></testsuites>')
        return p
    dest = tmp_path / "out" / "j.xml"
    merge.merge_junit([suite("2", ["a", "b"], ["b"], 3.0), suite("1", ["c"], [], 5.5)], dest)
    root = ET.parse(dest).getroot()
    (s,) = root.findall("testsuite")
    assert (s.get("tests"), s.get("failures"), s.get("time"), s.get("timestamp")) == (
        "3", "1", "5.500", "2025-01-01")
    assert [c.get("name") for c in s.findall("testcase")] == ["a", "b", "c"]


def test_merge_benchmarks_and_lastfailed_and_traces(tmp_path):
    doc = merge.merge_benchmark_json([{"datetime": "2", "machine_info": {"m": 1},
                                       "benchmarks": [{"name": "a"}]},
                                      {"datetime": "1", "benchmarks": [{"name": "b"}]}])
    assert doc["benchmarks"] == [{"name": "a"}, {"name": "b"}] and doc["datetime"] == "1"
    assert doc["machine_info"] == {"m": 1}
    start = {"old_fail": True, "fixed_in_2": True}
    got = merge.merge_lastfailed(start, [{"old_fail": True, "fixed_in_2": True, "new1": True},
                                         {"old_fail": True, "new2": True}])
    assert got == {"old_fail": True, "new1": True, "new2": True}
    src, dest = tmp_path / "remote.jsonl", tmp_path / "local.jsonl"
    dest.write_text('{"old": 1}\n')
    src.write_text('{"old": 1}\n{"new": 2}\n')
    merge.append_new(src, dest, already=len('{"old": 1}\n'))
    assert dest.read_text().splitlines() == ['{"old": 1}', '{"new": 2}']


def test_saved_benchmark_runs_are_numbered_after_local_ones(tmp_path):
    storage = tmp_path / "storage"
    (storage / "Linux-CPython-3.12-64bit").mkdir(parents=True)
    (storage / "Linux-CPython-3.12-64bit" / "0007_old.json").write_text("{}")
    outs = []
    for k in (1, 2):
        o = tmp_path / f"shard{k}" / "benchmarks" / "Linux-CPython-3.12-64bit"
        o.mkdir(parents=True)
        (o / "0001_run.json").write_text(json.dumps({"benchmarks": [{"name": f"b{k}"}]}))
        outs.append(tmp_path / f"shard{k}")
    arts = plan.Artifacts({}, storage, saves=True)
    written = merge.Homecoming(arts, {}, {}).bring(outs)
    saved = storage / "Linux-CPython-3.12-64bit" / "0008_run.json"
    assert [b["name"] for b in json.loads(saved.read_text())["benchmarks"]] == ["b1", "b2"]
    assert written == [f"--benchmark-save: {saved}"]


def test_sections_keep_what_follows_the_progress():
    out = ("=== test session starts ===\nplatform x\ncollected 3 items\n\nk .F.  [100%]\n\n"
           "=== FAILURES ===\n___ t ___\nboom\n=== short test summary info ===\nFAILED t\n"
           "=== 1 failed, 2 passed in 1.00s ===\n")
    assert controller.sections(out) == ("=== FAILURES ===\n___ t ___\nboom\n"
                                        "=== short test summary info ===\nFAILED t\n")
    assert controller.sections("collected 1 item\n\nk .  [100%]\n=== 1 passed in 0.1s ===\n") \
        == ""


def test_options_are_checked_before_anything_runs(pytester):
    opts = controller.Options.from_config(pytester.parseconfig("--modal"))
    assert (opts.backend, opts.gpu, opts.timeout, opts.shards, opts.volume) == (
        "modal", "B200", 3600, 1, None)
    for bad in ("--modal-gpu=B200 x2", "--modal-gpu=B200:0", "--modal-shards=0",
                "--modal-timeout=0"):
        with pytest.raises(pytest.UsageError):
            controller.Options.from_config(pytester.parseconfig("--modal", bad))
    assert controller.Options.from_config(
        pytester.parseconfig("--modal", "--modal-gpu=h100:8")).gpu == "h100:8"


def test_reports_round_trip_through_json_and_replay(pytester):
    """A skip's longrepr is a tuple, which JSON turns into a list: replay restores it, so junit
    and the terminal accept the report (issue 16, item 4)."""
    from pytest_fib.remote import replay

    config = pytester.parseconfigure()
    rep = pytest.TestReport("a.py::t", ("a.py", 1, "t"), {}, "skipped", ("a.py", 2, "why"),
                            "setup")
    data = json.loads(json.dumps(config.hook.pytest_report_to_serializable(
        config=config, report=rep)))
    back = config.hook.pytest_report_from_serializable(config=config,
                                                      data=replay._untangle(data))
    assert back.longrepr == ("a.py", 2, "why") and back.location == ("a.py", 1, "t")


def test_collection_problems_name_the_items_on_one_side(tmp_path):
    from pytest_fib.remote.replay import Received, collection_problems, read

    def rec(nodeid):
        return {"kind": "test", "report": {"nodeid": nodeid}}

    one = Received("1/2", ["a", "b", "c"], ["a", "b"], [rec("a"), rec("b")])
    two = Received("2/2", ["a", "b"], ["c"], [rec("c"), rec("x")])
    problems = collection_problems([one, two], lambda label: True)
    assert problems[0].startswith("shards 1/2 and 2/2 collected different items")
    assert "only on shard 1/2:\n    c" in problems[0]
    assert problems[1] == "shard 2/2 reported on items it did not collect:\n    x"
    lost = Received("", ["a", "b"], ["a", "b"], [rec("a")])
    assert collection_problems([lost], lambda label: True) == [
        "the remote session collected items it never reported on:\n    b"]
    assert collection_problems([lost], lambda label: False) == []  # infra failure: said so
    assert collection_problems([lost], lambda label: True, ran_tests=False) == []
    (tmp_path / "r.jsonl").write_text('{"kind":"collected","selected":["a"],"ran":["a"]}\n'
                                      '{"kind":"test","report":{"nodeid":"a"}}\n{"kind":"te')
    got = read(tmp_path / "r.jsonl", "")
    assert got.selected == ["a"] and got.reported == ["a"]  # a torn last line is ignored
