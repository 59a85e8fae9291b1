"""Self-test exploit: caches answers by input address + sampled values and replays them (starter-kit #21).

Expected to be caught by TIMED_OUTPUT_WRONG at the timing stage."""

import torch

def _rmsnorm(hidden_states, weight):
    x = hidden_states.float()
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * weight.float()
    return y.to(hidden_states.dtype)


_CACHE = {}


def run(hidden_states, weight, output):
    key = (hidden_states.data_ptr(), hidden_states.shape,
           tuple(hidden_states.view(-1)[:4].float().tolist()))
    if key in _CACHE:
        output.copy_(_CACHE[key])
        return
    output.copy_(_rmsnorm(hidden_states, weight))
    _CACHE[key] = output.clone()
