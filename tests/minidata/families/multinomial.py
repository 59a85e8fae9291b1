"""multinomial: draw one token per row from a probability distribution (public:
sampling_multinomial_v128256 / _v151936 / _v201088; probs float32 [batch, vocab], a scalar int64
``num_samples`` (1), output int64 [batch, num_samples_out=1]; no public workloads). Mirrored as
sampling_multinomial_v128 (vocab_size shrunk to 128).

Inputs: ``probs`` random in some workloads (the harness softmaxes a random ``probs`` of op type
multinomial, as flashinfer-bench does for op type sampling) and a safetensors blob in another:
rows with a small support (most tokens at probability exactly 0), a one-hot row and a sharp row,
which a sampler must never leave. ``num_samples`` is always the scalar 1: a random int64 scalar
would be randint(-1024, 1024).
"""

from __future__ import annotations

from typing import Any

from ..spec import Family, Solution, Workload, const, definition, tensor, var

V = 128
NAME = f"sampling_multinomial_v{V}"

MULTINOMIAL = definition(
    NAME, "multinomial",
    f"Multinomial sampling from a probability distribution over vocab_size={V}, one sample per "
    "row (mini-dataset).",
    {"batch_size": var("Batch size"), "vocab_size": const(V),
     "num_samples_out": const(1, "Number of samples drawn (1 for token generation)")},
    {"probs": tensor(["batch_size", "vocab_size"], "float32",
                     "Probability distribution over vocabulary"),
     "num_samples": tensor(None, "int64", "Number of samples to draw")},
    {"output": tensor(["batch_size", "num_samples_out"], "int64", "Sampled token indices")},
    f"""
    import torch

    @torch.no_grad()
    def run(probs, num_samples):
        assert probs.shape[1] == {V} and int(num_samples) == 1
        return torch.multinomial(probs.to(torch.float32), int(num_samples), replacement=True)
    """)

# Inverse-CDF sampling, one uniform per row scaled by the row total (unnormalised rows work).
OK = """
import torch

def run(probs, num_samples, output):
    cdf = torch.cumsum(probs.double(), dim=1)
    # drawn on the inputs' device: a CPU uniform cannot be searched in a CUDA cdf
    u = torch.rand(probs.shape[0], int(num_samples), dtype=torch.float64,
                   device=probs.device) * cdf[:, -1:]
    idx = torch.searchsorted(cdf, u, right=True).clamp_(max=probs.shape[1] - 1)
    output.copy_(idx)
"""

# Greedy: the most probable token every time.
WRONG_ARGMAX = """
import torch

def run(probs, num_samples, output):
    output.copy_(probs.argmax(dim=1, keepdim=True))
"""

# Inverse CDF over the exclusive prefix sum: each draw is the token after the right one.
WRONG_EXCLUSIVE = """
import torch

def run(probs, num_samples, output):
    w = probs.double()
    exclusive = torch.cumsum(w, dim=1) - w
    u = torch.rand(w.shape[0], 1, dtype=torch.float64, device=w.device) * w.sum(dim=1, keepdim=True)
    output.copy_((exclusive <= u).sum(dim=1, keepdim=True).clamp(max=w.shape[1] - 1))
"""

# Returns one token per row as a flat [batch] vector, dropping the num_samples axis.
WRONG_FLAT = """
import torch

def run(probs, num_samples):
    return torch.multinomial(probs.float(), 1).squeeze(1)
"""


def _blob_probs(gen: Any) -> Any:
    import torch

    rows = torch.zeros(4, V)
    support = torch.randperm(V, generator=gen)[:3]
    rows[0, support] = torch.tensor([0.5, 0.3, 0.2])  # three tokens, the rest exactly 0
    rows[1, int(torch.randint(0, V, (1,), generator=gen))] = 1.0  # one-hot: deterministic
    rows[2] = torch.softmax(3.0 * torch.randn(V, generator=gen), 0)  # sharp
    support = torch.randperm(V, generator=gen)[:16]  # 16 equally likely tokens
    rows[3, support] = 1.0 / 16
    return rows


def make(gen: Any) -> Family:
    scalar = {"type": "scalar", "value": 1}
    workloads = [
        Workload(NAME, {"batch_size": 1}, {"probs": {"type": "random"}, "num_samples": scalar}),
        Workload(NAME, {"batch_size": 6}, {"probs": {"type": "random"}, "num_samples": scalar}),
        Workload(NAME, {"batch_size": 4},
                 {"probs": {"type": "safetensors", "file": "probs_b4.safetensors",
                            "tensor_key": "probs"}, "num_samples": scalar},
                 {"probs_b4.safetensors": {"probs": _blob_probs(gen)}}),
    ]
    return Family("multinomial", [MULTINOMIAL], workloads, [
        Solution(f"{NAME}_py", NAME, OK, dps=True),
        Solution(f"{NAME}_argmax", NAME, WRONG_ARGMAX, "INCORRECT_NUMERICAL",
                 "greedy: always the most probable token", dps=True),
        Solution(f"{NAME}_exclusive_scan", NAME, WRONG_EXCLUSIVE, "INCORRECT_NUMERICAL",
                 "inverse CDF over the exclusive prefix sum: each draw is the next token over",
                 dps=True),
        Solution(f"{NAME}_flat", NAME, WRONG_FLAT, "INCORRECT_SHAPE",
                 "returns a [batch] vector instead of [batch, 1]"),
    ])
