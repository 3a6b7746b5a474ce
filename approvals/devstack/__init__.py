"""Running the engine on one machine: ``dev`` (``approvals dev``: everything in one process with embedded
servers), ``stack`` (a disposable stack of separate processes for fault tests and benchmarks),
``embedded_pg`` (a PostgreSQL server of our own) and ``pg_supervisor`` (the script that keeps it from
outliving us)."""
