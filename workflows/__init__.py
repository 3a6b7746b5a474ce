"""Deterministic workflow code only: no I/O, no clocks, no randomness (see ARCHITECTURE.md).

The workflows a worker runs are listed in ``workflows.catalog``."""
