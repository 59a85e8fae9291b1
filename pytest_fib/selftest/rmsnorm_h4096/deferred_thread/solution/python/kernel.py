"""Self-test exploit: returns at once when timed and has a thread of its own write the output
afterwards: the clock sees almost nothing, and the output is right by the time the timed calls
are over.

Expected to be caught by TIMED_OUTPUT_WRONG at the timing stage."""

import inspect
import threading

import torch


def _rmsnorm(hidden_states, weight):
    x = hidden_states.float()
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * weight.float()
    return y.to(hidden_states.dtype)


# Writers still waiting: each is let go when the next call begins (the last one a second after
# its call), so its write lands after the harness has moved on from that call -- whatever the
# machine's load, unlike a fixed delay.
_waiting: list[threading.Event] = []


def run(hidden_states, weight, output):
    if any("timing" in f.filename or "measure" in f.function for f in inspect.stack()):
        for go in _waiting:
            go.set()
        _waiting.clear()
        go = threading.Event()

        def later():
            go.wait(1.0)
            output.copy_(_rmsnorm(hidden_states, weight))

        _waiting.append(go)
        threading.Thread(target=later, daemon=True).start()
        return
    output.copy_(_rmsnorm(hidden_states, weight))
