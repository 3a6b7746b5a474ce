"""The generic approval: a process definition passed as input is the whole process, no code needed."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.case import CaseInput, CaseView
    from workflows.kernel import KernelWorkflow


@workflow.defn(name="ApprovalWorkflow")
class ApprovalWorkflow(KernelWorkflow):
    @workflow.run
    async def run(self, case: CaseInput) -> CaseView:
        return await self.run_case()
