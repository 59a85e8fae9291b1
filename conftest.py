"""Root conftest of the pytest-fib project itself.

The plugin registers through its ``pytest11`` entry point (pyproject.toml), not from here: pluggy
refuses a second registration under the same name. What lives here is project policy for the
tests in this repository: a hypothesis profile for the slow 2-core CI machine.
"""

import os

from hypothesis import HealthCheck, settings

# CI machines are slow and shared: no per-example deadline, fewer examples, same seed each run.
settings.register_profile("ci", deadline=None, max_examples=25, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
if os.environ.get("CI"):
    settings.load_profile("ci")
