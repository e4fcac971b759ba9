"""Schedules (RUNNING by default): nightly retraining, so a model never silently ages; hourly monitoring. Their cron
strings are settings, so they are built from the config the definitions were built with (mlcicd/definitions.py)."""

import dagster as dg

from mlcicd.config import Config

from ..jobs import monitoring_job, training_job


def schedules_for(config: Config) -> list[dg.ScheduleDefinition]:
    return [
        dg.ScheduleDefinition(
            name="nightly_retraining",
            job=training_job,
            cron_schedule=config.automation.retrain_cron,
            execution_timezone="UTC",
            default_status=dg.DefaultScheduleStatus.RUNNING,
            tags={"mlcicd/trigger": "nightly schedule"},
            description="Retrains on the current window every night; the freshness gate stops it if no new data has landed.",
        ),
        dg.ScheduleDefinition(
            name="hourly_monitoring",
            job=monitoring_job,
            cron_schedule=config.monitoring.cron,
            execution_timezone="UTC",
            default_status=dg.DefaultScheduleStatus.RUNNING,
            tags={"mlcicd/trigger": "hourly schedule"},
            description="Measures drift and decay of the newest data against the champion; drift_sensor acts on the results.",
        ),
    ]
