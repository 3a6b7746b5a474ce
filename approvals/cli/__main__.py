"""``python -m approvals.cli``: the ``approvals`` command, for processes started by path (the test stack)."""

from approvals.cli import app

app()
