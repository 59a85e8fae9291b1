"""Options of ``pytest --modal``. Imported by plugin.py at start-up: keep it free of heavy
imports."""

from __future__ import annotations

import pytest

DEFAULT_VOLUME = "flashinfer-trace"
DEFAULT_GPU = "B200"
DEFAULT_TIMEOUT = 3600
BACKENDS = ("modal", "local")


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("fib-modal", "pytest-fib: run the session on Modal (docs/modal.md)")
    add = group.addoption
    add("--modal", action="store_true", default=False,
        help="run this session (same selection and options) on a Modal GPU and bring the results "
             "(exit code, --junitxml, --benchmark-json/--benchmark-save, --fib-traces, "
             "--fib-report) home. Nothing runs locally.")
    add("--modal-volume", dest="modal_volume", metavar="NAME[/PATH]", default=None,
        help=f"Modal Volume that holds the dataset (default {DEFAULT_VOLUME}; used when the "
             "session names a dataset with --fib-dataset/FIB_DATASET_PATH/ini fib_dataset, or "
             "when this option is given). Its root is found automatically: the volume root or "
             "the one sub-folder holding definitions/; NAME/PATH picks one. With "
             "--modal-backend local: a local folder standing in for the volume.")
    add("--modal-gpu", dest="modal_gpu", metavar="GPU", default=DEFAULT_GPU,
        help=f"Modal GPU for each container (default {DEFAULT_GPU}; e.g. H100, B200:2).")
    add("--modal-timeout", dest="modal_timeout", metavar="SECONDS", type=int,
        default=DEFAULT_TIMEOUT,
        help=f"hard limit on each remote container's life in seconds (default {DEFAULT_TIMEOUT}); "
             "the container is terminated when it is reached.")
    add("--modal-shards", dest="modal_shards", metavar="N", type=int, default=1,
        help="split the selection over N containers in parallel, by definition (a definition's "
             "items share one GPU), and merge the results (default 1).")
    add("--modal-backend", dest="modal_backend", choices=BACKENDS, default="modal",
        help="where --modal runs: modal (default) or local: the exact remote command in a "
             "temporary copy of the shipped files on this machine (for tests and debugging).")
    parser.addini("modal_ignore", type="linelist",
                  help="--modal: extra glob patterns (relative to the rootdir) of files not to "
                       "ship, on top of the built-in rules (VCS, caches, venvs, secrets).")
