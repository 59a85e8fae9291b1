"""Root conftest of the pytest-fib project itself.

The plugin registers through its ``pytest11`` entry point (pyproject.toml), not from here: pluggy
refuses a second registration under the same name. This file only keeps pytest from importing the
project's non-test Python (kernel sources, exploit corpus, benchmark scripts) as test modules when
someone runs ``pytest`` on the whole tree.
"""

collect_ignore_glob = ["pytest_fib/*", "bench/*", "docs/*", "kernels/*/*/solution/*"]
