"""Worker Versioning (issue 20): the worker registers with a deployment name and build id; with versioning on, a
project-approval case finishes on the build it started on (pinned) while the other cases move to the current
build (auto-upgrade, relying on ``workflow.patched``). The dev server (Temporal Server 1.32) routes by build."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import RoutingConfigUpdateState
from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentRequest
from temporalio.common import VersioningBehavior
from temporalio.testing import WorkflowEnvironment

from approvals.settings import Settings, load_settings
from tests.cases import ALICE, decide, definition, open_tasks, stage, start_case, view_when
from tests.project_cases import OFFICER
from tests.project_cases import decide as decide_project
from tests.project_cases import start as start_project
from worker import build_worker, deployment_config, worker_build_id
from workflows.catalog import worker_workflows

TEMPORAL = Path(sys.executable).parent / "temporal"


def test_the_build_id_is_the_package_version_and_the_git_commit() -> None:
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True)
    assert worker_build_id(load_settings()) == f"0.1.0+{commit.stdout.strip()}"


def test_outside_a_git_checkout_the_build_id_is_a_hash_of_the_code(tmp_path: Path) -> None:
    built = worker_build_id(load_settings(), checkout=tmp_path)
    assert re.fullmatch(r"0\.1\.0\+code\.[0-9a-f]{12}", built), built
    assert worker_build_id(load_settings(), checkout=tmp_path) == built  # the same code, the same build


def test_a_build_id_from_the_settings_wins() -> None:
    assert worker_build_id(load_settings(worker_build_id="2026.12-rc1")) == "2026.12-rc1"


def test_versioning_is_off_by_default_yet_the_worker_names_its_build() -> None:
    config = deployment_config(load_settings(worker_build_id="b1"))
    assert (config.version.deployment_name, config.version.build_id) == ("approvals", "b1")
    assert not config.use_worker_versioning and config.default_versioning_behavior is VersioningBehavior.UNSPECIFIED


def behaviours(workflows: list[type]) -> dict[str, VersioningBehavior]:
    return {
        definition.name: definition.versioning_behavior
        for definition in (workflow._Definition.must_from_class(w) for w in workflows)
    }


def test_a_versioned_worker_pins_project_approval_and_the_others_auto_upgrade() -> None:
    versioned = behaviours(worker_workflows(versioned=True))
    assert versioned.pop("ProjectApprovalWorkflow") is VersioningBehavior.PINNED
    assert set(versioned.values()) == {VersioningBehavior.UNSPECIFIED}  # the deployment's default applies
    on = deployment_config(load_settings(worker_versioning=True))
    assert on.use_worker_versioning and on.default_versioning_behavior is VersioningBehavior.AUTO_UPGRADE


def test_an_unversioned_worker_names_no_behaviour_which_the_server_would_refuse() -> None:
    assert set(behaviours(worker_workflows(versioned=False)).values()) == {VersioningBehavior.UNSPECIFIED}


# ------------------------------------------------------------------ two builds side by side on the dev server


async def make_current(env: WorkflowEnvironment, settings: Settings) -> None:
    """``temporal worker deployment set-current-version``, once the build's worker has polled (it registers then).
    In a thread: the worker polls on this event loop."""
    command = [
        str(TEMPORAL), "worker", "deployment", "set-current-version", "--yes",
        "--address", env.client.service_client.config.target_host,
        "--deployment-name", settings.worker_deployment_name, "--build-id", str(settings.worker_build_id),
    ]  # fmt: skip
    for _ in range(60):
        result = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=30)
        if result.returncode == 0:
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError(f"build {settings.worker_build_id} never became current: {result.stderr}")
    request = DescribeWorkerDeploymentRequest(
        namespace=env.client.namespace, deployment_name=settings.worker_deployment_name
    )
    for _ in range(100):  # the task queues learn the new routing asynchronously
        described = await env.client.workflow_service.describe_worker_deployment(request)
        state = described.worker_deployment_info.routing_config_update_state
        if state == RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_COMPLETED:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the task queues never learnt that {settings.worker_build_id} is current")


@pytest.fixture
def builds() -> tuple[Settings, Settings]:
    """Two builds of one deployment, polling one task queue with versioning on."""
    deployment, queue = f"approvals-{uuid.uuid4().hex[:6]}", f"versioned-{uuid.uuid4().hex[:8]}"
    return tuple(  # type: ignore[return-value]
        load_settings(
            temporal_task_queue=queue, worker_versioning=True, worker_deployment_name=deployment, worker_build_id=build
        )
        for build in ("old", "new")
    )


@asynccontextmanager
async def running(env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[None]:
    async with build_worker(env.client, settings, pool=pool, sandboxed=True):
        yield


async def test_a_pinned_case_stays_on_its_build_while_the_others_move_to_the_current_one(
    dev_server_env: WorkflowEnvironment, db_pool: asyncpg.Pool, builds: tuple[Settings, Settings]
) -> None:
    env, (old, new) = dev_server_env, builds
    queue = old.temporal_task_queue
    async with running(env, old, db_pool):
        await make_current(env, old)
        project = await start_project(env, queue)
        await view_when(project, lambda v: bool(open_tasks(v, "acceptance")))
        generic = await start_case(
            env.client, queue, definition(stage("review", assignees=("alice",)), stage("sign_off", assignees=("bob",)))
        )
        [review] = open_tasks(await view_when(generic, open_tasks))

        async with running(env, new, db_pool):  # the new build beside the old one, then made current
            await make_current(env, new)
            await decide(generic, ALICE, review)
            await view_when(generic, lambda v: bool(open_tasks(v, "sign_off")))
            await decide_project(project, "acceptance", OFFICER)  # the old build, still running, takes it

            moved = (await generic.describe()).raw_description.workflow_execution_info.versioning_info
            pinned = (await project.describe()).raw_description.workflow_execution_info.versioning_info

    assert (moved.deployment_version.build_id, moved.behavior) == ("new", VersioningBehavior.AUTO_UPGRADE.value)
    assert (pinned.deployment_version.build_id, pinned.behavior) == ("old", VersioningBehavior.PINNED.value)
