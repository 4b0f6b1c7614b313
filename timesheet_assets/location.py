"""The code location as Dagster's services load it, and runs launched through it.

A run created by ``execute_in_process``/``materialize`` records no origin: the UI cannot tell
which code location holds its job, so it cannot re-execute it ("``__ephemeral_asset_job__``
is not available"). Runs launched here are created the way the UI and the daemon create them
— from the job as the code location's gRPC server serves it, origin included — so every run
the project's commands start can be re-executed, from the UI or its GraphQL API.

One location name everywhere: ``workspace.yaml``, ``deploy/workspace.yaml``, ``make dev`` and
these commands all call it ``timesheet_assets``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.workspace.context import WorkspaceProcessContext, WorkspaceRequestContext
from dagster._core.workspace.load_target import ModuleTarget

CODE_LOCATION = "timesheet_assets"
DEFINITIONS_MODULE = "timesheet_assets.definitions"
DEFINITIONS_ATTRIBUTE = "defs"
REPOSITORY = "__repository__"  # what Dagster names the repository of a Definitions object


def workspace_yaml() -> str:
    """A workspace file loading the code location in this Python environment (the repository's
    ``workspace.yaml`` says the same; ``make dev`` writes this one into its Dagster home so it
    works from any directory)."""
    return (
        "load_from:\n"
        "  - python_module:\n"
        f"      module_name: {DEFINITIONS_MODULE}\n"
        f"      attribute: {DEFINITIONS_ATTRIBUTE}\n"
        f"      location_name: {CODE_LOCATION}\n"
    )


def write_workspace(folder: Path) -> Path:
    path = folder / "workspace.yaml"
    path.write_text(workspace_yaml())
    return path


@contextmanager
def open_workspace(instance: dg.DagsterInstance) -> Iterator[WorkspaceRequestContext]:
    """The code location served by its own gRPC server process (started here, stopped on
    exit), with this process's environment — as ``dagster dev`` serves it."""
    target = ModuleTarget(DEFINITIONS_MODULE, DEFINITIONS_ATTRIBUTE, None, CODE_LOCATION)
    with WorkspaceProcessContext(instance, target, code_server_log_level="WARNING") as process:
        workspace = process.create_request_context()
        entry = workspace.get_code_location_entries().get(CODE_LOCATION)
        if entry is None or entry.code_location is None:
            error = entry.load_error if entry is not None else None
            raise RuntimeError(
                f"code location {CODE_LOCATION} did not load"
                + (f": {error.message.strip()}" if error is not None else "")
            )
        yield workspace


def job_names(workspace: WorkspaceRequestContext) -> list[str]:
    repository = workspace.get_code_location(CODE_LOCATION).get_repository(REPOSITORY)
    return sorted(job.name for job in repository.get_all_jobs() if not job.name.startswith("__"))


def create_run(
    workspace: WorkspaceRequestContext,
    job_name: str,
    *,
    tags: Mapping[str, str] | None = None,
    asset_selection: Sequence[dg.AssetKey] | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> dg.DagsterRun:
    """A run of ``job_name`` (optionally a subset of its assets), created as the daemon creates
    a scheduled run: job snapshot, execution plan and origin from the code location."""
    instance = workspace.instance
    location = workspace.get_code_location(CODE_LOCATION)
    selector = JobSubsetSelector(
        location_name=CODE_LOCATION,
        repository_name=REPOSITORY,
        job_name=job_name,
        op_selection=None,
        asset_selection=list(asset_selection) if asset_selection else None,
    )
    remote_job = location.get_job(selector)
    config = dict(run_config or {})
    plan = location.get_execution_plan(
        remote_job, config, step_keys_to_execute=None, known_state=None, instance=instance
    )
    return instance.create_run(
        job_name=job_name,
        run_id=None,
        run_config=config,
        resolved_op_selection=remote_job.resolved_op_selection,
        step_keys_to_execute=None,
        status=dg.DagsterRunStatus.NOT_STARTED,
        op_selection=None,
        root_run_id=None,
        parent_run_id=None,
        tags={**(remote_job.run_tags or {}), **(tags or {})},
        job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=plan.execution_plan_snapshot,
        parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
        asset_selection=frozenset(asset_selection) if asset_selection else None,
        asset_check_selection=None,
        asset_graph=location.get_repository(REPOSITORY).asset_graph,
    )


def launch(workspace: WorkspaceRequestContext, run: dg.DagsterRun) -> dg.DagsterRun:
    """Start the run now, in a run worker of the code location (the caller waits for it)."""
    return workspace.instance.launch_run(run.run_id, workspace)


def submit(workspace: WorkspaceRequestContext, run: dg.DagsterRun) -> dg.DagsterRun:
    """Hand the run to the instance's run coordinator: with the production instance's queue,
    ``dagster-daemon`` starts it when its pools have room."""
    return workspace.instance.submit_run(run.run_id, workspace)
