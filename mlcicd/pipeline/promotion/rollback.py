"""rollback_job: `champion` back to the version it replaced (or a named one), with its own config; it needs no stored
evaluation. The version must have passed its gates when it was promoted (else only with override and a written reason)
and its files must still match their SHA-256 (no override waives that). With serving.enabled, the version is then
deployed blue-green. The alias moves, and the decision is audited, through mlcicd.champion like every other move."""

import dagster as dg
from pydantic import Field

from mlcicd.core.audit import AuditRecord
from mlcicd.core.promotion import PromotionRequest, Verdict, decide_rollback, problems_from
from mlcicd.names import Names
from mlcicd.project import Project

from .assets import artifact_check, output, triggered_by


class RollbackConfig(dg.Config):
    to_version: str = Field("", description="The version to go back to; default: the version the current champion replaced.")
    override: bool = Field(False, description="Go back to a version that never passed its gates. Needs `reason`; recorded as an override.")
    reason: str = Field("", description="Why: required with override, recorded in the audit trail either way.")
    requested_by: str = Field("", description="Who asks for this (recorded in the audit trail beside the known identity).")


def rollback_job_for(n: Names, proj: Project, tags: dict) -> dg.JobDefinition:
    @dg.op(name=n.op("roll_back"), description="Move `champion` back (audited), and deploy it when serving is enabled.")
    def roll_back(context: dg.OpExecutionContext, config: RollbackConfig) -> None:
        roll_back_model(context, config, n, proj)

    @dg.job(
        name=n.job("rollback_job"), tags=tags, executor_def=dg.in_process_executor,
        description="Move `champion` back to the version it replaced (or ops.<model>__roll_back.config.to_version); audited; deployed when serving is on.",
    )
    def rollback_job():
        roll_back()

    return rollback_job


def roll_back_model(context: dg.OpExecutionContext, config: RollbackConfig, n: Names, proj: Project) -> None:
    from mlcicd.champion import one_decision_at_a_time

    with one_decision_at_a_time(proj):
        verdict, answer = decide(context, config, proj)
    if verdict.decision == "refused":
        raise dg.Failure(description=verdict.reason, metadata={"decision": "refused"})
    if not verdict.moves_alias:
        return
    context.log_event(dg.AssetMaterialization(n.key("champion"), metadata=answer.metadata))  # the champion's history shows it, as promotions
    if proj.config.serving.enabled:
        from mlcicd.gate_checks import check_evaluation

        from ..deployment.assets import deploy

        _, metadata, deployed = deploy(context, proj)
        context.log_event(dg.AssetMaterialization(n.key("deployment"), metadata=metadata))
        context.log_event(check_evaluation(deployed, n.key("deployment")))
        if not deployed.passed:
            raise dg.Failure(description=deployed.reason)


def decide(context: dg.OpExecutionContext, config: RollbackConfig, proj) -> tuple[Verdict, dg.Output]:
    """The rollback's verdict, audited (and the alias moved when it says so), with what the champion asset records."""
    from mlcicd.champion import changes_between, reconcile, record
    from mlcicd.mlflow_registry import CHAMPION, HASH_TAG, client, version_by_alias

    name = proj.model_name("full")
    current = version_by_alias(proj, name, CHAMPION)
    current_version = str(current.version) if current else None
    reconcile(proj, name, current_version)
    who, _ = triggered_by(context.run, config.requested_by)
    request = PromotionRequest(mode="manual", automated=False, override=config.override, reason=config.reason,
                               min_reason_chars=proj.config.promotion.min_override_reason_chars)
    target = config.to_version or ((current.tags or {}).get("replaced_version") if current else None)
    target = None if target in (None, "", "none") else target
    passed, tags = None, {}
    if target is not None:
        try:
            tags = client(proj).get_model_version(name, target).tags or {}
            passed = tags.get("gates_passed") == "true"
        except Exception:  # noqa: BLE001 - the registry says the version does not exist
            passed = None
    gates = {}
    if passed is not None and target != current_version:  # the files it would go back to are the ones registered
        gates["artifact_integrity"] = artifact_check(proj, name, target)
    verdict = decide_rollback(target, current_version, passed, request, config.reason, problems_from(gates))
    decision = AuditRecord(
        decision=verdict.decision, model_name=name, from_version=current_version, to_version=target, reason=verdict.reason,
        triggered_by=who, dagster_run_id=context.run.run_id, gates=gates, artifact_sha256=tags.get(HASH_TAG) if verdict.moves_alias else None,
        changes=changes_between(proj, name, current_version, target) if verdict.moves_alias else {},
    )
    record(proj, decision, verdict.moves_alias,
           {"last_decision": verdict.decision, "decision_reason": verdict.reason[:4000], "decision_run": context.run.run_id})
    context.log.info(f"{verdict.decision}: {verdict.reason}")
    return verdict, output(verdict, name, target, current_version)
