"""drift_report: the newest accepted data against the champion's training reference (the gate's own statistics on
samples, core/drift.py), and the champion's performance on it where labels are present; drift_evidently_page:
Evidently's page on the same samples, built after the gates in the same run."""

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from mlcicd.core.dataset import load_batches, window
from mlcicd.core.gate_table import BY_NAME
from mlcicd.core.gates import data_drift_gate, estimated_performance_gate, performance_decay_gate
from mlcicd.gate_checks import shown, check_result
from mlcicd.core.ingest import list_accepted
from mlcicd.names import Names
from mlcicd.project import Project
from mlcicd.resources import MlflowTracking



# The step priority (Dagster's `dagster/priority` op tag) of Evidently's page: below the checks', so in a run of one
# process the gates give their verdicts first, and the page (seconds on 100k rows) never delays one.
AFTER_THE_GATES = {"dagster/priority": "-1"}


def _drift_table(report: dict, limit: int = 10) -> str:
    rows = ["| column | method | value | threshold | PSI | drifted |", "|---|---|---|---|---|---|"]
    ordered = sorted(report["columns"].items(), key=lambda item: (not item[1]["drifted"], item[0]))
    for column, entry in ordered[:limit]:
        outside = " (outside the contract's expectations)" if entry.get("contract") else ""
        rows.append(f"| {column} | {entry['method']} | {entry['value']:.4f} | {entry['threshold']:g} | {entry['psi']:.3f} | "
                    f"{'yes' if entry['drifted'] else 'no'}{outside} |")
    return "\n".join(rows)


def _estimates_table(estimates: list[dict]) -> str:
    rows = ["| scored file | champion | estimated (95% range) | realized once labeled | error |", "|---|---|---|---|---|"]
    for e in estimates:
        realized = f"{e['realized']:.4f} ({e['labeled_rows']:,} rows)" if e.get("realized") is not None else "labels not here yet"
        error = f"{e['error']:+.4f}" if e.get("error") is not None else ""
        rows.append(f"| {e['file']} | v{e['champion_version']} | {e['estimate']:.4f} ({e['low']:.4f} to {e['high']:.4f}) | {realized} | {error} |")
    return "\n".join(rows)


def drift_report_for(n: Names, proj: Project) -> list:
    """drift_report and its two gates (data_drift, performance_decay: severity ERROR, blocking, so a failure fails
    monitoring_job and `dagster job execute` exits non-zero like ci_job; drift_sensor reads them)."""

    @dg.asset(
        key=n.key("drift_report"), deps=[n.key("champion")], group_name=n.group, io_manager_key=n.io_manager_key,
        kinds={"pandas", "mlflow"},
        description=(
            "Data drift of the newest accepted batches (monitoring.window_batches) against the champion's training "
            "reference, per column on samples (Evidently's default tests, computed in core/drift.py; HTML under the model's "
            "reports/), and the champion's performance on those batches against its holdout value."
        ),
    )
    def drift_report(context: dg.AssetExecutionContext, mlflow: MlflowTracking) -> dg.Output[dict]:
        return monitor(context, proj, mlflow.for_model(proj, "monitoring"))

    @dg.asset_check(asset=drift_report, name="data_drift", blocking=BY_NAME["data_drift"].blocking, description=BY_NAME["data_drift"].demands)
    def data_drift_check(drift_report: dict) -> dg.AssetCheckResult:
        return check_result(data_drift_gate(drift_report, proj.config.monitoring.max_drift_share))

    @dg.asset_check(
        asset=drift_report, name="performance_decay", blocking=BY_NAME["performance_decay"].blocking,
        description=BY_NAME["performance_decay"].demands,
    )
    def performance_decay_check(drift_report: dict) -> dg.AssetCheckResult:
        return check_result(performance_decay_gate(drift_report, proj.config.monitoring.max_decay))

    @dg.asset_check(
        asset=drift_report, name="estimated_performance", blocking=BY_NAME["estimated_performance"].blocking,
        description=BY_NAME["estimated_performance"].demands,
    )
    def estimated_performance_check(drift_report: dict) -> dg.AssetCheckResult:
        return check_result(estimated_performance_gate(drift_report.get("estimated_performance"), proj.config.monitoring.max_decay))

    @dg.asset(
        key=n.key("drift_evidently_page"), deps=[n.key("champion")], group_name=n.group, kinds={"evidently", "mlflow"}, op_tags=AFTER_THE_GATES,
        description=(
            "Evidently's data drift page on the same samples drift_report's gates measured, linked from drift_report's page. "
            "Not downstream of drift_report, so a failed gate does not stop it; a lower step priority runs it after the gates."
        ),
    )
    def drift_evidently_page(context: dg.AssetExecutionContext, mlflow: MlflowTracking) -> dg.MaterializeResult:
        return evidently_page(proj, mlflow.for_model(proj, "monitoring"))

    return [drift_report, data_drift_check, performance_decay_check, estimated_performance_check, drift_evidently_page]


def monitored_window(proj: Project):
    """What monitoring judges: the champion (name, version), the newest accepted batches and their rows."""
    from mlcicd.mlflow_registry import CHAMPION, version_by_alias

    name = proj.model_name("full")
    champion = version_by_alias(proj, name, CHAMPION)
    if champion is None:
        raise dg.Failure(f"There is no champion of {name} to monitor yet; promote one first.")
    batches = window(list_accepted(proj.accepted_dir), proj.config.monitoring.window_batches)
    if not batches:
        raise dg.Failure(f"No accepted batches in {proj.accepted_dir} to monitor.")
    return name, champion, batches, load_batches(batches, proj.config.dataset.time_column)


def evidently_path(proj: Project, version: str, batches) -> Path:
    """Evidently's page for one champion version and window (both pages of a run name it alike)."""
    return proj.data_dir / "reports" / f"evidently-drift-v{version}-{batches[0].batch_id}-to-{batches[-1].batch_id}.html"


def evidently_page(proj: Project, mlflow) -> dg.MaterializeResult:
    from mlcicd.core.monitoring import evidently_drift, evidently_page as write_page
    from mlcicd.mlflow_registry import load_model, load_reference

    settings = proj.config.monitoring
    name, champion, batches, current = monitored_window(proj)
    version = str(champion.version)
    _, features = load_model(proj, name, version)
    found = evidently_drift(load_reference(proj, name, version), current, features.numeric, features.categorical,
                            sample_rows=settings.sample_rows, seed=proj.config.model.seed, drift_share=settings.max_drift_share)
    path = write_page(evidently_path(proj, version, batches), model=proj.name, champion_version=version,
                      batches=[b.batch_id for b in batches], evidently_html=found["html"])
    mlflow.log_artifact(str(path), "drift")
    return dg.MaterializeResult(metadata={
        "report": dg.MetadataValue.path(str(path)),
        "report_in_mlflow": dg.MetadataValue.url(mlflow.ui_url(f"drift/{path.name}")),
        "evidently_drifted_columns": found["drifted_count"],
    })


def estimates_path(proj: Project) -> Path:
    """The ledger of performance estimated before labels, one entry per scored file, with the realized metric once known."""
    return proj.data_dir / "monitoring" / "estimates.json"


def estimate_before_labels(proj: Project, features, version: str, window_probabilities, holdout: float | None, realized: float | None) -> dict:
    """CBPE of the champion's primary metric on the newest files it scored (scoring_job; no labels needed), else on the
    monitoring window's rows, where the realized value is known at once and shown beside the estimate."""
    import pandas as pd

    from mlcicd.core import cbpe
    from mlcicd.core.tasks import task_of

    metric = proj.config.gates.primary_metric
    if not task_of(features.task).thresholded:
        return {"estimable": False, "why": f"Performance before labels is estimated for binary models only; this one is {features.task}, "
                "so performance_decay judges it once labels arrive."}
    if metric not in cbpe.ESTIMATED:
        return {"estimable": False, "why": f"CBPE estimates {', '.join(cbpe.ESTIMATED)}; the primary metric {metric} is not one of them, "
                "so performance_decay judges it once labels arrive."}
    scored = sorted(proj.predictions_dir.glob("*.parquet"), key=lambda f: f.stat().st_mtime)[-proj.config.monitoring.window_batches:]
    frames = {f.name: pd.read_parquet(f, columns=["champion_version", "probability"]) for f in scored}
    frames = {name: frame[frame["champion_version"] == version] for name, frame in frames.items()}
    frames = {name: frame for name, frame in frames.items() if len(frame)}
    if frames:
        probabilities = pd.concat(frames.values())["probability"].to_numpy()
        source = f"the newest file(s) it scored, unlabeled ({', '.join(frames)})"
    else:
        probabilities = window_probabilities
        source = "the monitoring window (labels present: the realized value is shown beside the estimate)"
    found = cbpe.estimate(metric, probabilities, features.threshold, seed=proj.config.model.seed)
    return {**found, "estimable": True, "holdout": holdout, "source": source, "files": list(frames),
            "realized": None if frames else realized, "threshold": features.threshold}


def record_estimates(proj: Project, estimated: dict, version: str, labeled_rows) -> list[dict]:
    """Add this run's estimates of scored files to the ledger, fill in the realized metric of every earlier estimate whose
    rows now have labels (matched by dataset.id_column in the monitoring window), and return the newest entries."""
    import json

    import pandas as pd

    from mlcicd.core.cbpe import realized_next_to_estimates
    from mlcicd.core.features import encode_target
    from mlcicd.core.ingest import atomic_write

    path, spec = estimates_path(proj), proj.config.dataset
    ledger = json.loads(path.read_text()) if path.exists() else {}
    for name in estimated.get("files") or []:
        ledger.setdefault(name, {"metric": estimated["metric"], "estimate": estimated["estimate"], "low": estimated["low"],
                                 "high": estimated["high"], "champion_version": version, "threshold": estimated["threshold"],
                                 "estimated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "realized": None})
    labeled = {}
    if spec.id_column and labeled_rows is not None:
        rows, features = labeled_rows
        by_id = rows.set_index(rows[spec.id_column].astype("string"))[spec.target]
        for name, entry in ledger.items():
            target = proj.predictions_dir / name
            if entry.get("realized") is not None or not target.exists():
                continue
            scored = pd.read_parquet(target, columns=[spec.id_column, "probability"])
            ids = scored[spec.id_column].astype("string")
            known = ids.isin(by_id.index).to_numpy()
            if known.any():
                labels = encode_target(by_id.loc[ids[known]].reset_index(drop=True), features)
                labeled[name] = (labels, scored["probability"].to_numpy()[known])
    realized_next_to_estimates(ledger, labeled)
    if ledger:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda p: p.write_text(json.dumps(ledger, indent=1)))
    return [{"file": name, **entry} for name, entry in list(ledger.items())[-20:]]


def monitor(context: dg.AssetExecutionContext, proj: Project, mlflow) -> dg.Output[dict]:
    from mlcicd.core.features import encode_target
    from mlcicd.core.metrics import task_metrics
    from mlcicd.core.monitoring import drift_report as measure_drift
    from mlcicd.core.monitoring import monitoring_page
    from mlcicd.core.train import predict
    from mlcicd.mlflow_registry import load_model, load_reference

    spec, settings = proj.config.dataset, proj.config.monitoring
    name, champion, batches, current = monitored_window(proj)
    version = str(champion.version)
    booster, features = load_model(proj, name, version)
    reference = load_reference(proj, name, version)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report = measure_drift(
        reference, current, features.numeric, features.categorical,
        sample_rows=settings.sample_rows, seed=proj.config.model.seed, unusual=[f for b in batches for f in b.unusual],
        importance=dict(zip(booster.feature_name(), booster.feature_importance("gain").tolist())),
    )
    report["report_path"] = str(proj.data_dir / "reports" / f"drift-{stamp}-v{version}.html")
    metric = proj.config.gates.primary_metric
    performance = None
    scores = predict(booster, features, current)
    tag = (champion.tags or {}).get(f"holdout_{metric}")
    if spec.target in current.columns:
        now_value = task_metrics(features.task, encode_target(current[spec.target], features), scores, features.threshold)[metric]
        performance = {"metric": metric, "current": now_value, "holdout": float(tag) if tag else None, "rows": len(current)}
    estimated = estimate_before_labels(proj, features, version, scores, float(tag) if tag else None, performance and performance["current"])
    estimates = record_estimates(proj, estimated, version, (current, features) if spec.target in current.columns else None)
    value = {
        "champion_version": version,
        "batches": [b.batch_id for b in batches],
        **report,
        "performance": performance,
        "estimated_performance": estimated,
        "estimates": estimates,
        "measured_at": stamp,
    }
    verdicts = [data_drift_gate(value, settings.max_drift_share), performance_decay_gate(value, settings.max_decay),  # as the checks judge
                estimated_performance_gate(estimated, settings.max_decay)]
    monitoring_page(
        Path(report["report_path"]), model=proj.name, champion_version=version, batches=value["batches"],
        verdicts=[(v.gate, v.passed, v.reason) for v in verdicts],
        rules=[f"{BY_NAME['data_drift'].demands} (monitoring.max_drift_share: {settings.max_drift_share:g})",
               f"{BY_NAME['performance_decay'].demands} (monitoring.max_decay: {settings.max_decay:g})",
               f"{BY_NAME['estimated_performance'].demands} (monitoring.max_decay: {settings.max_decay:g})"],
        reference_rows=report["reference_rows"], current_rows=report["current_rows"], columns=report["columns"],
        evidently_page=evidently_path(proj, version, batches).name,
    )
    # the HTML goes to MLflow too, so the UI can link to it (served by `make mlflow-ui`)
    mlflow.set_tags({"mlcicd_kind": "monitoring", "champion_version": version})
    span = batches[0].batch_id if len(batches) == 1 else f"{batches[0].batch_id} to {batches[-1].batch_id}"
    mlflow.name(f"{proj.name} v{version} · monitoring · {len(batches)} batch{'es' if len(batches) > 1 else ''} ({span})")
    mlflow.log_metrics({"drift_share": report["drift_share"], **({f"champion_{metric}_now": performance["current"]} if performance else {})})
    mlflow.log_artifact(report["report_path"], "drift")
    metadata = {
        "champion_version": version,
        "drift_share": report["drift_share"],
        "importance_share": report["importance_share"] if report["importance_share"] is not None else "unknown",
        "drifted_columns": ", ".join(report["drifted"]) or "none",
        "report": dg.MetadataValue.path(report["report_path"]),
        "report_in_mlflow": dg.MetadataValue.url(mlflow.ui_url(f"drift/{Path(report['report_path']).name}")),
        "columns": dg.MetadataValue.md(_drift_table(report)),
    }
    if performance:
        metadata[f"champion_{metric}_now"] = performance["current"]
    if estimated.get("estimable"):
        metadata[f"champion_{metric}_estimated"] = estimated["estimate"]
        metadata["estimates_vs_realized"] = dg.MetadataValue.md(_estimates_table(estimates))
    return dg.Output(value, metadata=shown(metadata))
