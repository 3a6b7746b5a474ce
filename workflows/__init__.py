"""Deterministic workflow code only: no I/O, no clocks, no randomness (see ARCHITECTURE.md)."""

from workflows.generic import ApprovalWorkflow

WORKFLOWS: list[type] = [ApprovalWorkflow]
