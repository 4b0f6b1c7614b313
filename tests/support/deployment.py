"""The code location as a deployment runs it: schedule ticks and sensor ticks evaluated on a
real instance, and every run they request executed as the run launcher would (the request's
job, assets, partition range and tags), one after another."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

import dagster as dg


@dataclass
class Deployment:
    defs: dg.Definitions
    instance: dg.DagsterInstance
    sensor_cursors: dict[str, str | None] = field(default_factory=dict)
    runs: list[dg.ExecuteInProcessResult] = field(default_factory=list)

    def tick_schedule(self, name: str, day: date, hour: int = 5) -> list[dg.ExecuteInProcessResult]:
        schedule = self.defs.get_schedule_def(name)
        when = datetime.combine(day, time(hour), tzinfo=UTC)
        with dg.build_schedule_context(instance=self.instance, scheduled_execution_time=when) as context:
            data = schedule.evaluate_tick(context)
        return [self.launch(request, schedule.job_name) for request in data.run_requests or []]

    def tick_sensor(self, name: str) -> list[dg.ExecuteInProcessResult]:
        sensor = self.defs.get_sensor_def(name)
        with dg.build_sensor_context(
            instance=self.instance, cursor=self.sensor_cursors.get(name), definitions=self.defs
        ) as context:
            data = sensor.evaluate_tick(context)
        self.sensor_cursors[name] = data.cursor
        # ``has_jobs`` is False for a target named by job name (``job_name=REFRESH_ALL``).
        job_name = sensor.job_name if sensor.targets else None
        return [self.launch(request, job_name) for request in data.run_requests or []]

    def launch(self, request: dg.RunRequest, job_name: str | None) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def(request.job_name or job_name)
        result = job.execute_in_process(
            instance=self.instance,
            tags=request.tags,
            asset_selection=list(request.asset_selection) if request.asset_selection else None,
            run_config=request.run_config or None,
            raise_on_error=False,
        )
        self.runs.append(result)
        return result


def materialized_partitions(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> set[str]:
    return {
        event.partition
        for event in result.get_asset_materialization_events()
        if event.asset_key == key and event.partition is not None
    }
