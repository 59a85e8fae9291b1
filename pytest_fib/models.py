"""Full validation with flashinfer-bench's pydantic models (imports torch through flashinfer_bench).

Collection reads the JSON lightly (``dataset.py``); items validate here at setup, once per file
content, so a file that the light read accepted but the models refuse still fails by name.
"""

from __future__ import annotations

import functools
import json
from typing import Any


class InvalidFile(Exception):
    def __init__(self, where: str, error: Exception) -> None:
        first = str(error).strip().splitlines()
        summary = "; ".join(line.strip() for line in first[:6])
        super().__init__(f"{where}: flashinfer-bench cannot load it: {summary}")


@functools.lru_cache(maxsize=4096)
def _validate(kind: str, text: str) -> Any:
    from flashinfer_bench.data import Definition, Solution, Workload

    model = {"definition": Definition, "workload": Workload, "solution": Solution}[kind]
    return model.model_validate_json(text)


def validate(kind: str, raw: dict[str, Any], where: str) -> Any:
    try:
        # Key order is meaning here: a definition's inputs/outputs order is the call signature.
        return _validate(kind, json.dumps(raw))
    except Exception as e:  # noqa: BLE001 -- pydantic.ValidationError, validators' ValueError
        raise InvalidFile(where, e) from None
