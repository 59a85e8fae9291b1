"""Self-test exploit: skips its work when it sees the harness's timing code on the stack.

Expected to be caught by TIMED_OUTPUT_WRONG at the timing stage."""

import torch

def _rmsnorm(hidden_states, weight):
    x = hidden_states.float()
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * weight.float()
    return y.to(hidden_states.dtype)


import inspect


def run(hidden_states, weight, output):
    if any('timing' in f.filename or 'measure' in f.function for f in inspect.stack()):
        return
    output.copy_(_rmsnorm(hidden_states, weight))
