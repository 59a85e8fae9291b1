"""sampling: top-k, top-p (nucleus) and top-k-then-top-p sampling from probabilities (public:
top_k_sampling_from_probs_v*, top_p_sampling_from_probs_v*, top_k_top_p_sampling_from_probs_v*
for 13-14 vocabularies from 32000 to 262208; probs float32 [batch, vocab], top_k int32 [batch],
top_p float32 [batch], samples int64 [batch]; no public workloads). Mirrored at vocab_size 128:
top_k_sampling_from_probs_v128, top_p_sampling_from_probs_v128,
top_k_top_p_sampling_from_probs_v128.

Semantics kept from the public references: top-k keeps the k most probable tokens (no filtering
when k <= 0 or k >= vocab); top-p keeps the most probable tokens up to and including the first one
whose cumulative probability exceeds p (p >= 1: no filtering; p <= 0: argmax); top-k-top-p filters
by top-k, renormalises, then applies top-p to the renormalised row. The kept probabilities are
renormalised and one token is drawn per row.

Inputs: probs random (the harness softmaxes random ``probs`` of op type sampling) or a safetensors
blob of sharper distributions; top_k / top_p always from safetensors blobs (random int32 would be
randint(-1024, 1024), random float32 randn), with valid values: k in [1, 128], p in (0, 1]. For the
blob distributions, p is placed just below a cumulative-sum step (within 0.04 of it), so the
token that crosses p is inside the harness's top-p tolerance of 0.05; for random rows p >= 0.3,
where single probabilities of softmax(randn) are far below 0.05.

Every workload has a row whose filter removes most of the probability mass, so a sampler that
ignores the filter is caught by the distribution check even when its few checked samples happen
to land inside the allowed set.
"""

from __future__ import annotations

from typing import Any

from ..spec import Family, Solution, Workload, const, definition, tensor, var

V = 128

_PROBS = tensor(["batch_size", "vocab_size"], "float32", "Probability distributions (after softmax)")
_TOP_K = tensor(["batch_size"], "int32", "Number of top tokens to consider for sampling per "
                "sequence")
_TOP_P = tensor(["batch_size"], "float32", "Cumulative probability threshold for nucleus "
                "sampling per sequence")
_SAMPLES = {"samples": tensor(["batch_size"], "int64", "Sampled token indices")}
_AXES = {"batch_size": var("Number of sequences to sample from"),
         "vocab_size": const(V, "Size of the vocabulary")}

# Reference helpers, shared by the three references (vectorised over the batch: the harness
# draws thousands of rows per call).
_HELPERS = f"""
import torch


def _rank(row_probs):
    # rank[b, t] = position of token t when row b is sorted by descending probability
    order = torch.argsort(row_probs, dim=-1, descending=True, stable=True)
    rank = torch.empty_like(order)
    # the scatter source on the inputs' device (scatter_ needs self, index and src on one device)
    positions = torch.arange(row_probs.shape[1], device=row_probs.device)
    rank.scatter_(1, order, positions.expand_as(order).contiguous())
    return order, rank


def _top_k(probs, top_k):
    _, rank = _rank(probs)
    k = top_k.to(torch.int64).unsqueeze(1)
    keep = (rank < k) | (k <= 0) | (k >= {V})
    kept = probs * keep
    return kept / kept.sum(dim=-1, keepdim=True)


def _top_p(probs, top_p):
    order, rank = _rank(probs)
    ordered = torch.gather(probs, 1, order)
    before = torch.cumsum(ordered, dim=-1) - ordered  # mass of the strictly more probable tokens
    p = top_p.to(torch.float32).unsqueeze(1)
    keep_sorted = (before <= p) | (p >= 1.0)
    keep_sorted[:, 0] = True
    keep = torch.gather(keep_sorted, 1, rank)
    kept = probs * keep
    kept = kept / kept.sum(dim=-1, keepdim=True)
    # p <= 0 degenerates to argmax
    greedy = torch.nn.functional.one_hot(probs.argmax(dim=-1), {V}).to(probs.dtype)
    return torch.where(p <= 0.0, greedy, kept)


def _draw(dist):
    return torch.multinomial(dist, 1, replacement=True).squeeze(1)
"""

TOP_K = definition(
    f"top_k_sampling_from_probs_v{V}", "sampling",
    f"Top-k sampling from probabilities, vocab_size={V} (mini-dataset).",
    _AXES, {"probs": _PROBS, "top_k": _TOP_K}, _SAMPLES,
    _HELPERS + f"""

@torch.no_grad()
def run(probs, top_k):
    assert probs.shape[1] == {V}
    return _draw(_top_k(probs.to(torch.float32), top_k))
""", tags=["status:verified", "source:pytest-fib-minidata",
           "fi_api:flashinfer.sampling.top_k_sampling_from_probs"])

TOP_P = definition(
    f"top_p_sampling_from_probs_v{V}", "sampling",
    f"Top-p (nucleus) sampling from probabilities, vocab_size={V} (mini-dataset).",
    _AXES, {"probs": _PROBS, "top_p": _TOP_P}, _SAMPLES,
    _HELPERS + f"""

@torch.no_grad()
def run(probs, top_p):
    assert probs.shape[1] == {V}
    return _draw(_top_p(probs.to(torch.float32), top_p))
""", tags=["status:verified", "source:pytest-fib-minidata",
           "fi_api:flashinfer.sampling.top_p_sampling_from_probs"])

TOP_K_TOP_P = definition(
    f"top_k_top_p_sampling_from_probs_v{V}", "sampling",
    f"Top-k then top-p sampling from probabilities, vocab_size={V}: top-k filter, renormalise, "
    "then top-p on the renormalised row (mini-dataset).",
    _AXES, {"probs": _PROBS, "top_k": _TOP_K, "top_p": _TOP_P}, _SAMPLES,
    _HELPERS + f"""

@torch.no_grad()
def run(probs, top_k, top_p):
    assert probs.shape[1] == {V}
    return _draw(_top_p(_top_k(probs.to(torch.float32), top_k), top_p))
""", tags=["status:verified", "source:pytest-fib-minidata",
           "fi_api:flashinfer.sampling.top_k_top_p_sampling_from_probs"])

# The correct solutions: threshold filters (k-th largest value as a pivot; nucleus by a sorted
# prefix sum) and inverse-CDF sampling with one uniform per row, as a sampling kernel does.
_SOLUTION_HELPERS = """
import torch


def keep_top_k(probs, top_k):
    v = probs.shape[1]
    k = top_k.long().clamp(1, v)
    pivot = torch.sort(probs, dim=1, descending=True).values.gather(1, (k - 1)[:, None])
    keep = probs >= pivot
    no_filter = (top_k.long() <= 0) | (top_k.long() >= v)
    return keep | no_filter[:, None]


def keep_top_p(probs, top_p):
    vals, idx = torch.sort(probs, dim=1, descending=True)
    exclusive = torch.cumsum(vals, dim=1) - vals
    p = top_p.float()[:, None]
    keep_sorted = (exclusive <= p) | (p >= 1)
    keep_sorted[:, 0] = True
    keep = torch.zeros_like(keep_sorted)
    keep.scatter_(1, idx, keep_sorted)
    return keep


def inverse_cdf(weights):
    # one uniform per row, scaled by the row's total: no explicit renormalisation needed
    cdf = torch.cumsum(weights.double(), dim=1)
    # drawn on the inputs' device: a CPU uniform cannot be compared with a CUDA cdf
    u = torch.rand(weights.shape[0], 1, dtype=torch.float64, device=weights.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).clamp_(max=weights.shape[1] - 1).squeeze(1)
"""

TOP_K_OK = _SOLUTION_HELPERS + """

def run(probs, top_k):
    p = probs.float()
    return inverse_cdf(p * keep_top_k(p, top_k))
"""

TOP_P_OK = _SOLUTION_HELPERS + """

def run(probs, top_p, samples):
    p = probs.float()
    greedy = p.argmax(dim=1)
    drawn = inverse_cdf(p * keep_top_p(p, top_p))
    samples.copy_(torch.where(top_p <= 0, greedy, drawn))
"""

TOP_K_TOP_P_OK = _SOLUTION_HELPERS + """

def run(probs, top_k, top_p):
    p = probs.float()
    p = p * keep_top_k(p, top_k)
    p = p / p.sum(dim=1, keepdim=True)  # top-p is taken on the renormalised top-k row
    return inverse_cdf(p * keep_top_p(p, top_p))
"""

# Off by one in the pivot: keeps the k+1 most probable tokens. Its rare extra token is seen only
# among the many draws of the distribution check, never in the few samples of the trials.
TOP_K_PLUS_ONE = _SOLUTION_HELPERS + """

def run(probs, top_k):
    p = probs.float()
    return inverse_cdf(p * keep_top_k(p, top_k + 1))
"""

# Samples the full distribution: the top_k argument is accepted and never applied.
TOP_K_IGNORED = _SOLUTION_HELPERS + """

def run(probs, top_k):
    return inverse_cdf(probs.float())
"""

# Greedy decoding in place of sampling: always the most probable token (inside the top-k set,
# so only the distribution check can see it).
ARGMAX_K = """
import torch

def run(probs, top_k):
    return probs.argmax(dim=1)
"""

# The nucleus prefix sum taken in vocabulary order (the sort before the scan is missing).
TOP_P_UNSORTED = _SOLUTION_HELPERS + """

def run(probs, top_p, samples):
    p = probs.float()
    exclusive = torch.cumsum(p, dim=1) - p
    keep = (exclusive <= top_p.float()[:, None]) | (top_p[:, None] >= 1)
    keep[:, 0] = True
    samples.copy_(inverse_cdf(p * keep))
"""

ARGMAX_P = """
import torch

def run(probs, top_p, samples):
    samples.copy_(probs.argmax(dim=1))
"""

# Applies top-k and forgets the top-p stage.
TOP_P_IGNORED = _SOLUTION_HELPERS + """

def run(probs, top_k, top_p):
    p = probs.float()
    return inverse_cdf(p * keep_top_k(p, top_k))
"""

# Inverse CDF on the exclusive prefix sum: every draw lands one token to the right of the token
# it should be (clamped at the end of the vocabulary).
EXCLUSIVE_SCAN = _SOLUTION_HELPERS + """

def run(probs, top_k, top_p):
    p = probs.float()
    p = p * keep_top_k(p, top_k)
    p = p / p.sum(dim=1, keepdim=True)
    w = (p * keep_top_p(p, top_p)).double()
    exclusive = torch.cumsum(w, dim=1) - w
    u = torch.rand(w.shape[0], 1, dtype=torch.float64, device=w.device) * w.sum(dim=1, keepdim=True)
    return (exclusive <= u).sum(dim=1).clamp(max=w.shape[1] - 1)
"""


def _sharp_probs(gen: Any, rows: int) -> Any:
    """Sharper distributions than softmax(randn): a few tokens hold most of the mass."""
    import torch

    return torch.softmax(2.5 * torch.randn(rows, V, generator=gen), dim=-1)


def _p_at_step(row: Any, j: int) -> float:
    """A top-p just below the cumulative sum at sorted position j (j >= 1), within 0.04 of it:
    keeps tokens 0..j and the boundary token is unambiguous."""
    import torch

    c = torch.cumsum(torch.sort(row, descending=True).values.double(), 0)
    gap = float(c[j] - c[j - 1])
    return float(c[j]) - min(0.04, gap / 2)


def _blob(name: str, **tensors: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Workload input specs and the blob for tensors stored in one file."""
    file = f"{name}.safetensors"
    specs = {k: {"type": "safetensors", "file": file, "tensor_key": k} for k in tensors}
    return specs, {file: dict(tensors)}


def make(gen: Any) -> Family:
    import torch

    def i32(*v: int) -> Any:
        return torch.tensor(v, dtype=torch.int32)

    def f32(*v: float) -> Any:
        return torch.tensor(v, dtype=torch.float32)

    workloads = []

    def add(d: dict[str, Any], file: str, random_probs: bool, **tensors: Any) -> None:
        batch = next(iter(tensors.values())).shape[0]
        specs, blobs = _blob(file, **tensors)
        if random_probs:
            specs["probs"] = {"type": "random"}
        workloads.append(Workload(d["name"], {"batch_size": batch}, specs, blobs))

    # top-k: k from 1 (greedy) to 128 (no filter); each workload has a row with k <= 20.
    add(TOP_K, "k_b1", True, top_k=i32(20))
    add(TOP_K, "k_b6", True, top_k=i32(1, 8, 50, 128, 3, 16))
    sharp = _sharp_probs(gen, 5)
    add(TOP_K, "k_b5_sharp", False, probs=sharp, top_k=i32(4, 128, 2, 30, 10))

    # top-p: random rows with p >= 0.3; sharp rows with p at a cumulative step.
    add(TOP_P, "p_b1", True, top_p=f32(0.4))
    add(TOP_P, "p_b5", True, top_p=f32(0.3, 0.55, 1.0, 0.8, 0.35))
    sharp = _sharp_probs(gen, 4)
    ps = [_p_at_step(sharp[0], 2), _p_at_step(sharp[1], 5), 1.0, _p_at_step(sharp[3], 1)]
    add(TOP_P, "p_b4_sharp", False, probs=sharp, top_p=f32(*ps))

    # top-k then top-p
    add(TOP_K_TOP_P, "kp_b1", True, top_k=i32(40), top_p=f32(0.3))
    add(TOP_K_TOP_P, "kp_b5", True, top_k=i32(10, 128, 32, 60, 1),
        top_p=f32(0.9, 0.4, 1.0, 0.5, 0.5))
    sharp = _sharp_probs(gen, 3)
    add(TOP_K_TOP_P, "kp_b3_sharp", False, probs=sharp, top_k=i32(128, 6, 64),
        top_p=f32(_p_at_step(sharp[0], 3), 1.0, _p_at_step(sharp[2], 2)))

    k, p, kp = TOP_K["name"], TOP_P["name"], TOP_K_TOP_P["name"]
    return Family("sampling", [TOP_K, TOP_P, TOP_K_TOP_P], workloads, [
        Solution(f"{k}_py", k, TOP_K_OK),
        Solution(f"{k}_ignores_k", k, TOP_K_IGNORED, "INCORRECT_NUMERICAL",
                 "samples the full distribution: top_k is never applied"),
        Solution(f"{k}_keeps_k_plus_1", k, TOP_K_PLUS_ONE, "INCORRECT_NUMERICAL",
                 "off by one in the pivot: keeps k+1 tokens"),
        Solution(f"{k}_argmax", k, ARGMAX_K, "INCORRECT_NUMERICAL",
                 "greedy: always returns the most probable token"),
        Solution(f"{p}_py", p, TOP_P_OK, dps=True),
        Solution(f"{p}_unsorted_scan", p, TOP_P_UNSORTED, "INCORRECT_NUMERICAL",
                 "takes the nucleus prefix sum in vocabulary order, without sorting", dps=True),
        Solution(f"{p}_argmax", p, ARGMAX_P, "INCORRECT_NUMERICAL",
                 "greedy: always returns the most probable token", dps=True),
        Solution(f"{kp}_py", kp, TOP_K_TOP_P_OK),
        Solution(f"{kp}_ignores_p", kp, TOP_P_IGNORED, "INCORRECT_NUMERICAL",
                 "applies top-k only; the top-p stage is missing"),
        Solution(f"{kp}_exclusive_scan", kp, EXCLUSIVE_SCAN, "INCORRECT_NUMERICAL",
                 "inverse CDF over the exclusive prefix sum: each draw is the next token over"),
    ])
