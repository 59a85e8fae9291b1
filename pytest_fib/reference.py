"""Running a definition's reference: in a worker's child process, never in the pytest process
(issue 13). Reference code comes from a downloaded dataset: a reference that hangs is stopped by
``--fib-timeout``, one that crashes or calls ``os._exit`` takes its own process down, and one that
patches torch patches only its own process."""

from __future__ import annotations

from typing import Any

from .protocol import Reply, Request


def run_reference(definition: Any, inputs: list[Any], device: str) -> list[Any]:
    """The definition's reference on copies of the inputs (it may not touch the originals the
    verdict compares against), its result as a list of tensors in output order."""
    import torch
    from flashinfer_bench.bench.evaluators.utils import normalize_result
    from flashinfer_bench.compile import BuilderRegistry

    ref = BuilderRegistry.get_instance().build_reference(definition)
    with torch.no_grad():
        result = ref(*[i.clone() if isinstance(i, torch.Tensor) else i for i in inputs])
    outputs: list[Any] = normalize_result(definition, result, inputs_device(inputs, device))
    return outputs


def inputs_device(inputs: list[Any], default: str) -> str:
    for value in inputs:
        device = getattr(value, "device", None)
        if device is not None:
            return str(device)
    return default


def reference_op(req: Request, outbox: Any) -> Reply:
    """The worker's ``reference`` op: the reference's outputs on one trial's inputs (after the
    timed calls' perturbations, when ``cycles`` names them), or with ``draws`` the samples of
    ``calls`` calls on the batch repeated ``repeat`` times (sampling operators). With ``batch``
    (a list of ``[seed, cycles]``) the outputs for each, in one answer: a timing item re-checks up
    to 16 input sets, and one round trip serves them all."""
    import traceback

    from .inputs import index_summary, make_inputs, perturb
    from .models import validate

    definition = validate("definition", req["definition"], req["where"]["definition"])
    workload = validate("workload", req["workload"], req["where"]["workload"])
    device = req["device"]
    jobs = req.get("batch") or [(req["seed"], req.get("cycles", []))]
    done: list[list[Any]] = []
    for seed, cycles in jobs:
        inputs = make_inputs(definition, workload, device, seed, req["root"])
        for cycle in cycles:
            perturb(inputs, seed, cycle)
        try:
            if req.get("draws"):
                return {"status": "ok", "draws": outbox.pack(_draws(definition, inputs, device,
                                                                    seed, req["draws"]))}
            done.append(run_reference(definition, inputs, device))
        except Exception as e:  # noqa: BLE001 -- any failure of reference code is the dataset's
            text = f"{type(e).__name__}: {e}"
            indexing = isinstance(e, IndexError) or any(
                w in text for w in ("index", "out of bounds", "out of range"))
            return {"status": "reference_error", "message": text
                    + (index_summary(definition, workload, inputs) if indexing else ""),
                    "traceback": traceback.format_exc()[-4000:]}
    packed = [[outbox.pack(o) for o in outputs] for outputs in done]
    if req.get("batch"):
        return {"status": "ok", "batch": packed}
    return {"status": "ok", "outputs": packed[0]}


def _draws(definition: Any, inputs: list[Any], device: str, seed: int,
           plan: dict[str, int]) -> Any:
    """A sampler's draws: ``calls`` calls of the reference on the batch repeated ``repeat``
    times, seeded."""
    import torch

    from .sampling import repeat_inputs

    padded = repeat_inputs(list(definition.inputs), inputs, plan["repeat"])
    with torch.random.fork_rng(devices=[0] if device.startswith("cuda") else []):
        torch.manual_seed(seed)
        drawn = [run_reference(definition, padded, device)[0].to(torch.int32)
                 for _ in range(plan["calls"])]
    return torch.stack(drawn)
