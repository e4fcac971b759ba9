"""deployment: the champion, answering requests (blue-green, with health, smoke and skew checks);
canary: the challenger on a share of live traffic; serving_metrics: the service's budget and the canary's
comparison, from its request log. Only used when serving.enabled is true."""

from datetime import datetime, timezone

import dagster as dg

from mlcicd.core.audit import AuditRecord
from mlcicd.core.gates import GateVerdict
from mlcicd.core.tasks import task_of
from mlcicd.gate_checks import shown as rounded, check_result, check_specs
from mlcicd.names import Names, names
from mlcicd.project import Project

from ..promotion.assets import gate_results


def service_url(proj) -> str:
    settings = proj.config.serving
    return f"http://{settings.host}:{settings.port}"


def batch_scores(proj, name: str, version: str, sample):
    """What batch scoring answers for `sample`: the score the service must reproduce (the skew check)."""
    from mlcicd.core.scoring import decisions
    from mlcicd.core.train import predict
    from mlcicd.mlflow_registry import load_model

    booster, features = load_model(proj, name, version)
    outputs = decisions(features, predict(booster, features, sample))
    return outputs[task_of(features.task).score_key]


def serving_assets_for(n: Names, proj: Project) -> list:
    common = {"group_name": n.group, "io_manager_key": n.io_manager_key, "kinds": {"http"}}

    @dg.asset(
        key=n.key("deployment"), deps=[n.key("champion")], check_specs=check_specs(n, "deployment"), **common,
        description=(
            "The champion deployed to `mlcicd serve` blue-green: staged beside the live version, health-checked, a smoke "
            "request, a skew check against batch scoring; traffic switches only when all pass. On a failure the old "
            "version keeps serving, the `champion` alias goes back to it, and the audit trail says why."
        ),
    )
    def deployment(context: dg.AssetExecutionContext):
        if not proj.config.serving.enabled:
            reason = "Serving is off (serving.enabled: false): there is no service to deploy to."
            yield dg.Output({"decision": "not deployed", "reason": reason}, metadata={"decision": "not deployed", "reason": reason})
            yield check_result(GateVerdict("deployment_healthy", True, reason), asset_key=n.key("deployment"))
            return
        value, metadata, verdict = deploy(context, proj)
        yield dg.Output(value, metadata=metadata)
        yield check_result(verdict, asset_key=n.key("deployment"))

    @dg.asset(
        key=n.key("canary"), **common,
        description="The challenger as canary: answers serving.canary_share of live requests beside the champion, once every gate passed for it.",
    )
    def canary(context: dg.AssetExecutionContext) -> dg.Output[dict]:
        return start_canary(context, proj)

    @dg.asset(
        key=n.key("serving_metrics"), check_specs=check_specs(n, "serving_metrics"), **common,
        description="The service's last serving.window_minutes from its request log: requests, error rates, latency percentiles per slot and version.",
    )
    def serving_metrics():
        yield from measure_serving(n, proj)

    return [deployment, canary, serving_metrics]


def deploy(context, proj) -> tuple[dict, dict, GateVerdict]:
    """Deploy the champion blue-green; on a failure the old version keeps serving and the champion goes back to it
    (through mlcicd.champion, audited). Returns the deployment's value, its metadata and the deployment_healthy verdict.
    Used by the deployment asset (promotion_job) and by rollback_job."""
    from mlcicd.champion import record
    from mlcicd.core.deploy import blue_green, call
    from mlcicd.mlflow_registry import CHAMPION, HASH_TAG, client, load_reference, version_by_alias
    from mlcicd.serving import admin_token

    settings, target = proj.config.serving, proj.config.dataset.target
    name, base = proj.model_name("full"), service_url(proj)
    current = version_by_alias(proj, name, CHAMPION)
    if current is None:
        raise dg.Failure(f"There is no champion of {name} to deploy.")
    version = str(current.version)
    status, health = call(base, "GET", "/health")
    live = health.get("version") if status == 200 else None
    if live == version:
        verdict = GateVerdict("deployment_healthy", True, f"Version {version} already answers live traffic at {base}.", {"version": version})
        return {"version": version, "url": base, "decision": "unchanged"}, {"live_version": version, "url": base}, verdict

    sample = load_reference(proj, name, version).drop(columns=[target], errors="ignore").head(settings.sample_rows)
    expected = batch_scores(proj, name, version, sample)
    sha = (client(proj).get_model_version(name, version).tags or {}).get(HASH_TAG, "")
    result = blue_green(base, version, sha, sample, expected, settings.skew_tolerance, token=admin_token(proj)[0])
    steps = "\n".join(f"| {s.name} | {'pass' if s.passed else 'FAIL'} | {s.detail} |" for s in result.steps)
    metadata = {"url": base, "version": version, "steps": dg.MetadataValue.md("| step | result | detail |\n|---|---|---|\n" + steps)}
    if result.passed:
        canary = health.get("canary") or {}
        if canary.get("version") == version:  # the canary became the champion: it no longer needs a slot of its own
            call(base, "POST", "/admin/canary", {"version": None}, token=admin_token(proj)[0])
        verdict = GateVerdict("deployment_healthy", True, result.reason.capitalize() + ".", {"version": version})
        return {**result.to_dict(), "url": base, "previous": live, "decision": "deployed"}, {**metadata, "live_version": version}, verdict

    previous = live or (current.tags or {}).get("replaced_version")
    previous = None if previous in (None, "", "none") else previous
    reason = result.reason + (f"; version {previous} keeps serving and is the champion again" if previous else "; there is no previous version to go back to")
    decision = AuditRecord(
        decision="rolled_back" if previous else "refused", model_name=name, from_version=version, to_version=previous, reason=reason,
        triggered_by=f"deployment ({context.run.job_name})", dagster_run_id=context.run.run_id, gates={"deployment": result.to_dict()},
    )
    record(proj, decision, moves_alias=bool(previous),
           tags={"last_decision": "rolled_back", "decision_reason": reason[:4000], "decision_run": context.run.run_id})
    context.log.error(reason)
    value = {**result.to_dict(), "url": base, "previous": previous, "decision": "rolled_back"}
    verdict = GateVerdict("deployment_healthy", False, reason[0].upper() + reason[1:] + ".", {"version": version})
    return value, {**metadata, "live_version": previous or "none"}, verdict


def start_canary(context: dg.AssetExecutionContext, proj: Project) -> dg.Output[dict]:
    from mlcicd.core.deploy import call
    from mlcicd.serving import admin_token
    from mlcicd.core.promotion import problems_from
    from mlcicd.mlflow_registry import CHALLENGER, version_by_alias

    name = proj.model_name("full")
    challenger = version_by_alias(proj, name, CHALLENGER)
    if challenger is None:
        raise dg.Failure(f"There is no challenger of {name} to send traffic to.")
    problems = problems_from(gate_results(context.instance, names(proj)))
    if problems:
        raise dg.Failure(f"Version {challenger.version} is not exposed to live traffic: " + "; ".join(problems))
    share = proj.config.serving.canary_share
    status, body = call(service_url(proj), "POST", "/admin/canary", {"version": str(challenger.version), "share": share},
                        token=admin_token(proj)[0])
    if status != 200:
        raise dg.Failure(f"The service did not take the canary: HTTP {status}: {body.get('error')}")
    return dg.Output({"version": str(challenger.version), "share": share, "since": datetime.now(timezone.utc).isoformat()},
                     metadata={"canary_version": str(challenger.version), "share": share})


def measure_serving(n: Names, proj: Project):
    from mlcicd.core.deploy import read_requests, summarize, window_start
    from mlcicd.core.serving_gates import budget_gate, canary_gate, canary_streams

    settings = proj.config.serving
    requests = read_requests(proj.data_dir / "serving" / "requests.jsonl", datetime.min.replace(tzinfo=timezone.utc))  # read once
    summary = summarize(requests[requests["at"] >= window_start(settings.window_minutes)] if len(requests) else requests)
    shown = {slot: {k: v for k, v in numbers.items() if k != "scores"} for slot, numbers in summary.items()}
    metadata = {f"{slot}_{k}": v for slot, numbers in shown.items() for k, v in numbers.items() if isinstance(v, int | float)}
    evidence = canary_streams(requests, read_feedback(proj), settings.canary)  # the canary's whole sequence, not a window
    canary, decided, paths = canary_gate(evidence, settings.canary)
    if paths:  # the sequence as it was watched, and where it decided: recorded with the asset, and a page a person reads
        from mlcicd.core.report import canary_page

        page = canary_page(proj.data_dir / "reports" / f"canary-{proj.name}-v{evidence['version']}.html", proj.name, canary, paths)
        canary = GateVerdict(canary.gate, canary.passed, canary.reason, {**canary.numbers, "report": str(page)})
        shown["canary_sequence"] = {"version": evidence["version"], "since": evidence["since"], "measures": paths}
        metadata["canary_report"] = dg.MetadataValue.path(str(page))
    yield dg.Output(shown, metadata=rounded({"window_minutes": settings.window_minutes, **metadata}))
    verdict, enough = budget_gate(summary.get("live"), settings)
    yield check_result(verdict, asset_key=n.key("serving_metrics"), warn_only=not enough)
    yield check_result(canary, asset_key=n.key("serving_metrics"), warn_only=not decided)


def read_feedback(proj: Project):
    """POST /feedback's outcomes (A/B mode), or None when there are none."""
    import pandas as pd

    path = proj.data_dir / "serving" / "feedback.jsonl"
    if not path.exists() or path.stat().st_size == 0:
        return None
    return pd.read_json(path, lines=True, convert_dates=False, dtype={"request_id": str})
