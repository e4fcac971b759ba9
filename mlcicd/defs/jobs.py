"""The jobs. All run in process: the graph is a chain, so more processes would only add start-up time.

- training_job: ingest, build the dataset, train, evaluate; the gates run as blocking checks.
- promotion_job: the champion, re-verifying every gate for the exact candidate before moving the alias.
- rollback_job: the champion back to the previous (or a named) version that passed its gates (an op job with its own config).
- ci_job: the whole loop on a sample with few boosting rounds, under its own registered model name.
- canary_job, serving_monitor_job: the challenger on a share of live traffic; the service's budget.
promotion_job also runs `deployment` (blue-green to `mlcicd serve` with serving.enabled; with it off, nothing to deploy).
"""

import dagster as dg

from mlcicd.project import TIER_TAG

from .ingestion.assets import raw_batch
from .monitoring.assets import drift_report
from .scoring.assets import batch_predictions
from .promotion.assets import champion
from .promotion.rollback import roll_back
from .training.assets import candidate_evaluation
from .deployment.assets import canary, deployment, serving_metrics

training_assets = dg.AssetSelection.assets(candidate_evaluation).upstream()
# The run queue's lanes (dagster.yaml, deploy/production/dagster.yaml, deploy/helm/values.yaml): one training
# run and one promotion run at a time, whichever job, sensor or schedule asks for it.
LANE = "mlcicd/lane"
MAX_RUNTIME = "dagster/max_runtime"  # seconds; Dagster's run monitoring reads it
TRAINING_LANE, PROMOTION_LANE = {LANE: "training"}, {LANE: "promotion"}
# a moved alias is deployed in the same run when serving is on (and goes back if the deployment fails); with serving
# off, the deployment step records that there is nothing to deploy. The job is the same whatever the config says.
moves_champion = dg.AssetSelection.assets(champion, deployment)



def job(name: str, selection, description: str, max_runtime_minutes: int = 30, tags: dict | None = None, **kwargs):
    """An asset job run in one process (the graph is a chain: more processes would only add start-up time). Its runs
    carry `dagster/max_runtime`: run monitoring (dagster.yaml) fails a run that exceeds it, a safety net under
    dead_run_sweeper for a run that hangs rather than dies."""
    if not isinstance(selection, dg.AssetSelection):
        selection = dg.AssetSelection.assets(selection)
    tags = {MAX_RUNTIME: str(max_runtime_minutes * 60), **(tags or {})}
    return dg.define_asset_job(name, selection=selection, executor_def=dg.in_process_executor, description=description, tags=tags, **kwargs)


training_job = job(
    "training_job", training_assets, tags={TIER_TAG: "full", **TRAINING_LANE}, max_runtime_minutes=240,
    description="Ingest landed data, train a candidate on the full window and evaluate it against the champion.",
)
promotion_job = job(
    "promotion_job", moves_champion, tags={TIER_TAG: "full", **PROMOTION_LANE},
    description="Move the `champion` alias to the evaluated candidate, only if every gate passed for it.",
)
ci_job = job(
    "ci_job", training_assets | dg.AssetSelection.assets(champion), tags={TIER_TAG: "ci", **TRAINING_LANE}, max_runtime_minutes=60,
    description="The cheap CI tier: the whole loop on a sample with few rounds (simulating data on a fresh clone).",
)
@dg.job(
    tags={TIER_TAG: "full", **PROMOTION_LANE, MAX_RUNTIME: str(30 * 60)}, executor_def=dg.in_process_executor,
    description="Move `champion` back to the version it replaced (or ops.roll_back.config.to_version); audited; deployed when serving is on.",
)
def rollback_job():
    roll_back()
ingestion_job = job(
    "ingestion_job", raw_batch,
    description="Validate landed files against the data contract: accept each whole, or quarantine it with a report.",
)
monitoring_job = job(
    "monitoring_job", drift_report,
    description="Drift of the newest data against the champion's training reference, and the champion's decay.",
)
scoring_job = job(
    "scoring_job", batch_predictions,
    description="Score the batches waiting in scoring.landing_dir with the champion, and the challenger in shadow.",
)
canary_job = job(
    "canary_job", canary,
    description="Send serving.canary_share of live requests to the challenger (only once every gate passed for it).",
)
serving_monitor_job = job(
    "serving_monitor_job", serving_metrics,
    description="The service's budget and the canary's comparison over the last serving.window_minutes.",
)
