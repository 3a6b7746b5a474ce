"""Deterministic workflow code only: no I/O, no clocks, no randomness (../shared/ARCHITECTURE.md, "Temporal
practices").

The workflows a worker runs are listed in ``workflows.catalog``."""
