"""pytest-fib: a FlashInfer-Trace dataset as a pytest suite."""

__version__ = "0.1.0"
