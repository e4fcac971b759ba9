"""One model's jobs (fraud__training_job, ...), and the project's jobs over every model (training_job, promotion_job,
ci_job: what the README, the Makefile and CI run). All run in process: each model's graph is a chain, so more processes
would only add start-up time.

- training_job: ingest, build the dataset, train, evaluate; the gates run as blocking checks.
- promotion_job: the champion, re-verifying every gate for the exact candidate before moving the alias.
- rollback_job (per model): the champion back to the previous (or a named) version that passed its gates (an op job).
- ci_job: the whole loop on a sample with few boosting rounds, under its own registered model name and asset store.
- ingestion_job, monitoring_job, scoring_job, canary_job, serving_monitor_job (per model).
promotion_job also runs `deployment` (blue-green to `mlcicd serve` with serving.enabled; with it off, nothing to deploy).
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from mlcicd.names import Names
from mlcicd.project import TIER_TAG, Project

from .promotion.rollback import rollback_job_for

# The run queue's lanes (dagster.yaml, deploy/production/dagster.yaml, deploy/helm/values.yaml): one training
# run and one promotion run at a time, whichever job, sensor or schedule asks for it.
LANE = "mlcicd/lane"
MAX_RUNTIME = "dagster/max_runtime"  # seconds; Dagster's run monitoring reads it
TRAINING_LANE, PROMOTION_LANE = {LANE: "training"}, {LANE: "promotion"}
FULL, CI, PR = {TIER_TAG: "full"}, {TIER_TAG: "ci"}, {TIER_TAG: "pr"}


def job(name: str, selection: dg.AssetSelection, description: str, max_runtime_minutes: int = 30, tags: dict | None = None):
    """An asset job run in one process. Its runs carry `dagster/max_runtime`: run monitoring (dagster.yaml) fails a run
    that exceeds it, a safety net under dead_run_sweeper for a run that hangs rather than dies."""
    tags = {MAX_RUNTIME: str(max_runtime_minutes * 60), **(tags or {})}
    return dg.define_asset_job(name, selection=selection, executor_def=dg.in_process_executor, description=description, tags=tags)


def training_selection(models: list[Names]) -> dg.AssetSelection:
    return dg.AssetSelection.assets(*[n.key("candidate_evaluation") for n in models]).upstream()


def promotion_selection(models: list[Names]) -> dg.AssetSelection:
    # a moved alias is deployed in the same run when serving is on (and goes back if the deployment fails); with serving
    # off, the deployment step records that there is nothing to deploy. The job is the same whatever the config says.
    return dg.AssetSelection.assets(*[key for n in models for key in (n.key("champion"), n.key("deployment"))])


def ci_selection(models: list[Names]) -> dg.AssetSelection:
    return training_selection(models) | dg.AssetSelection.assets(*[n.key("champion") for n in models])


def tier_jobs(name: Callable[[str], str], models: list[Names], tags: dict | None = None) -> list[dg.UnresolvedAssetJobDefinition]:
    """training_job, promotion_job, ci_job and pr_job over `models`, named `name(job)`."""
    who = f"model {models[0].model}" if len(models) == 1 else f"every model ({', '.join(n.model for n in models)})"
    tags = tags or {}
    return [
        job(name("training_job"), training_selection(models), tags={**FULL, **TRAINING_LANE, **tags}, max_runtime_minutes=240,
            description=f"Ingest landed data, train a candidate on the full window and evaluate it against the champion: {who}."),
        job(name("promotion_job"), promotion_selection(models), tags={**FULL, **PROMOTION_LANE, **tags},
            description=f"Move the `champion` alias to the evaluated candidate, only if every gate passed for it: {who}."),
        job(name("ci_job"), ci_selection(models), tags={**CI, **TRAINING_LANE, **tags}, max_runtime_minutes=60,
            description=f"The cheap CI tier: the whole loop on a sample with few rounds (simulating data on a fresh clone): {who}."),
        job(name("pr_job"), training_selection(models), tags={**PR, **TRAINING_LANE, **tags}, max_runtime_minutes=60,
            description=f"The pull-request tier (`mlcicd ci`): the branch's candidate, trained as production's champion was, judged "
                        f"against it on the same holdout; never registers into production's model, never moves an alias: {who}."),
    ]


def jobs_for(n: Names, proj: Project) -> dict[str, dg.JobDefinition | dg.UnresolvedAssetJobDefinition]:
    """One model's jobs, by their unprefixed names."""
    own = [
        *tier_jobs(n.job, [n], n.tags),
        job(n.job("ingestion_job"), dg.AssetSelection.assets(n.key("raw_batch")), tags=n.tags,
            description="Validate landed files against the data contract: accept each whole, or quarantine it with a report."),
        job(n.job("monitoring_job"), dg.AssetSelection.assets(n.key("drift_report"), n.key("drift_evidently_page")), tags=n.tags,
            description="Drift of the newest data against the champion's training reference and the champion's decay (the gates), then Evidently's page."),
        job(n.job("scoring_job"), dg.AssetSelection.assets(n.key("batch_predictions")), tags=n.tags,
            description="Score the batches waiting in scoring.landing_dir with the champion, and the challenger in shadow."),
        job(n.job("canary_job"), dg.AssetSelection.assets(n.key("canary")), tags=n.tags,
            description="Send serving.canary_share of live requests to the challenger (only once every gate passed for it)."),
        job(n.job("serving_monitor_job"), dg.AssetSelection.assets(n.key("serving_metrics")), tags=n.tags,
            description="The service's budget and the canary's comparison over the last serving.window_minutes."),
        rollback_job_for(n, proj, tags={**FULL, **PROMOTION_LANE, MAX_RUNTIME: str(30 * 60), **n.tags}),
    ]
    return {j.name.removeprefix(n.job("")): j for j in own}


def project_jobs(models: list[Names]) -> list[dg.UnresolvedAssetJobDefinition]:
    """training_job, promotion_job and ci_job over every model (one model of several: fraud__training_job)."""
    return tier_jobs(lambda name: name, models)
