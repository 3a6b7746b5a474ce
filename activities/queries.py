"""Where the read-side SQL used to live; it is ``approvals.storage.queries`` now.

Kept only because ``approvals/audit.py`` (being split into a package on another branch) still imports
``activities.queries``; delete this module once it imports ``approvals.storage.queries``.
"""

from approvals.storage.queries import case_events, get_case

__all__ = ["case_events", "get_case"]
