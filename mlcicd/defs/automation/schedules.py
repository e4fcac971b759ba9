"""Schedules (RUNNING by default): nightly retraining, so a model never silently ages."""

import dagster as dg

from mlcicd.config import AutomationSpec, ConfigError
from mlcicd.project import Project

from ..jobs import training_job


def _automation() -> AutomationSpec:
    """The cron strings are read when the code location loads (a schedule's cron is part of its definition)."""
    try:
        return Project.load().config.automation
    except (ConfigError, ValueError):
        return AutomationSpec()


nightly_retraining = dg.ScheduleDefinition(
    name="nightly_retraining",
    job=training_job,
    cron_schedule=_automation().retrain_cron,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    tags={"mlcicd/trigger": "nightly schedule"},
    description="Retrains on the current window every night; the freshness gate stops it if no new data has landed.",
)
