"""Schedules (RUNNING by default): nightly retraining, so a model never silently ages; hourly monitoring."""

import dagster as dg

from mlcicd.project import config_at_load

from ..jobs import monitoring_job, training_job


nightly_retraining = dg.ScheduleDefinition(
    name="nightly_retraining",
    job=training_job,
    cron_schedule=config_at_load().automation.retrain_cron,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    tags={"mlcicd/trigger": "nightly schedule"},
    description="Retrains on the current window every night; the freshness gate stops it if no new data has landed.",
)

hourly_monitoring = dg.ScheduleDefinition(
    name="hourly_monitoring",
    job=monitoring_job,
    cron_schedule=config_at_load().monitoring.cron,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    tags={"mlcicd/trigger": "hourly schedule"},
    description="Measures drift and decay of the newest data against the champion; drift_sensor acts on the results.",
)
