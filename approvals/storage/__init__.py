"""Every SQL statement of the engine, read and write, and the functions that run them.

``queries`` reads the projections and the audit log; ``records`` writes a workflow's events and the
projections they lead to; ``outbox`` queues notifications and claims, retries and settles their delivery;
``checkpoints`` and ``archive`` keep the signed checkpoints and the closed runs' histories (append-only).
The activities, the service layer and the audit call these functions; this package depends only on
``schemas``, so SQL never reaches up into settings, Temporal or HTTP.
"""
