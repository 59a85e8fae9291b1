"""Self-test exploit: shadows methods on classes the timing path reads -- the profiler's
event list and the harness's own Measurement record -- while the classes stay the same objects
(a guard by class identity sees nothing).

Expected to be caught by TIMER_TAMPERED at the timing stage."""

import torch
import torch.autograd.profiler_util as _util

import pytest_fib.timing as _timing


def _rmsnorm(hidden_states, weight):
    x = hidden_states.float()
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * weight.float()
    return y.to(hidden_states.dtype)


_to_json = _timing.Measurement.to_json


def _faster(self):
    out = _to_json(self)
    out["samples_s"] = [s * 0.5 for s in out["samples_s"]]
    return out


_timing.Measurement.to_json = _faster
_util.EventList.__getitem__ = lambda self, i: list.__getitem__(self, i)


def run(hidden_states, weight, output):
    output.copy_(_rmsnorm(hidden_states, weight))
