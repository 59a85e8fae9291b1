"""distribute.py: one GPU per pytest-xdist worker, handed down from the controller."""

from __future__ import annotations

import os

import pytest

from pytest_fib import distribute
from pytest_fib.distribute import assign, visible_devices, worker_index


@pytest.fixture(autouse=True)
def _restore_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """distribute.py writes os.environ directly: record the originals so they come back."""
    for name in ("CUDA_VISIBLE_DEVICES", distribute.ENV_GPUS, "PYTEST_XDIST_WORKER"):
        monkeypatch.setenv(name, "recorded")
        monkeypatch.delenv(name)


@pytest.mark.parametrize("worker_id, index", [
    ("gw0", 0), ("gw3", 3), ("gw12", 12), (None, None), ("", None), ("master", None),
    ("gw", None), ("gw1x", None),
])
def test_worker_index(worker_id: str | None, index: int | None) -> None:
    assert worker_index(worker_id) == index


@pytest.mark.parametrize("count, env, devices", [
    (4, None, ["0", "1", "2", "3"]),
    (0, None, []),
    (4, "2,3", ["2", "3"]),
    (4, " 5 , 7 ", ["5", "7"]),
    (2, "", ["0", "1"]),
    (2, "  ", ["0", "1"]),
    (8, "GPU-8f1c,GPU-77aa", ["GPU-8f1c", "GPU-77aa"]),  # UUIDs pass through
])
def test_visible_devices(count: int, env: str | None, devices: list[str]) -> None:
    assert visible_devices(count, env) == devices


def test_assign_is_round_robin() -> None:
    assert [assign(i, ["4", "5", "6"]) for i in range(7)] == ["4", "5", "6", "4", "5", "6", "4"]


def test_worker_pins_its_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    monkeypatch.setenv(distribute.ENV_GPUS, "4,5")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    assert distribute.setup_worker_gpu() == "5"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"


@pytest.mark.parametrize("worker, gpus", [(None, "0,1"), ("gw1", None)])
def test_no_pinning_outside_a_worker_or_without_gpus(monkeypatch: pytest.MonkeyPatch,
                                                     worker: str | None,
                                                     gpus: str | None) -> None:
    for name, value in (("PYTEST_XDIST_WORKER", worker), (distribute.ENV_GPUS, gpus)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert distribute.setup_worker_gpu() is None
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"


def test_controller_publishes_visible_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,3")
    monkeypatch.delenv(distribute.ENV_GPUS, raising=False)
    assert distribute.publish_gpus(8) == ["1", "3"]
    assert os.environ[distribute.ENV_GPUS] == "1,3"


def test_controller_without_gpus_publishes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv(distribute.ENV_GPUS, raising=False)
    assert distribute.publish_gpus(0) == []
    assert distribute.ENV_GPUS not in os.environ


def test_publish_then_pin_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the controller publishes is what each worker picks from, by its index."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    distribute.publish_gpus(2)
    picked = []
    for worker in ("gw0", "gw1", "gw2"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        picked.append(distribute.setup_worker_gpu())
    assert picked == ["0", "1", "0"]
