"""The Committee's statistics (issue 19; Art. 29 reporting, Art. 18 disclosure): ``GET /v1/reports/summary`` and
``approvals reports summary``.

``summary`` checks a request and computes the figures from the projections (``approvals.storage.reports``,
migration 0014) on the engine's working-day calendar; ``tables`` writes them as CSV and XLSX, ``charts`` draws
the report's charts as SVG and ``pdf`` lays the Art. 29 report out; ``service`` says who may read them.
"""
