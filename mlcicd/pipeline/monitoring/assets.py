"""drift_report: the newest accepted data against the champion's training reference (Evidently, sampled),
and the champion's performance on it where labels are present."""

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from mlcicd.core.dataset import load_batches, window
from mlcicd.core.gate_table import BY_NAME
from mlcicd.core.gates import data_drift_gate, performance_decay_gate
from mlcicd.gate_checks import shown, check_result
from mlcicd.core.ingest import list_accepted
from mlcicd.names import Names
from mlcicd.project import Project
from mlcicd.resources import MlflowTracking



def _drift_table(report: dict, limit: int = 10) -> str:
    rows = ["| column | method | value | threshold | drifted |", "|---|---|---|---|---|"]
    ordered = sorted(report["columns"].items(), key=lambda item: (not item[1]["drifted"], item[0]))
    for column, entry in ordered[:limit]:
        outside = " (outside the contract's expectations)" if entry.get("contract") else ""
        rows.append(f"| {column} | {entry['method']} | {entry['value']:.4f} | {entry['threshold']:g} | {'yes' if entry['drifted'] else 'no'}{outside} |")
    return "\n".join(rows)


def drift_report_for(n: Names, proj: Project) -> list:
    """drift_report and its two gates (data_drift, performance_decay: severity ERROR, blocking, so a failure fails
    monitoring_job and `dagster job execute` exits non-zero like ci_job; drift_sensor reads them)."""

    @dg.asset(
        key=n.key("drift_report"), deps=[n.key("champion")], group_name=n.group, io_manager_key=n.io_manager_key,
        kinds={"evidently", "mlflow"},
        description=(
            "Data drift of the newest accepted batches (monitoring.window_batches) against the champion's training "
            "reference, from an Evidently report on samples (HTML under the model's reports/), and the champion's "
            "performance on those batches against its holdout value."
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

    return [drift_report, data_drift_check, performance_decay_check]


def monitor(context: dg.AssetExecutionContext, proj: Project, mlflow) -> dg.Output[dict]:
    from mlcicd.core.features import encode_target
    from mlcicd.core.metrics import task_metrics
    from mlcicd.core.monitoring import drift_report as measure_drift
    from mlcicd.core.monitoring import monitoring_page
    from mlcicd.core.train import predict
    from mlcicd.mlflow_registry import CHAMPION, load_model, load_reference, version_by_alias

    spec, settings = proj.config.dataset, proj.config.monitoring
    name = proj.model_name("full")
    champion = version_by_alias(proj, name, CHAMPION)
    if champion is None:
        raise dg.Failure(f"There is no champion of {name} to monitor yet; promote one first.")
    version = str(champion.version)
    batches = window(list_accepted(proj.accepted_dir), settings.window_batches)
    if not batches:
        raise dg.Failure(f"No accepted batches in {proj.accepted_dir} to monitor.")
    current = load_batches(batches, spec.time_column)
    booster, features = load_model(proj, name, version)
    reference = load_reference(proj, name, version)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report = measure_drift(
        reference, current, features.numeric, features.categorical,
        sample_rows=settings.sample_rows, seed=proj.config.model.seed, unusual=[f for b in batches for f in b.unusual],
        importance=dict(zip(booster.feature_name(), booster.feature_importance("gain").tolist())),
        html=True, drift_share=settings.max_drift_share,
    )
    report["report_path"] = str(proj.data_dir / "reports" / f"drift-{stamp}-v{version}.html")
    metric = proj.config.gates.primary_metric
    performance = None
    if spec.target in current.columns:
        now_value = task_metrics(features.task, encode_target(current[spec.target], features), predict(booster, features, current))[metric]
        tag = (champion.tags or {}).get(f"holdout_{metric}")
        performance = {"metric": metric, "current": now_value, "holdout": float(tag) if tag else None, "rows": len(current)}
    evidently = report.pop("evidently_html")
    value = {
        "champion_version": version,
        "batches": [b.batch_id for b in batches],
        **report,
        "performance": performance,
        "measured_at": stamp,
    }
    verdicts = [data_drift_gate(value, settings.max_drift_share), performance_decay_gate(value, settings.max_decay)]  # as the checks judge
    monitoring_page(
        Path(report["report_path"]), model=proj.name, champion_version=version, batches=value["batches"],
        verdicts=[(v.gate, v.passed, v.reason) for v in verdicts],
        rules=[f"{BY_NAME['data_drift'].demands} (monitoring.max_drift_share: {settings.max_drift_share:g})",
               f"{BY_NAME['performance_decay'].demands} (monitoring.max_decay: {settings.max_decay:g})"],
        reference_rows=report["reference_rows"], current_rows=report["current_rows"], evidently_html=evidently,
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
    return dg.Output(value, metadata=shown(metadata))
