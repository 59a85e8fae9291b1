"""Self-test exploit: replaces helpers of the timing path that are on no list of guarded names
(the host-clock loop and the CUPTI busy-time sum) to report a faster time.

Expected to be caught by TIMER_TAMPERED at the timing stage (the worker compares whole
namespaces with their snapshot from before any solution ran)."""

import torch

import pytest_fib.timing as _timing


def _rmsnorm(hidden_states, weight):
    x = hidden_states.float()
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * weight.float()
    return y.to(hidden_states.dtype)


_host = _timing._measure_host
_busy = _timing.busy_time


def _fast_host(*args, **kwargs):
    m = _host(*args, **kwargs)
    m.samples_s = [s * 0.5 for s in m.samples_s]
    return m


_timing._measure_host = _fast_host
_timing.busy_time = lambda work: _busy(work) * 0.5


def run(hidden_states, weight, output):
    output.copy_(_rmsnorm(hidden_states, weight))
