"""Self-test exploit: does its work on a side stream so default-stream events see nothing.

Expected to be caught by SIDE_STREAM at the timing stage."""

import torch

def _rmsnorm(hidden_states, weight):
    x = hidden_states.float()
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * weight.float()
    return y.to(hidden_states.dtype)


_SIDE = None


def run(hidden_states, weight, output):
    global _SIDE
    if _SIDE is None:
        _SIDE = torch.cuda.Stream()
    _SIDE.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(_SIDE):
        output.copy_(_rmsnorm(hidden_states, weight))
