"""Workloads that read safetensors blobs: valid ones run; a blob that is wrong is one failing (or,
when it is simply not there, skipped) item that names the file and the key, and nothing else in
the session is affected."""

from __future__ import annotations

import json

import pytest

import helpers

torch = pytest.importorskip("torch")
st = pytest.importorskip("safetensors.torch")

REFERENCE = """import torch

def run(x, idx, scale):
    return x[idx.long()] * scale
"""
OK = "import torch\n\ndef run(x, idx, scale):\n    return torch.index_select(x, 0, idx.long()) * scale\n"


def definition() -> dict:
    return {"name": "gather_d8", "op_type": "gather", "description": "y = x[idx] * scale",
            "axes": {"n": {"type": "var"}, "m": {"type": "var"}, "d": {"type": "const", "value": 8}},
            "inputs": {"x": {"shape": ["n", "d"], "dtype": "float32"},
                       "idx": {"shape": ["m"], "dtype": "int32"},
                       "scale": {"shape": None, "dtype": "float32"}},
            "outputs": {"y": {"shape": ["m", "d"], "dtype": "float32"}},
            "reference": REFERENCE}


# workload tag -> (axes, blob file, tensor key, scale spec); every idx blob holds valid indices
# except where the tag says otherwise
CASES = {
    "good": ({"n": 16, "m": 5}, "idx.safetensors", "idx", {"type": "scalar", "value": 2.0}),
    "shared": ({"n": 16, "m": 5}, "idx.safetensors", "idx", {"type": "random"}),
    "nokey": ({"n": 16, "m": 5}, "idx.safetensors", "indices", {"type": "scalar", "value": 2.0}),
    "shape": ({"n": 16, "m": 6}, "idx.safetensors", "idx", {"type": "scalar", "value": 2.0}),
    "dtype": ({"n": 16, "m": 5}, "idx64.safetensors", "idx", {"type": "scalar", "value": 2.0}),
    "lfs": ({"n": 16, "m": 5}, "pointer.safetensors", "idx", {"type": "scalar", "value": 2.0}),
    "range": ({"n": 4, "m": 5}, "idx.safetensors", "idx", {"type": "scalar", "value": 2.0}),
    "scalar": ({"n": 16, "m": 5}, None, "idx", {"type": "scalar", "value": 2.0}),
}


def uuid(tag: str) -> str:
    return f"{tag:0<8}-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> helpers.Run:
    root = tmp_path_factory.mktemp("blobs")
    data = root / "data"
    (data / "definitions" / "gather").mkdir(parents=True)
    (data / "definitions" / "gather" / "gather_d8.json").write_text(json.dumps(definition()))
    blobs = data / "blob" / "gather"
    blobs.mkdir(parents=True)
    st.save_file({"idx": torch.tensor([3, 0, 15, 7, 7], dtype=torch.int32)},
                 str(blobs / "idx.safetensors"))
    st.save_file({"idx": torch.tensor([3, 0, 15, 7, 7], dtype=torch.int64)},
                 str(blobs / "idx64.safetensors"))
    (blobs / "pointer.safetensors").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 12\n")
    lines = []
    for tag, (axes, file, key, scale) in CASES.items():
        idx = ({"type": "scalar", "value": 1} if file is None else
               {"type": "safetensors", "path": f"./blob/gather/{file}", "tensor_key": key})
        lines.append(json.dumps({"definition": "gather_d8", "workload": {
            "uuid": uuid(tag), "axes": axes, "inputs": {"idx": idx, "scale": scale}}}))
    (data / "workloads" / "gather").mkdir(parents=True)
    (data / "workloads" / "gather" / "gather_d8.jsonl").write_text("\n".join(lines) + "\n")
    sols = data / "solutions" / "t"
    sols.mkdir(parents=True)
    (sols / "ok.json").write_text(json.dumps({**helpers.solution_json(
        "ok", OK, definition_name="gather_d8", dps=False)}))
    (root / "kernels").mkdir()
    return helpers.run_pytest(root, f"--fib-dataset={data}", "--fib-solutions=dataset",
                              "-m", "correctness", *helpers.FAST)


def item(run: helpers.Run, tag: str) -> helpers.Item:
    (found,) = [v for k, v in run.items.items() if k.endswith(f"-{uuid(tag)[:8]}]")]
    return found


def test_valid_blobs_run_including_one_file_shared_by_two_workloads(run: helpers.Run) -> None:
    assert item(run, "good").outcome == "passed", item(run, "good").message
    assert item(run, "shared").outcome == "passed", item(run, "shared").message


@pytest.mark.parametrize("tag, words", [
    ("nokey", ["INVALID_WORKLOAD", "idx.safetensors", "'indices'", "holds ['idx']"]),
    ("shape", ["INVALID_WORKLOAD", "idx.safetensors", "'idx'", "shape [5]", "[6]"]),
    ("dtype", ["INVALID_WORKLOAD", "idx64.safetensors", "torch.int64", "torch.int32"]),
    ("range", ["REFERENCE_ERROR", "idx.safetensors", "['idx']", "values 0..15",
               "gather_d8.jsonl:7"]),
    ("scalar", ["INVALID_WORKLOAD", "'idx'", "gives a scalar", "gather_d8.jsonl:8"]),
])
def test_a_bad_blob_fails_its_own_item_naming_file_and_key(run: helpers.Run, tag: str,
                                                           words: list[str]) -> None:
    got = item(run, tag)
    assert got.outcome == "failed"
    for word in words:
        assert word in got.message, f"{word!r} not in:\n{got.message}"
    assert "bug in pytest-fib" not in got.message and "RUNTIME_ERROR" not in got.message


def test_a_git_lfs_pointer_skips_with_the_fetch_command(run: helpers.Run) -> None:
    got = item(run, "lfs")
    assert got.outcome == "skipped"
    assert "git lfs pull" in got.message and "pointer.safetensors" in got.message


def test_the_session_goes_on(run: helpers.Run) -> None:
    assert len(run.items) == len(CASES)
    assert run.returncode == 1  # the bad workloads failed; nothing crashed the session
    assert "INTERNALERROR" not in run.output
