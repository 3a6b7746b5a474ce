"""What a worker or a replayer runs: every workflow of the engine, and the sandbox they run in.

A module of its own so that importing one workflow (the registry imports the kernel) does not load them all.
"""

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from workflows.error_tolerance import ErrorToleranceWorkflow
from workflows.kernel import ApprovalWorkflow
from workflows.power_adjustment import PowerAdjustmentWorkflow
from workflows.project_approval import ProjectApprovalWorkflow
from workflows.talent_policy import TalentPolicyWorkflow

WORKFLOWS: list[type] = [
    ApprovalWorkflow,
    ProjectApprovalWorkflow,
    PowerAdjustmentWorkflow,
    ErrorToleranceWorkflow,
    TalentPolicyWorkflow,
]


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox every worker and replayer uses.

    Schemas (pydantic models) and their validators' lazy imports (email-validator, idna) pass through:
    they are deterministic, and re-importing them per workflow run is slow and warns mid-run.
    """
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "pydantic", "pydantic_core", "email_validator", "idna", "schemas"
        )
    )
