"""Self-test exploit: writes all zeros.

Expected to be caught by INCORRECT_NUMERICAL at the correctness stage."""

import torch

def _rmsnorm(hidden_states, weight):
    x = hidden_states.float()
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * weight.float()
    return y.to(hidden_states.dtype)


def run(hidden_states, weight, output):
    output.zero_()
