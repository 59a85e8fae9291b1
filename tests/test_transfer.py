"""transfer.py and the controller's use of it: outputs reach the controller as its own copies,
and a failure to map a shared output falls back to host copies instead of failing the item."""

from __future__ import annotations

from typing import Any

import pickle

import pytest

torch = pytest.importorskip("torch")

from pytest_fib import runner, transfer  # noqa: E402


def test_host_tensors_travel_as_contiguous_copies() -> None:
    box = transfer.Outbox(ipc=True)  # no device tensor here: IPC does not apply
    x = torch.arange(12.0).view(3, 4)
    sent = box.pack(x.t())
    assert isinstance(sent, transfer.HostBytes) and sent.data.numel() == 12 * 4
    got = transfer.unpack(pickle.loads(pickle.dumps(sent)))
    assert torch.equal(got, x.t()) and got.is_contiguous()
    assert got.data_ptr() != x.data_ptr()


@pytest.mark.parametrize("dtype", ["float8_e4m3fn", "float8_e5m2", "bfloat16", "int32", "bool"])
def test_every_dtype_survives_the_trip(dtype: str) -> None:
    """torch 2.13 cannot unpickle an fp8 tensor; outputs travel as bytes, so fp8 outputs arrive."""
    x = torch.randn(5, 3).clamp(-2, 2).to(getattr(torch, dtype))
    got = transfer.unpack(pickle.loads(pickle.dumps(transfer.Outbox(ipc=False).pack(x))))
    assert got.dtype == x.dtype and torch.equal(got.view(torch.uint8), x.view(torch.uint8))


def test_non_tensors_travel_as_values_or_their_repr() -> None:
    box = transfer.Outbox(ipc=True)
    assert box.pack(3) == 3 and box.pack(None) is None
    assert box.pack({"a": 1}) == "{'a': 1}"


def test_a_shared_tensor_is_copied_on_arrival() -> None:
    original = torch.ones(4)
    shared = transfer.SharedTensor(lambda t: t, (original,))
    own = transfer.unpack(shared)
    original.fill_(7.0)  # the worker writes again after answering: the verdict does not move
    assert torch.equal(own, torch.ones(4))


def _bare_runner(calls: list[dict[str, Any]]) -> Any:
    r = runner.Runner.__new__(runner.Runner)
    r.transfer = "ipc"
    r.call = lambda request, case: calls.append(request) or {"status": "ok", "trials": []}
    return r


def test_a_mapping_failure_falls_back_to_host_copies(capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("CUDA IPC not permitted")

    calls: list[dict[str, Any]] = []
    r = _bare_runner(calls)
    resp = {"status": "ok", "trials": [{"outputs": [transfer.SharedTensor(broken, ())]}]}
    again = r.received({"op": "correctness", "transfer": "ipc"}, resp, case=None)
    assert again == {"status": "ok", "trials": []}
    assert calls == [{"op": "correctness", "transfer": "host"}]
    assert r.transfer == "host"  # and every later request asks for host copies
    assert "CUDA IPC not permitted" in capsys.readouterr().err


def test_host_copies_are_received_as_they_are() -> None:
    r = _bare_runner([])
    out = torch.zeros(2)
    resp = {"status": "ok", "checked": {3: {"outputs": [out], "mutated": None}}}
    assert r.received({"transfer": "host"}, resp, case=None)["checked"][3]["outputs"][0] is out
