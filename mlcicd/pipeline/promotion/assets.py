"""champion: moves the MLflow `champion` alias (promotion or rollback), only on the evidence, always audited."""

from datetime import datetime, timezone

import dagster as dg
from pydantic import Field

from mlcicd.core.audit import AuditRecord, actor
from mlcicd.core.dataset import newest_ingestion, window
from mlcicd.core.gates import freshness_gate
from mlcicd.core.ingest import list_accepted
from mlcicd.faults import kill_point
from mlcicd.core.promotion import PromotionRequest, Verdict, decide_promotion, problems_from, unwaivable
from mlcicd.gate_checks import reverified_keys
from mlcicd.names import Names, names
from mlcicd.project import Project
from mlcicd.resources import run_tier

from ..training.checks import identity_problems


class ChampionConfig(dg.Config):
    override: bool = Field(False, description="Move the alias despite failed gates. Needs `reason`; recorded as an override.")
    reason: str = Field("", description="Why: required with override, recorded in the audit trail either way.")
    requested_by: str = Field("", description="Who asks for this (recorded in the audit trail beside the known identity).")


def triggered_by(run: dg.DagsterRun, requested_by: str) -> tuple[str, bool]:
    """Who or what started this run, and whether that was automation (a sensor or a schedule)."""
    tags = run.tags
    for key, label in (("dagster/sensor_name", "sensor"), ("dagster/schedule_name", "schedule")):
        if key in tags:
            return f"{label} {tags[key]}", True
    # a known identity always; a free-text requested_by is recorded beside it, never instead of it
    known = actor(tags.get("dagster/user"))
    if requested_by:
        return f"{requested_by} (as requested; {known}, {run.job_name})", False
    return f"{known} ({run.job_name})", False


def gate_results(instance: dg.DagsterInstance, n: Names, tier: str = "full") -> dict[str, dict]:
    """The latest result of every gate promotion re-verifies (core/gate_table.py), in runs of `tier`, and whether it judged
    the latest materialization of its asset in that tier (a CI run in between changes nothing that production's
    promotion reads)."""
    from mlcicd.tiers import latest_check, latest_materialization

    gate_keys = reverified_keys(n)
    runs: dict[str, str] = {}  # each run's tier, read once for all the lookups below
    latest_runs = {
        asset_key: (record.run_id if record else None)
        for asset_key in {key.asset_key for key in gate_keys}  # 4 assets carry the 12+ gates: one lookup each
        for record in [latest_materialization(instance, asset_key, tier, runs)]
    }
    results = {}
    for key in gate_keys:
        running = running_check(instance, key, tier, runs)
        if running:
            results[key.name] = {"passed": False, "running": True, "reason": f"running now, in run {running}"}
            continue
        record = latest_check(instance, key, tier, runs)
        evaluation = record.event.asset_check_evaluation if record and record.event else None
        if evaluation is None:
            results[key.name] = {"passed": False, "reason": "this gate has no result: it never ran (or is still running)"}
        elif evaluation.target_materialization_data is None or evaluation.target_materialization_data.run_id != latest_runs[key.asset_key]:
            results[key.name] = {"passed": False, "reason": f"its latest result is for an older {key.asset_key.to_user_string()}, not the current one"}
        else:
            results[key.name] = {"passed": bool(evaluation.passed), "reason": evaluation.description or ""}
    return results


def running_check(instance: dg.DagsterInstance, key: dg.AssetCheckKey, tier: str, runs: dict[str, str]) -> str | None:
    """The run (of `tier`) judging this gate right now, if its newest execution is planned and that run has not finished."""
    from mlcicd.tiers import tier_of_run

    for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=1):
        if record.status.value == "PLANNED" and tier_of_run(instance, record.run_id, runs) == tier:
            run = instance.get_run_by_id(record.run_id)
            return record.run_id if run is not None and not run.is_finished else None
    return None


def artifact_check(proj, name: str, version: str) -> dict:
    """The candidate's model files are the ones registered (SHA-256), checked now, before the alias moves."""
    from mlcicd.mlflow_registry import load_model

    try:
        load_model(proj, name, version)
    except Exception as exc:  # noqa: BLE001 - any failure to load the exact registered files refuses promotion
        return {"passed": False, "reason": f"version {version} cannot be trusted: {exc}"}
    return {"passed": True, "reason": f"version {version}'s files match the SHA-256 recorded at registration"}


def canary_result(instance: dg.DagsterInstance, n: Names, version: str) -> dict:
    """promotion.require_canary: the latest canary comparison must have passed, for exactly this version."""
    record = instance.get_latest_asset_check_evaluation_record(n.check("serving_metrics", "canary_comparison"))
    evaluation = record.event.asset_check_evaluation if record and record.event else None
    if evaluation is None:
        return {"passed": False, "reason": f"no canary window has been judged for version {version} (run canary_job, then serving_monitor_job)"}
    judged = evaluation.metadata.get("canary_version")
    judged = judged.value if judged is not None else None
    if str(judged) != str(version):
        return {"passed": False, "reason": f"the latest canary window judged version {judged}, not version {version}"}
    return {"passed": bool(evaluation.passed), "reason": evaluation.description or ""}


def champion_for(n: Names, proj: Project) -> dg.AssetsDefinition:
    @dg.asset(
        key=n.key("champion"), ins=n.ins("candidate_evaluation"), group_name=n.group, io_manager_key=n.io_manager_key,
        kinds={"mlflow"},
        description=(
            "The production model: the MLflow alias `champion`. Materialized by promotion_job (re-checks that every gate "
            "passed for exactly this candidate on the current, fresh data), and recorded by rollback_job; every decision is audited."
        ),
    )
    def champion(context: dg.AssetExecutionContext, config: ChampionConfig, candidate_evaluation: dict) -> dg.Output[dict]:
        from mlcicd.champion import one_decision_at_a_time

        with one_decision_at_a_time(proj):
            return decide(context, config, candidate_evaluation, proj)

    return champion


def decide(context: dg.AssetExecutionContext, config: ChampionConfig, candidate_evaluation: dict, proj) -> dg.Output[dict]:
    from mlcicd.champion import changes_between, reconcile, record
    from mlcicd.mlflow_registry import CHAMPION, HASH_TAG, client, promotion_evidence_tags, version_by_alias

    tier = run_tier(context)
    name = proj.model_name(tier)
    current = version_by_alias(proj, name, CHAMPION)
    current_version = str(current.version) if current else None
    reconcile(proj, name, current_version)
    who, automated = triggered_by(context.run, config.requested_by)
    request = PromotionRequest(
        mode=proj.config.promotion.mode, automated=automated, override=config.override, reason=config.reason,
        min_reason_chars=proj.config.promotion.min_override_reason_chars,
    )
    to_version = str(candidate_evaluation["candidate"]["version"])
    gates = gate_results(context.instance, names(proj), tier)
    batches = window(list_accepted(proj.accepted_dir), proj.config.dataset.window_batches)
    fresh_now = freshness_gate(newest_ingestion(batches), datetime.now(timezone.utc), proj.config.gates.max_data_age_hours)
    gates["data_freshness_now"] = {"passed": fresh_now.passed, "reason": fresh_now.reason}
    live = identity_problems(context.instance, proj, candidate_evaluation, name, tier)  # re-checked now, not just read
    gates["identity_now"] = {"passed": not live, "reason": "; ".join(live) or "the evaluation is of the candidate waiting, on the current dataset"}
    gates["artifact_integrity"] = artifact_check(proj, name, to_version)
    if proj.config.promotion.require_canary:
        gates["canary_passed"] = canary_result(context.instance, names(proj), to_version)
    kill_point("promotion.before_decision")
    verdict = decide_promotion(
        to_version, current_version, problems_from(gates), request, unwaivable(gates), nothing_new=bool(candidate_evaluation.get("unchanged"))
    )
    evidence = {"candidate": candidate_evaluation["candidate"]["metrics"], "champion": (candidate_evaluation["champion"] or {}).get("metrics")}
    # the files' SHA-256 (verified just now by artifact_integrity) goes into the chained trail: a later rewrite of the tag shows
    sha = (client(proj).get_model_version(name, to_version).tags or {}).get(HASH_TAG) if verdict.moves_alias else None
    decision = AuditRecord(
        decision=verdict.decision, model_name=name, from_version=current_version, to_version=to_version, reason=verdict.reason,
        triggered_by=who, dagster_run_id=context.run.run_id, dataset_hash=candidate_evaluation["dataset_hash"], metrics=evidence, gates=gates,
        artifact_sha256=sha, changes=changes_between(proj, name, current_version, to_version) if verdict.moves_alias else {},
    )
    tags = {
        "last_decision": verdict.decision, "decision_reason": verdict.reason[:4000], "decision_run": context.run.run_id,
        "promotion_reason": verdict.reason[:4000], "gates_passed": "true" if verdict.decision == "promoted" else "false",
        **promotion_evidence_tags(candidate_evaluation), "replaced_version": current_version or "none",
    }
    record(proj, decision, verdict.moves_alias, tags)
    context.log.info(f"{verdict.decision}: {verdict.reason}")
    if verdict.decision == "refused":
        raise dg.Failure(description=verdict.reason, metadata={"decision": "refused", "candidate_version": to_version or "none"})
    card = None
    if verdict.moves_alias:
        kill_point("promotion.before_model_card")
        card = write_model_card(proj, name, to_version, decision, candidate_evaluation)
    return output(verdict, name, to_version, current_version, card)


def write_model_card(proj, name: str, version: str, record: AuditRecord, evaluation: dict) -> str:
    """The promoted version's model card: under data/reports/model_cards/ and with the version's MLflow run."""
    from dataclasses import asdict

    from mlcicd.core.ingest import atomic_write
    from mlcicd.core.report import markdown_page, model_card
    from mlcicd.mlflow_registry import client

    registry = client(proj)
    model_version = registry.get_model_version(name, version)
    decision = {**asdict(record), "git_commit": (model_version.tags or {}).get("git_commit")}
    text = model_card(
        model_name=name, version=version, task=evaluation["candidate"].get("task", "binary"), evaluation=evaluation,
        gates=record.gates, decision=decision, card=proj.config.card.model_dump(), links=card_links(proj, evaluation),
    )
    path = proj.data_dir / "reports" / "model_cards" / f"{name}-v{version}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
    page = path.with_suffix(".html")
    atomic_write(page, lambda p: p.write_text(markdown_page(text, f"Model card: {name} version {version}"), encoding="utf-8"))
    for written in (path, page):
        registry.log_artifact(model_version.run_id, str(written), "model_card")
    return str(path)


def card_links(proj, evaluation: dict) -> dict[str, str | None]:
    """Where the model card points: the evaluation report (a sibling folder of the card), the runs that made it."""
    from mlcicd.resources import dagster_run_url

    links = {}
    report = proj.evaluation_report(evaluation["model_name"], evaluation["candidate"]["version"])
    if report.exists():
        links["Evaluation report"] = f"../{report.name}"
    run = evaluation.get("dagster_run_id")
    if run:
        links[f"Dagster run {run} (training and evaluation; in the Dagster UI under Runs)"] = dagster_run_url(run)
    return links


def output(verdict: Verdict, name: str, to_version: str | None, from_version: str | None, card: str | None = None) -> dg.Output[dict]:
    champion_version = to_version if verdict.moves_alias or verdict.decision == "unchanged" else from_version
    value = {
        "model_name": name, "version": champion_version, "previous_version": from_version, "decision": verdict.decision,
        "reason": verdict.reason, "model_card": card,
    }
    metadata = {
        "decision": verdict.decision,
        "champion_version": champion_version or "none",
        "previous_version": from_version or "none",
        "reason": dg.MetadataValue.text(verdict.reason),
    }
    if card:
        metadata["model_card"] = dg.MetadataValue.path(card)
    return dg.Output(value, metadata=metadata)
