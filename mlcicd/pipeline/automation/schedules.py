"""One model's schedules (RUNNING by default): nightly retraining, so a model never silently ages; hourly monitoring.
Their cron strings are the model's settings."""

import dagster as dg

from mlcicd.names import Names
from mlcicd.project import Project


def schedules_for(n: Names, proj: Project, jobs: dict) -> list[dg.ScheduleDefinition]:
    return [
        dg.ScheduleDefinition(
            name=n.schedule("nightly_retraining"),
            job=jobs["training_job"],
            cron_schedule=proj.config.automation.retrain_cron,
            execution_timezone="UTC",
            default_status=dg.DefaultScheduleStatus.RUNNING,
            tags={"mlcicd/trigger": "nightly schedule"},
            description="Retrains on the current window every night; the freshness gate stops it if no new data has landed.",
        ),
        dg.ScheduleDefinition(
            name=n.schedule("hourly_monitoring"),
            job=jobs["monitoring_job"],
            cron_schedule=proj.config.monitoring.cron,
            execution_timezone="UTC",
            default_status=dg.DefaultScheduleStatus.RUNNING,
            tags={"mlcicd/trigger": "hourly schedule"},
            description="Measures drift and decay of the newest data against the champion; drift_sensor acts on the results.",
        ),
    ]
