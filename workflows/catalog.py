"""What a worker or a replayer runs: every workflow of the engine, and how their code is run.

A module of its own so that importing one workflow (the registry imports the kernel) does not load them all.
"""

from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from workflows.error_tolerance import ErrorToleranceWorkflow
from workflows.kernel import ApprovalWorkflow
from workflows.power_adjustment import PowerAdjustmentWorkflow
from workflows.project_approval import PinnedProjectApprovalWorkflow, ProjectApprovalWorkflow
from workflows.talent_policy import TalentPolicyWorkflow

WORKFLOWS: list[type] = [
    ApprovalWorkflow,
    ProjectApprovalWorkflow,
    PowerAdjustmentWorkflow,
    ErrorToleranceWorkflow,
    TalentPolicyWorkflow,
]


def worker_workflows(*, versioned: bool) -> list[type]:
    """The workflows a worker registers: with Worker Versioning (WORKER_VERSIONING), project approval pinned to its
    build and the others taking the deployment's default, auto-upgrade (why: ``worker.deployment_config``)."""
    if not versioned:
        return WORKFLOWS
    return [PinnedProjectApprovalWorkflow if w is ProjectApprovalWorkflow else w for w in WORKFLOWS]


WORKER_SANDBOXED = False
"""Whether the worker runs workflow code in the Temporal sandbox: no. Why (issue 15):

- **Cost.** The sandbox re-imports every workflow module (the kernel, the five processes, their
  ``ProcessDefinition``s) for every workflow instance it creates: every new case and every cache miss. That
  was 29% of the worker's CPU samples; a cache-miss replay of one project-approval case costs about twice
  the CPU in the sandbox (``bench/replay.py``'s cache-miss figure: 117 ms against 60 ms on a quiet run).
- **Passing ``workflows`` through the sandbox instead** (about 95 ms) imports the workflow code outside the
  sandbox, so the sandbox's restrictions no longer reach it: ``datetime.now()``, ``random``, ``time.time()``,
  ``uuid4()`` and ``Path.read_text()`` all run there; only the builtins ``open``, ``input`` and
  ``breakpoint`` still fail (``tests/test_sandbox.py`` shows both). Much of the cost, little of the check.
- **Non-determinism is caught either way.** Replaying a history compares the commands the code issues with
  the recorded ones, command by command, in the sandbox or not (the argument of
  ``approvals.audit.replay.SANDBOX_FOR_AUDIT``).
- **What the sandbox adds, a forbidden call failing when it is made, stays where the code is exercised:** CI
  replays the determinism corpus in the sandbox (``tests/test_replay.py``, ``tests/test_determinism_corpus.py``)
  and the test suite's workers (``tests/fixtures/temporal.py``) run every workflow the tests run in it.
"""


def workflow_runner(*, sandboxed: bool = WORKER_SANDBOXED) -> WorkflowRunner:
    """How workflow code runs: as the worker runs it (unsandboxed, see :data:`WORKER_SANDBOXED`), or in the
    sandbox where CI checks it.

    In the sandbox, schemas (pydantic models) and their validators' lazy imports (email-validator, idna) pass
    through: they are deterministic, and re-importing them per workflow run is slow and warns mid-run.
    """
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "pydantic", "pydantic_core", "email_validator", "idna", "schemas"
        )
    )
