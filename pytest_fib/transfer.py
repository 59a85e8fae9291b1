"""Outputs from the worker to the controller, which judges them.

On a GPU an output travels by CUDA IPC: the worker sends a handle to its device buffer, the
controller maps it and copies it into its own memory at once (device to device), and the worker
holds the buffer until its next request. Through host memory and a pickle, one 119 MB output (an
rmsnorm at batch 14509) costs a device-to-host copy, two host copies, a socket and a host-to-device
copy: about 0.3 s, several times per item, which made the largest workloads' items take seconds
(tools/gpu/walltime.sh). Without a GPU, or for a value that is not a device tensor, a contiguous
host copy travels instead.

The copy is made before the verdict is computed, so a solution that keeps writing to its buffer
afterwards changes nothing the controller sees.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class SharedTensor:
    """A device tensor of the worker, as torch's CUDA IPC reduction describes it; ``dtype`` set
    when it travels as its bytes (see ``as_bytes``)."""

    rebuild: Any
    args: tuple[Any, ...]
    dtype: Any = None
    shape: tuple[int, ...] = ()


@dataclasses.dataclass
class HostBytes:
    """A host tensor as its raw bytes: torch 2.13 cannot unpickle fp8 or fp4 tensors
    ('UntypedStorage has no attribute dtype'), so a tensor never travels as itself."""

    data: Any  # uint8 tensor
    dtype: Any
    shape: tuple[int, ...]


def as_bytes(tensor: Any) -> Any:
    import torch

    return tensor.contiguous().reshape(-1).view(torch.uint8)


def from_bytes(data: Any, dtype: Any, shape: tuple[int, ...]) -> Any:
    return data.view(dtype).reshape(shape)


def _bytes_only(dtype: Any) -> bool:
    """Dtypes whose storage torch's reductions do not carry faithfully (fp8, fp4)."""
    import torch

    return dtype.itemsize <= 1 and dtype not in (torch.uint8, torch.int8, torch.bool)


class Outbox:
    """The worker's side: what it sends, and the buffers it must keep alive meanwhile."""

    def __init__(self, ipc: bool) -> None:
        self.ipc = ipc
        self._held: list[Any] = []

    def release(self) -> None:
        """At the next request: the controller has copied everything it was sent."""
        self._held.clear()

    def pack(self, value: Any) -> Any:
        import torch

        if not isinstance(value, torch.Tensor):
            return value if isinstance(value, (int, float, bool, type(None))) else repr(value)
        tensor = value.detach()
        if self.ipc and tensor.is_cuda and tensor.numel():
            from torch.multiprocessing.reductions import reduce_tensor

            if _bytes_only(tensor.dtype):
                raw = as_bytes(tensor)
                self._held.append(raw)
                rebuild, args = reduce_tensor(raw)  # type: ignore[no-untyped-call,unused-ignore]
                return SharedTensor(rebuild, args, tensor.dtype, tuple(tensor.shape))
            rebuild, args = reduce_tensor(tensor)  # type: ignore[no-untyped-call,unused-ignore]
            self._held.append(tensor)
            return SharedTensor(rebuild, args)
        # A contiguous host copy of its bytes: a view would otherwise pickle its whole storage.
        return HostBytes(as_bytes(tensor.to("cpu")).clone(), tensor.dtype, tuple(tensor.shape))


def unpack(value: Any) -> Any:
    """The controller's side: its own copy of a value the worker sent."""
    # By name, not isinstance: pytester re-imports this module between in-process runs, and an
    # answer unpickled there is an instance of the newer class (seen under pytest 8.1).
    kind = type(value).__name__
    if kind == "SharedTensor":
        mapped = value.rebuild(*value.args)
        import torch

        own = mapped.clone()
        if own.is_cuda:
            torch.cuda.current_stream(own.device).synchronize()  # copied before we unmap
        del mapped  # unmaps the worker's buffer (torch counts the references)
        return own if value.dtype is None else from_bytes(own, value.dtype, value.shape)
    if kind == "HostBytes":
        return from_bytes(value.data, value.dtype, value.shape)
    return value
