"""The CI tier never touches what production's promotion sees. Both tiers materialize the same assets (ci_job on a
sample with few rounds, under its own registered model), so everything production reads is read per tier: the asset
store keeps each tier's values apart (data/assets/ for full, data/assets/tier-ci/ for CI), and "the latest
materialization" or "the latest gate result" means the latest of the run's own tier (runs carry `mlcicd/tier`)."""

from __future__ import annotations

import dagster as dg

from mlcicd.project import TIER_TAG

SEARCHED = 200  # newest records looked through for one of the wanted tier


def tier_of_run(instance: dg.DagsterInstance, run_id: str, cache: dict[str, str] | None = None) -> str:
    cache = {} if cache is None else cache
    if run_id not in cache:
        run = instance.get_run_by_id(run_id)
        cache[run_id] = (run.tags if run else {}).get(TIER_TAG, "full")
    return cache[run_id]


def latest_materialization(instance: dg.DagsterInstance, key: dg.AssetKey, tier: str, runs: dict[str, str] | None = None):
    """The newest materialization event record of `key` made by a run of `tier`, or None. `runs`: the tiers of runs
    already looked up (pass one dict to several calls, so a run is read once)."""
    runs = {} if runs is None else runs
    result = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=SEARCHED, ascending=False)
    return next((r for r in result.records if tier_of_run(instance, r.run_id, runs) == tier), None)


def latest_check(instance: dg.DagsterInstance, key: dg.AssetCheckKey, tier: str, runs: dict[str, str] | None = None):
    """The newest execution record of the check `key` that has an evaluation, from a run of `tier`, or None."""
    runs = {} if runs is None else runs
    for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=SEARCHED):
        if record.event and record.event.asset_check_evaluation and tier_of_run(instance, record.run_id, runs) == tier:
            return record
    return None
