"""``pytest --modal``: run the same session remotely (Modal, or a local stand-in) and bring the
results home. Importing this package imports no modal: ``controller`` does, only with --modal."""
