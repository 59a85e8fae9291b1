"""Self-test exploit: right only for the batch sizes the workloads list.

Expected to be caught by INCORRECT_NUMERICAL at the property stage."""

import torch

def _rmsnorm(hidden_states, weight):
    x = hidden_states.float()
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * weight.float()
    return y.to(hidden_states.dtype)


_TESTED = {1, 7, 64, 1024, 8192, 14509}


def run(hidden_states, weight, output):
    if hidden_states.shape[0] in _TESTED:
        output.copy_(_rmsnorm(hidden_states, weight))
    else:
        output.copy_(hidden_states)
