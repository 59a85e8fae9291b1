"""Root conftest of the pytest-fib project itself.

The plugin registers through its ``pytest11`` entry point (pyproject.toml), not from here: pluggy
refuses a second registration under the same name. What lives here is project policy:

* a bare ``pytest`` in this folder is the kernels job (testpaths = kernels); the plugin's own tests
  run when asked for (``pytest tests``, ``./dev test``). pytest can lose the ini file -- an option
  value written with a space, ``--fib-dataset ../data``, makes ``../`` a rootdir candidate -- and
  then collects the whole folder: the tests stay out of such a run all the same.
* a hypothesis profile for the slow 2-core CI machine.
"""

import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent

# CI machines are slow and shared: no per-example deadline, fewer examples, same seed each run.
# (Imported only there: hypothesis costs most of a second at start-up.)
if os.environ.get("CI"):
    from hypothesis import HealthCheck, settings

    settings.register_profile("ci", deadline=None, max_examples=25, derandomize=True,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("ci")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path == HERE / "tests" and config.args_source != pytest.Config.ArgsSource.ARGS:
        return True
    return None
