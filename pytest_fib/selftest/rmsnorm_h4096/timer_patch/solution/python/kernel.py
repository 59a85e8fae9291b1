"""Self-test exploit: replaces time.perf_counter / CUDA events to report a faster time.

Expected to be caught by TIMER_TAMPERED at the timing stage."""

import torch

def _rmsnorm(hidden_states, weight):
    x = hidden_states.float()
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * weight.float()
    return y.to(hidden_states.dtype)


import time as _time

_real = _time.perf_counter
_time.perf_counter = lambda: _real() * 0.5
if torch.cuda.is_available():
    torch.cuda.Event.elapsed_time = lambda self, end: 0.001


def run(hidden_states, weight, output):
    output.copy_(_rmsnorm(hidden_states, weight))
