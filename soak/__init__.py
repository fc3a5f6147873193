"""Soak runs (not part of ``make test``): long loops that must leave no threads,
file descriptors or memory behind. Run ``python -m soak.soak_server`` and
``python -m soak.soak_discovery`` (``--help`` for the knobs)."""
