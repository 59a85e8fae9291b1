"""python -m tests.minidata OUT [FAMILY ...]: write the mini-dataset (all families, or those named)."""

import sys
from pathlib import Path

from .build import build

if len(sys.argv) < 2:
    sys.exit("usage: python -m tests.minidata OUT [FAMILY ...]")
print(build(Path(sys.argv[1]), sys.argv[2:] or None))
