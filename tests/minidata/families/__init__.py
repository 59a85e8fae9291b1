"""One module per op family; each exposes ``make(gen) -> spec.Family``."""
