"""The code location: every definition under mlcicd/defs/, loaded by Dagster's defs-folder loader, plus the few whose
shape is a setting (schedules' cron strings, sensors' intervals and default status, the UI's freshness window).

The config is loaded once, here, when the definitions are built, and handed to those builders; nothing reads it at
import. A missing or invalid mlcicd.yaml fails the code location with the file and the key (the UI shows it), never
a silent default. Runs read the project through ProjectResource ($MLCICD_CONFIG, else ./mlcicd.yaml).

`workspace.yaml`, `dagster dev`, `dg` and `dagster job execute -m mlcicd.definitions` all load this module.
Heavy libraries (mlflow, lightgbm, evidently, sklearn) are imported inside the functions that use them.
"""

from datetime import timedelta
from functools import cache
from pathlib import Path

import dagster as dg

from mlcicd.config import Config


@dg.definitions
def defs() -> dg.Definitions:
    return _loaded()


@cache
def _loaded() -> dg.Definitions:
    """Built once per process. Dagster calls `defs` again at each stage of one command (`dagster job execute`
    called it five times, about 0.1 s each after the first); every call returns the same definitions."""
    from mlcicd.project import Project

    return build(Project.load().config)


def build(config: Config) -> dg.Definitions:
    from mlcicd.defs.automation.dead_runs import dead_run_sweeper_for
    from mlcicd.defs.automation.schedules import schedules_for
    from mlcicd.defs.automation.sensors import landing_sensor_for
    from mlcicd.defs.deployment.automation import serving_automation_for

    serving_schedules, serving_sensors = serving_automation_for(config)
    shaped = dg.Definitions(
        schedules=[*schedules_for(config), *serving_schedules],
        sensors=[landing_sensor_for(config), dead_run_sweeper_for(config.automation.dead_run_check_seconds), *serving_sensors],
    )
    found = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    freshness = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=config.gates.max_data_age_hours))

    def fresh(spec: dg.AssetSpec) -> dg.AssetSpec:
        return spec.replace_attributes(freshness_policy=freshness) if spec.key == dg.AssetKey("training_dataset") else spec

    unique = {id(asset): asset for asset in found.assets or []}.values()  # a module that imports an asset lists it again
    assets = [dg.map_asset_specs(fresh, [asset])[0] if isinstance(asset, dg.AssetsDefinition) else asset for asset in unique]
    return dg.Definitions.merge(
        dg.Definitions(assets=assets, asset_checks=found.asset_checks, jobs=found.jobs, sensors=found.sensors, schedules=found.schedules,
                       resources=found.resources),
        shaped,
    )
