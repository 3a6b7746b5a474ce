"""The console's own words for things the engine names by code: refusal reasons, operations, form fields,
decisions. Each is a message id of the catalogues (marked with ``N_`` for extraction), translated there;
anything the engine adds later falls back to the engine's own text, never to nothing."""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext marker: extracted, translated when shown
    return message


REFUSALS: dict[str, str] = {
    "NOT_ASSIGNEE": N_("You are not the holder of this task."),
    "SEPARATION_OF_DUTIES": N_("The applicant cannot approve their own application."),
    "CLAIMED_BY_OTHER": N_("Someone else has claimed this task."),
    "ALREADY_CLAIMED": N_("This task has already been claimed."),
    "NOT_CLAIMANT": N_("You have not claimed this task."),
    "NOT_CLAIMED": N_("This task is not claimed from the pool."),
    "NOT_SUPERVISOR": N_("You are not the supervisor of this stage."),
    "STALE_TASK_VERSION": N_(
        "Someone else changed this task meanwhile. Below is its new state: check it and send the form again."
    ),
    "TASK_NOT_OPEN": N_("This task is no longer open."),
    "CASE_CLOSED": N_("This case has ended; nothing can change it now."),
    "COMMENT_REQUIRED": N_("This decision needs a written opinion."),
    "INVALID_TARGET": N_("That person cannot be the target of this operation."),
    "ALREADY_DELEGATED": N_("This task is already delegated."),
    "DUPLICATE_SIGNER": N_("That person already signs at this stage."),
    "ADD_SIGNER_NOT_ALLOWED": N_("Signers cannot be added at this stage."),
    "REASSIGN_NOT_ALLOWED": N_("Acting for another, you may only decide."),
    "URGED_RECENTLY": N_("This task was already urged today."),
    "NOT_INVOLVED": N_("You take no part in this case."),
    "NOT_APPLICANT": N_("Only the applicant may do this."),
    "NOT_ALLOWED": N_("You do not have the role this operation needs."),
    "READ_ONLY": N_("You have read-only access."),
    "NOT_A_CASE_READER": N_("You may not read this case."),
    "ROLE_REQUIRED": N_("Your roles do not allow this."),
    "CASE_NOT_FOUND": N_("There is no such case."),
    "TASK_NOT_FOUND": N_("There is no such task."),
    "UNAVAILABLE": N_("The engine cannot do this now; try again shortly."),
    "NO_EXTENSION": N_("This process has no period that can be extended."),
    "EXTENSION_USED": N_("The period has already been extended once."),
    "NO_SUPPLEMENT_PENDING": N_("This case is not waiting for supplementary material."),
    "CLOCK_NOT_STARTED": N_("The statutory period has not started yet."),
}
REFUSED = N_("The engine refused this operation.")
INVALID = N_("The form is not complete or not valid:")

OPERATIONS: dict[str, str] = {
    "claim": N_("Claim"),
    "unclaim": N_("Release to the pool"),
    "recall": N_("Recall to the pool"),
    "decide": N_("Decide"),
    "return": N_("Return to an earlier stage"),
    "transfer": N_("Transfer"),
    "delegate": N_("Delegate"),
    "add-signer": N_("Add a signer"),
    "comment": N_("Comment"),
    "urge": N_("Urge"),
    "cc": N_("Copy to"),
    "withdraw": N_("Withdraw"),
    "request-supplement": N_("Request supplementary material"),
    "supplement": N_("Supply material"),
    "extend": N_("Extend the period"),
    "exclude-period": N_("Exclude a period (Art. 45)"),
}
DONE = N_("Done: %(operation)s.")

FIELDS: dict[str, str] = {
    "comment": N_("Remark"),
    "reason": N_("Reason"),
    "text": N_("Comment"),
    "to_user": N_("To (user id)"),
    "signer": N_("Signer (user id)"),
    "position": N_("Before or after you"),
    "observers": N_("Copy to (user ids, one a line)"),
    "items": N_("Missing items (one a line: item: reason)"),
    "supplied_material_defective": N_("What is defective in the material supplied"),
    "kind": N_("Kind of excluded period"),
    "expected_working_days": N_("Expected working days"),
    "return_to": N_("Return to stage"),
    "decision": N_("Decision"),
    "conditions": N_("Conditions (one a line)"),
    "attachments": N_("Attachments (one a line: URI|SHA-256|size|name|media type)"),
    "documents": N_("Documents supplied (one a line: URI|SHA-256|size|name|media type)"),
}

DECISIONS: dict[str, str] = {
    "approve": N_("Approve"),
    "approve_with_conditions": N_("Approve with conditions"),
    "reject": N_("Reject"),
    "return": N_("Return"),
    "abstain": N_("Abstain"),
}

STATUSES: dict[str, str] = {
    "in_review": N_("In review"),
    "awaiting_supplement": N_("Awaiting supplementary material (补正)"),
    "approved": N_("Approved"),
    "approved_with_conditions": N_("Approved with conditions"),
    "rejected": N_("Rejected"),
    "withdrawn": N_("Withdrawn"),
    "under_supervision": N_("Under supervision"),
    "cancelled": N_("Cancelled"),
    "waiting": N_("Waiting"),
    "open": N_("Open"),
    "claimed": N_("Claimed"),
    "completed": N_("Completed"),
    "expired": N_("Expired (absent)"),
    "returned": N_("Returned"),
    "no_quorum": N_("No quorum"),
}
"""Case and task statuses (``schemas.case.CaseStatus``, ``TaskStatus``); stage outcomes use the same words."""

CLOCK_STATES: dict[str, str] = {
    "running": N_("Running"),
    "stopped": N_("Paused (补正 or Art. 45)"),
    "none": N_("No statutory clock"),
}

APPLICATION_FIELDS: dict[str, str] = {
    "enterprise": N_("Enterprise"),
    "name": N_("Name"),
    "unified_social_credit_code": N_("Unified social credit code"),
    "contact": N_("Contact"),
    "phone": N_("Phone"),
    "email": N_("Email"),
    "project_name": N_("Project name"),
    "description": N_("Description"),
    "industry_code": N_("Industry code (GB/T 4754)"),
    "priority_industry": N_("Priority industry (Art. 12)"),
    "high_tech": N_("High-tech project (Art. 8)"),
    "total_investment_cny": N_("Total investment (CNY)"),
    "fixed_asset_investment_cny": N_("Fixed-asset investment (CNY)"),
    "plot_id": N_("Plot"),
    "land_area_m2": N_("Land area (m²)"),
    "planned_land_use": N_("Planned land use"),
    "zoned_land_use": N_("Zoned land use"),
    "storeys": N_("Storeys"),
    "floor_area_ratio": N_("Floor area ratio"),
    "environmental_impact_category": N_("Environmental impact category"),
    "major_hazard_source": N_("Major hazard source (Art. 9)"),
}
"""Labels of application fields people meet often (the project application's); any other field is labelled
by its schema title or its name."""
YES, NO = N_("Yes"), N_("No")

REPORT_FIGURES: dict[str, str] = {
    "received": N_("Received"),
    "accepted": N_("Accepted (受理)"),
    "refused_to_accept": N_("Refused to accept (不予受理)"),
    "granted": N_("Granted (准予)"),
    "refused": N_("Refused (不予)"),
    "withdrawn": N_("Withdrawn"),
    "under_supervision": N_("Under supervision"),
    "decision_days_mean": N_("Working days to decision, mean"),
    "decision_days_median": N_("Working days to decision, median"),
    "decision_days_p90": N_("Working days to decision, 90th percentile"),
    "with_statutory_period": N_("Decided with a statutory period"),
    "on_time": N_("Decided on time"),
    "on_time_rate": N_("On-time rate"),
    "extensions": N_("Extensions (延期)"),
    "supplements": N_("Supplement requests (补正)"),
    "excluded_periods": N_("Art. 45 periods (特别程序)"),
}
"""The figures of ``schemas.reports.GroupFigures``, in the order of ``approvals.reports.tables.COLUMNS``."""

REPORT_BREAKDOWNS: dict[str, tuple[str, str]] = {
    "overdue_open_tasks": (N_("Overdue open tasks by unit"), N_("Unit (or pool)")),
    "denied_attempts": (N_("Denied attempts by reason"), N_("Reason")),
    "error_tolerance_outcomes": (N_("Error-tolerance determinations (Art. 25)"), N_("Outcome")),
    "talent_decisions": (N_("Talent policy decisions"), N_("Decision")),
    "decision_days": (N_("Decisions by working days taken"), N_("Working days")),
}
"""Each breakdown of the summary: its title, and what its rows are counted by."""

REPORT_GROUPINGS: dict[str, str] = {
    "process": N_("Process"),
    "unit": N_("Deciding unit"),
    "stage": N_("Stage"),
    "month": N_("Month received"),
}
REPORT_CHARTS = (N_("Cases per month"), N_("Working days to decision"), N_("On-time rate per unit"))
"""The titles of ``approvals.reports.charts``'s three charts, in the order ``ChartedSummary.charts`` draws them."""
REPORT_FILES: dict[str, str] = {
    "csv": N_("Download CSV"),
    "xlsx": N_("Download Excel (XLSX)"),
    "pdf": N_("Download the Art. 29 report (PDF)"),
}
NOT_A_DATE = N_("“%(typed)s” is not a date: type it as YYYY-MM-DD, e.g. 2026-03-01.")
UNKNOWN_GROUPING = N_("“%(typed)s” is not a grouping: choose one from the list.")
STARTS_AFTER_END = N_("The period starts after it ends.")
PERIOD_TOO_LONG = N_("The period is too long: ten years at most.")
