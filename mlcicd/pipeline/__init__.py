"""A model pipeline's Dagster definitions, built from one model's settings (the ModelPipeline component calls
`model_defs`), and the few definitions the project has once whatever its models (`project_defs`).

Every asset, check, job, sensor and schedule of a model is named after it: keys under its prefix (fraud/champion), its
own group, jobs such as fraud__training_job (mlcicd/names.py). Its settings are captured when the definitions are built;
nothing reads a config file at run time.
"""

from __future__ import annotations

import dagster as dg

from mlcicd.names import names
from mlcicd.project import Project


def model_defs(proj: Project) -> dg.Definitions:
    from mlcicd.code_versions import ASSET_INPUTS, code_version, components
    from mlcicd.resources import ProjectIOManager

    from .automation.alerts import unaudited_champion_alert_for
    from .automation.schedules import schedules_for
    from .automation.sensors import sensors_for
    from .deployment.assets import serving_assets_for
    from .deployment.automation import serving_automation_for
    from .ingestion.assets import raw_batch_for
    from .jobs import jobs_for
    from .monitoring.assets import drift_report_for
    from .promotion.assets import champion_for
    from .scoring.assets import batch_predictions_for
    from .training.assets import training_assets_for
    from .training.checks import model_gates_for

    n = names(proj)
    jobs = jobs_for(n, proj)
    serving_schedules, serving_sensors = serving_automation_for(n, proj, jobs)
    assets = [*raw_batch_for(n, proj), *training_assets_for(n, proj), champion_for(n, proj), *drift_report_for(n, proj),
              batch_predictions_for(n, proj), *serving_assets_for(n, proj)]
    parts = components(proj)

    def policies(spec: dg.AssetSpec) -> dg.AssetSpec:
        """Set here once for every asset of the model: its owner (card.owner), and its code version where code or
        settings shape it (mlcicd/code_versions.py), so a change to them shows the asset as stale and retrains it."""
        asset = spec.key.path[-1]
        version = code_version(parts, asset) if asset in ASSET_INPUTS else spec.code_version
        return spec.replace_attributes(owners=[proj.config.card.owner], code_version=version)

    owned = dg.map_asset_specs(policies, [a for a in assets if not isinstance(a, dg.AssetChecksDefinition)])
    return dg.Definitions(
        assets=owned,
        asset_checks=[a for a in assets if isinstance(a, dg.AssetChecksDefinition)] + [model_gates_for(n, proj)],
        jobs=list(jobs.values()),
        sensors=[*sensors_for(n, proj, jobs), unaudited_champion_alert_for(n, proj, jobs), *serving_sensors],
        schedules=[*schedules_for(n, proj, jobs), *serving_schedules],
        resources={n.io_manager_key: ProjectIOManager(assets_dir=str(proj.assets_dir))},
    )


def project_defs(projects: list[Project]) -> dg.Definitions:
    """What the project has once: training_job, promotion_job and ci_job over every model, the alerts, the dead-run
    sweeper, and the MLflow and Dask resources the models share."""
    from mlcicd.resources import DaskClusters, MlflowTracking

    from .automation.alerts import project_alerts
    from .automation.dead_runs import dead_run_sweeper_for
    from .jobs import project_jobs

    return dg.Definitions(
        jobs=project_jobs([names(proj) for proj in projects]),
        sensors=[*project_alerts(projects), dead_run_sweeper_for(projects)],
        # runs started by automation use this too: each model's graph is a chain, so more processes would only add start-up time
        executor=dg.in_process_executor,
        resources={"mlflow": MlflowTracking(), "dask": DaskClusters()},
    )


def build(projects: list[Project]) -> dg.Definitions:
    """Every model's definitions and the project's, in one code location."""
    seen = [proj.name for proj in projects]
    twice = sorted({name for name in seen if seen.count(name) > 1})
    if twice:
        raise ValueError(f"two models are named {', '.join(twice)}: each model needs its own name (its folder under mlcicd/defs/models/)")
    from mlcicd.models import port_clashes

    clashes = port_clashes(projects)  # deployments of two models to one address would replace each other's service
    if clashes:
        raise ValueError("; ".join(clashes))
    return dg.Definitions.merge(*(model_defs(proj) for proj in projects), project_defs(projects))
