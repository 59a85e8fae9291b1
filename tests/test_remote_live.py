"""Live test against the real Modal service: runs only when Modal credentials are present
(MODAL_TOKEN_ID/MODAL_TOKEN_SECRET or a token in ~/.modal.toml) and the client is installed.

It costs money (two GPU containers for a minute or two; the first run also builds the image,
~10 minutes). ``FIB_MODAL_LIVE=0`` skips it anyway; ``FIB_MODAL_LIVE_GPU`` picks the GPU
(default B200). Uses the embedded default dataset, so no volume is needed.
"""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_fib.remote.controller import modal_credentials

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
KITS = ("rmsnorm_h4096/rmsnorm_h4096_triton", "fused_add_rmsnorm_h4096/fused_add_rmsnorm_h4096_triton")

pytestmark = [
    pytest.mark.skipif(modal_credentials() is None, reason="no Modal credentials"),
    pytest.mark.skipif(os.environ.get("FIB_MODAL_LIVE") == "0", reason="FIB_MODAL_LIVE=0"),
]


def test_live_sharded_session_on_modal(pytester: pytest.Pytester) -> None:
    pytest.importorskip("modal")
    for kit in KITS:
        shutil.copytree(REPO / "kernels" / kit, pytester.path / "kernels" / kit)
    gpu = os.environ.get("FIB_MODAL_LIVE_GPU", "B200")
    result = pytester.runpytest_subprocess(
        "--modal", f"--modal-gpu={gpu}", "--modal-shards=2", "--modal-timeout=1800",
        "-m", "correctness", "-p", "no:randomly", "--junitxml=live.xml", "-rA", timeout=2400)
    assert result.ret == 0, result.stderr.str()
    result.stderr.fnmatch_lines(["*shard 1/2: running (sb-*", "*shard ?/2: done*"])
    result.stdout.fnmatch_lines(["*device cuda*", "*passed*(2 shards)*"])
    cases = list(ET.parse(pytester.path / "live.xml").getroot().iter("testcase"))
    assert len(cases) >= 8 and not any(c.find("failure") is not None for c in cases)
