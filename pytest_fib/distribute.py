"""Many GPUs on one host with pytest-xdist: one worker per GPU, timings that stay correct.

* The controller learns the visible GPUs (``FIB_GPUS`` or the driver) and hands the list to its
  xdist workers through the environment (workers inherit it when xdist starts them). Each worker
  takes ``gpus[index % len(gpus)]`` as its only ``CUDA_VISIBLE_DEVICES`` before anything in it
  initialises CUDA, so its references, its solution worker and its timings all use that GPU alone.
* ``-n N`` without ``--dist`` means ``--dist loadscope`` here: a solution's items (correctness
  before timing) stay on one worker and its GPU.
* pytest-benchmark disables itself under xdist; each timing report carries its samples instead and
  the controller rebuilds them (``bench.py``), so ``--benchmark-json`` and ``--benchmark-compare``
  see every item.
"""

from __future__ import annotations

import os
import re

ENV_GPUS = "PYTEST_FIB_GPUS"  # controller -> workers: comma-separated visible device ids


def worker_index(worker_id: str | None) -> int | None:
    """'gw3' -> 3; None outside xdist."""
    if not worker_id:
        return None
    m = re.fullmatch(r"gw(\d+)", worker_id)
    return int(m.group(1)) if m else None


def visible_devices(count: int, env: str | None) -> list[str]:
    """The device ids this process may use: CUDA_VISIBLE_DEVICES if set, else 0..count-1."""
    if env is not None and env.strip() != "":
        return [d.strip() for d in env.split(",") if d.strip()]
    return [str(i) for i in range(count)]


def assign(index: int, devices: list[str]) -> str:
    """The GPU for xdist worker ``index``: round-robin over the visible devices."""
    return devices[index % len(devices)]


def setup_worker_gpu() -> str | None:
    """In an xdist worker: pin this process to its GPU. Returns the device id, or None."""
    index = worker_index(os.environ.get("PYTEST_XDIST_WORKER"))
    gpus = os.environ.get(ENV_GPUS)
    if index is None or not gpus:
        return None
    device = assign(index, gpus.split(","))
    os.environ["CUDA_VISIBLE_DEVICES"] = device
    return device


def publish_gpus(count: int) -> list[str]:
    """In the controller: tell future xdist workers which GPUs there are."""
    devices = visible_devices(count, os.environ.get("CUDA_VISIBLE_DEVICES"))
    if devices:
        os.environ[ENV_GPUS] = ",".join(devices)
    return devices
