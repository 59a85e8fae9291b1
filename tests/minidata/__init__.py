"""A mini FlashInfer-Trace dataset with every op family of the public one (see build.py)."""
