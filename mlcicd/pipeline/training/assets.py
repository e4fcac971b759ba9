"""training_dataset -> train_set / holdout_set -> candidate_model -> candidate_evaluation."""

import functools
from datetime import datetime, timedelta, timezone

import dagster as dg
import pandas as pd

from mlcicd.core.contract import all_distinct
from mlcicd.core.dataset import dataset_hash, load_batches, newest_ingestion, row_keys, sample, shared_keys, split_by_time, window
from mlcicd.core.ingest import list_accepted
from mlcicd.core.tasks import task_of
from mlcicd.faults import kill_point
from mlcicd.gate_checks import shown, check_result, check_specs
from mlcicd.names import Names
from mlcicd.project import Project
from mlcicd.resources import DaskClusters, MlflowTracking, run_tier

HASH_ATTR = "mlcicd_dataset_hash"  # carried in DataFrame.attrs (kept by Parquet) from the dataset to the split
HOLDOUT_ATTR = "mlcicd_holdout_share"  # the share of the rows the holdout takes, decided where the batches are known
BATCHES_ATTR = "mlcicd_batches"  # the accepted batch ids the rows came from


# Every training asset: new accepted data retrains by itself (retrain_on_new_data sensor), and so does a change to the
# code or settings that shape it in a running deployment (its code version, mlcicd/code_versions.py), but never past a
# failed blocking gate upstream (eager() alone would ignore failed checks).
RETRAIN_ON_NEW_DATA = (
    (dg.AutomationCondition.eager() | dg.AutomationCondition.code_version_changed())
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
)


def training_assets_for(n: Names, proj: Project) -> list:
    """training_dataset -> train_set / holdout_set -> candidate_model -> candidate_evaluation, for one model."""
    freshness = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=proj.config.gates.max_data_age_hours))
    common = {"group_name": n.group, "io_manager_key": n.io_manager_key, "automation_condition": RETRAIN_ON_NEW_DATA}
    # model.engine: dask keeps the rows on the workers: training_dataset and train_set are then manifests (on_workers.py)
    on_workers = proj.config.model.engine == "dask"
    rows_kinds = {"dask", "parquet"} if on_workers else {"pandas", "parquet"}

    @dg.asset(
        key=n.key("training_dataset"), deps=[n.key("raw_batch")], kinds=rows_kinds, **common,
        description=(
            "The newest accepted batches (dataset.window_batches), in time order; its data version is a content hash. "
            "Its data gates run where the rows are (model.engine: dask: on the workers; the asset is then a manifest of the "
            "accepted Parquet files): freshness, minimum rows, label balance, unique ids."
        ),
        freshness_policy=freshness,  # the UI's view; the blocking gate is data_freshness
        check_specs=check_specs(n, "training_dataset"),
    )
    def training_dataset(context: dg.AssetExecutionContext, dask: DaskClusters):
        if on_workers:
            from .on_workers import build_manifest

            yield from build_manifest(context, n, proj, dask)
        else:
            yield from build_dataset(context, n, proj)

    @dg.multi_asset(
        name=n.op("train_holdout_split"),
        ins=n.ins("training_dataset"),
        outs={
            "train_set": dg.AssetOut(
                key=n.key("train_set"), kinds=rows_kinds, **common,
                description="The older rows of training_dataset (everything before the holdout), for fitting the model "
                            "(model.engine: dask: the manifest and the cut; the rows stay on the workers).",
            ),
            "holdout_set": dg.AssetOut(
                key=n.key("holdout_set"), kinds={"pandas", "parquet"}, **common,
                description="The newest rows of training_dataset (dataset.holdout_fraction), never trained on, for evaluating candidate and champion.",
            ),
        },
        check_specs=check_specs(n, "holdout_set"),
    )
    def train_holdout_split(training_dataset, dask: DaskClusters):  # rows, or (model.engine: dask) a manifest
        if on_workers:
            from .on_workers import split_manifest

            yield from split_manifest(training_dataset, n, proj, dask)
        else:
            yield from split(training_dataset, n, proj)

    @dg.asset(
        key=n.key("candidate_model"), ins=n.ins("train_set"), kinds={"lightgbm", "mlflow"}, **common,
        description="A LightGBM model trained on train_set through the shared feature code, registered in MLflow as `challenger`.",
    )
    def candidate_model(context: dg.AssetExecutionContext, train_set, mlflow: MlflowTracking, dask: DaskClusters) -> dg.Output[dict]:
        return train(context, train_set, proj, mlflow, dask)

    @dg.asset(
        key=n.key("candidate_evaluation"), ins=n.ins("candidate_model", "holdout_set"), kinds={"lightgbm", "mlflow"}, **common,
        description=(
            "The registered candidate and the current champion, scored on the same holdout through the shared feature path: "
            "metrics, per-slice metrics, calibration, latency, size, and a paired bootstrap of their difference."
        ),
    )
    def candidate_evaluation(
        context: dg.AssetExecutionContext, candidate_model: dict, holdout_set: pd.DataFrame, mlflow: MlflowTracking
    ) -> dg.Output[dict]:
        return evaluate_candidate(context, candidate_model, holdout_set, proj, mlflow)

    return [training_dataset, train_holdout_split, candidate_model, candidate_evaluation]


def build_dataset(context: dg.AssetExecutionContext, n: Names, proj: Project):
    from mlcicd.core import gates

    spec, thresholds = proj.config.dataset, proj.config.gates
    tier = proj.tier(run_tier(context))
    batches = window(list_accepted(proj.accepted_dir), spec.window_batches)
    if not batches:
        raise dg.Failure(f"No accepted batches in {proj.accepted_dir}: land data in {proj.landing_dir} and ingest it first.")
    frame = sample(load_batches(batches, spec.time_column), tier.sample_rows, proj.config.model.seed)
    if spec.target not in frame.columns:
        raise dg.Failure(f"The accepted batches have no target column '{spec.target}' (dataset.target in mlcicd.yaml).")
    digest = dataset_hash(batches, tier.sample_rows)
    frame.attrs[HASH_ATTR] = digest
    frame.attrs[HOLDOUT_ATTR] = holdout_share(spec, batches)
    frame.attrs[BATCHES_ATTR] = [b.batch_id for b in batches]
    kill_point("dataset.before_output")
    time_range = {"first_time": str(frame[spec.time_column].min()), "last_time": str(frame[spec.time_column].max())} if spec.time_column else {}
    balance = gates.label_balance_gate(
        spec.task, frame[spec.target], positive_rate=thresholds.positive_rate, min_class_share=thresholds.min_class_share
    )
    yield dg.Output(
        frame,
        data_version=dg.DataVersion(digest),
        metadata=shown({
            "dataset_hash": digest,
            "dagster/row_count": len(frame),
            "batches": len(batches),
            "sampled_rows": tier.sample_rows or "all",
            "task": spec.task,
            **time_range,
            **{k: v for k, v in balance.numbers.items() if k.startswith(("share_", "positive_rate", "target_"))},
        }),
    )
    keys = row_keys(frame, spec.id_column)
    repeated = pd.Series(False, index=keys.index) if all_distinct(keys) else keys.duplicated()  # the common case, found fast
    duplicated = keys[repeated]
    # examples a person can read: the ids, or (without an id column) the repeated rows themselves
    examples = duplicated.unique()[:3].tolist() if spec.id_column else [row.to_dict() for _, row in frame[repeated].head(3).iterrows()]
    for verdict in (
        gates.freshness_gate(newest_ingestion(batches), datetime.now(timezone.utc), thresholds.max_data_age_hours),
        gates.min_rows_gate(len(frame), thresholds.min_rows),
        balance,
        gates.unique_ids_gate(int(duplicated.nunique()), spec.id_column, examples, spec.duplicate_policy),
    ):
        yield check_result(verdict, asset_key=n.key("training_dataset"))


def split(training_dataset: pd.DataFrame, n: Names, proj: Project):
    from mlcicd.core.gates import leakage_gate

    spec = proj.config.dataset
    share = training_dataset.attrs.get(HOLDOUT_ATTR, spec.holdout_fraction)
    train, holdout = split_by_time(training_dataset, spec.time_column, share)
    digest = training_dataset.attrs[HASH_ATTR]
    for part in (train, holdout):
        part.attrs[HASH_ATTR] = digest
        part.attrs[BATCHES_ATTR] = training_dataset.attrs.get(BATCHES_ATTR, [])
    kill_point("split.before_output")
    cut = str(holdout[spec.time_column].min()) if spec.time_column else None
    train_last = str(train[spec.time_column].max()) if spec.time_column else None
    yield dg.Output(train, output_name="train_set", metadata={"dagster/row_count": len(train), "dataset_hash": digest, "before": cut or "(by arrival)"})
    yield dg.Output(holdout, output_name="holdout_set", metadata={"dagster/row_count": len(holdout), "dataset_hash": digest, "from": cut or "(by arrival)"})
    shared = shared_keys(row_keys(train, spec.id_column), row_keys(holdout, spec.id_column))
    allowed = spec.id_column is None and spec.duplicate_policy == "allow"
    yield check_result(leakage_gate(len(shared), train_last, cut, shared[:3].tolist(), identical_rows_allowed=allowed), asset_key=n.key("holdout_set"))


def holdout_share(spec, batches) -> float:
    """dataset.holdout_fraction, or (with dataset.holdout_batches K) the share of the window's rows that its newest K
    batches hold, when the window has more than K batches."""
    from mlcicd.core.dataset import holdout_fraction_of_batches

    if spec.holdout_batches is None:
        return spec.holdout_fraction
    return holdout_fraction_of_batches(batches, spec.holdout_batches) or spec.holdout_fraction


def train(context: dg.AssetExecutionContext, train_set, proj: Project, mlflow: MlflowTracking, dask: DaskClusters) -> dg.Output[dict]:
    from mlcicd.core.train import nothing_new, train_model, training_fingerprint
    from mlcicd.mlflow_registry import CHAMPION, load_provenance, log_candidate, log_reference, next_version, version_by_alias
    from mlcicd.project import git_commit

    mlflow = mlflow.for_model(proj)
    tier_name = run_tier(context)
    tier = proj.tier(tier_name)
    rounds = tier.num_boost_round or proj.config.model.num_boost_round
    manifest = train_set if isinstance(train_set, dict) else None  # model.engine: dask: the rows are on the workers
    digest, commit = manifest["dataset_hash"] if manifest else train_set.attrs[HASH_ATTR], git_commit(proj.root)
    fingerprint = training_fingerprint(proj.config.dataset, proj.config.model, rounds, tier.sample_rows)
    champion = version_by_alias(proj, proj.model_name(tier_name), CHAMPION)
    if champion is not None and nothing_new(champion.tags or {}, digest, commit, fingerprint):
        said = (f"unchanged: nothing new to learn (champion version {champion.version} was trained on dataset {digest[:12]} by commit "
                f"{commit[:12]} with these settings); nothing is trained or registered, the champion is evaluated as the candidate")
        context.log.info(said)
        mlflow.name(run_name(proj, str(champion.version), mlflow.purpose, digest) + " · unchanged")
        value = {"name": proj.model_name(tier_name), "version": str(champion.version), "run_id": None, "uri": f"models:/{champion.name}/{champion.version}",
                 "dataset_hash": digest, "tier": tier_name, "git_commit": commit, "unchanged": True,
                 "training": (load_provenance(proj, champion.name, str(champion.version)) or {}).get("training")}
        return dg.Output(value, metadata={"model": value["name"], "version": value["version"], "unchanged": dg.MetadataValue.text(said)})
    if manifest:
        from .on_workers import fit_on_workers

        # `seen`: a sample of the rows, for MLflow (the reference, the input example, the dataset's schema)
        trained, seen, present = fit_on_workers(manifest, proj, rounds, dask)
        rows, batches, span = manifest["rows"], manifest["batches"], {k: manifest[k] for k in ("first_time", "last_time") if k in manifest}
    else:
        trained = train_model(
            train_set, proj.config.dataset, proj.config.model, rounds,
            on_round=lambda done, total: context.log.debug(f"boosting round {done} of at most {total}") if done % max(1, total // 5) == 0 else None,
        )
        seen, present, rows, batches = train_set, None, len(train_set), list(train_set.attrs.get(BATCHES_ATTR) or [])
        time = proj.config.dataset.time_column
        span = {"first_time": str(train_set[time].min()), "last_time": str(train_set[time].max())} if time else {}
    # the first thing logged starts this Dagster run's MLflow run, which log_reference and log_candidate log into
    mlflow.log_params({**trained.params, "num_boost_round": rounds, "train_rows": rows, "tier": tier_name})
    mlflow.log_metrics({"best_iteration": trained.best_iteration})
    mlflow.set_tags({"dataset_hash": digest, "git_commit": commit})
    mlflow.log_dataset(
        seen, digest=digest, source=proj.accepted_dir.resolve().as_uri(), name=f"{proj.name} training rows {digest[:8]}",
        target=proj.config.dataset.target, batches=batches, present=present, rows=rows if manifest else None,
    )
    log_reference(seen, proj.config.monitoring.reference_rows, proj.config.model.seed)
    model_name = proj.model_name(tier_name)
    registered = log_candidate(
        proj,
        trained,
        seen,
        logged_name=f"{proj.name}-v{next_version(proj, model_name)}",
        model_name=model_name,
        challenger=tier_name != "pr",  # the pull-request tier moves no alias
        tags={"dataset_hash": digest, "git_commit": commit, "dagster_run_id": context.run.run_id, "tier": tier_name,
              "training_fingerprint": fingerprint},
    )
    mlflow.name(run_name(proj, registered.version, mlflow.purpose, digest))
    training = {"batches": batches, **span, "rows": rows, "params": trained.params, "num_boost_round": rounds, "best_iteration": trained.best_iteration}
    why, made_from = record_provenance(context, proj, mlflow, model_name, registered.version, champion, digest, batches, commit, training)
    value = {
        **registered.to_dict(),
        "dataset_hash": digest,
        "tier": tier_name,
        "best_iteration": trained.best_iteration,
        "train_rows": rows,
        "git_commit": commit,
        "training": training,
        "provenance": made_from,
    }
    return dg.Output(
        value,
        metadata={
            "model": registered.name,
            "version": registered.version,
            "model_uri": registered.uri,
            "mlflow_run_id": registered.run_id or "",
            "best_iteration": trained.best_iteration,
            "dataset_hash": digest,
            "changes_since_champion": dg.MetadataValue.text(why),
        },
    )


REASON_TAG = "mlcicd/changes_since_champion"  # on the Dagster run, the MLflow run and the version


def record_provenance(
    context, proj: Project, mlflow, model_name: str, version: str, champion, digest: str, batches: list[str], commit: str,
    training: dict,
) -> tuple[str, dict]:
    """Keep what this version was made from with its MLflow run, and say what changed since the champion on each axis
    (data, code, settings): on the Dagster run's tags, the MLflow run and the registered version. Returns that sentence
    and the provenance."""
    from mlcicd.champion import compare
    from mlcicd.code_versions import components
    from mlcicd.core.changes import in_one_line, provenance
    from mlcicd.mlflow_registry import client, load_provenance, log_provenance

    settings = proj.config.model_dump(mode="json", exclude={"simulator"})
    after = provenance(dataset_hash=digest, batches=batches, git_commit=commit, components=components(proj), settings=settings,
                       training=training)
    log_provenance(after)
    if champion is None:
        why = "the first version: there is no champion to compare with"
    else:
        why = f"since champion version {champion.version}: " + in_one_line(compare(proj, load_provenance(proj, model_name, str(champion.version)), after))
    context.instance.add_run_tags(context.run.run_id, {REASON_TAG: why[:4000]})
    mlflow.set_tags({REASON_TAG: why[:4000]})
    client(proj).set_model_version_tag(model_name, version, REASON_TAG, why[:4000])
    context.log.info(f"version {version}: {why}")
    return why, after


def run_name(proj: Project, version: str, purpose: str, digest: str) -> str:
    """What an MLflow training run is, in its name: "fraud v4 · training · data 06a0bb85"."""
    return f"{proj.name} v{version} · {purpose} · data {digest[:8]}"


def report_metadata(
    context, proj, mlflow: MlflowTracking, value: dict, booster, features, candidate: tuple, champion: tuple | None, verdicts,
) -> dict:
    """Write the candidate's HTML evaluation report, log it to MLflow, and return the metadata that links it
    (plus the markdown summary). The report is evidence for people, not a gate: if it cannot be made, the
    metadata says why and the gates still judge the evaluation. A tier may leave the report out (ci does:
    Evidently and the plots take seconds); the summary's numbers are always made."""
    from mlcicd.core import report

    images, url, tier = {}, None, value["tier"]
    try:
        if proj.tier(tier).evaluation_report:
            importance = dict(zip(booster.feature_name(), booster.feature_importance("gain").tolist()))
            threshold = value.get("threshold") or 0.5
            images = report.plots(features.task, candidate, champion, importance, features.classes, threshold=threshold)
            target = proj.config.dataset.target
            evidently, evidently_rows = report.evidently_html(features.task, candidate, champion, features.classes, proj.config.model.seed, target)
            context_of_report = report.ReportContext(
                verdicts=verdicts(), promotion_mode=proj.config.promotion.mode,
                tolerance=proj.config.gates.max_regression, target=target, evidently_rows=evidently_rows,
                threshold_rows=report.threshold_table(*candidate, threshold) if task_of(features.task).thresholded else None,
            )
            path = report.write_report(proj.evaluation_report(value["model_name"], value["candidate"]["version"]), value, images,
                                       evidently, context_of_report)
            mlflow.log_artifact(str(path), "evaluation")
            url = mlflow.ui_url(f"evaluation/{path.name}")
            links = {"report": dg.MetadataValue.path(str(path)), "report_in_mlflow": dg.MetadataValue.url(url)}
        else:
            links = {"report": dg.MetadataValue.text(f"not written: the {tier} tier skips it (tiers.{tier}.evaluation_report)")}
    except Exception as exc:  # noqa: BLE001 - reported in the metadata and the log, never hidden
        context.log.error(f"the evaluation report could not be written: {type(exc).__name__}: {exc}")
        links = {"report": dg.MetadataValue.text(f"not written: {type(exc).__name__}: {exc}")}
    return {**links, "summary": dg.MetadataValue.md(report.summary_markdown(value, images, url))}


def write_pr_report(context, proj: Project, value: dict, candidate_model: dict, booster, features, champion_model, holdout, current,
                    verdicts):
    """The pull-request report (core/pr_report.py) at data/reports/ci/<model>.md, appended to $GITHUB_STEP_SUMMARY when set."""
    import os

    from mlcicd.champion import compare
    from mlcicd.core.ingest import atomic_write
    from mlcicd.core.pr_report import importance_changes, pr_markdown, psi_by_feature
    from mlcicd.mlflow_registry import load_provenance, load_reference

    def gains(model) -> dict[str, float]:
        return dict(zip(model.feature_name(), model.feature_importance("gain").tolist()))

    importance, drift, before = [], [], None
    if champion_model is not None:
        importance = importance_changes(gains(booster), gains(champion_model[0]))
        version = str(current.version)
        try:
            reference_rows = load_reference(proj, value["champion_model_name"], version)
            drift = psi_by_feature(reference_rows, holdout, features.numeric, features.categorical)
        except Exception as exc:  # noqa: BLE001 - the report says the drift could not be measured; the gates do not depend on it
            context.log.warning(f"drift against the reference's training data could not be measured: {exc}")
        before = load_provenance(proj, value["champion_model_name"], version)
    changes = compare(proj, before, candidate_model.get("provenance") or {})
    text = pr_markdown(value, verdicts(), importance=importance, drift=drift, changes=changes,
                       sample_rows=proj.tier("pr").sample_rows)
    path = proj.pr_report
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    context.log.info(f"pull-request report: {path}")
    return path


def gate_verdicts(context, proj: Project, value: dict) -> list[tuple[str, bool, str]]:
    """Every data and model gate's verdict on this candidate, in pipeline order, for the top of its report: the data gates
    as this run judged them, the model gates by the very judges their checks run (training/checks.py)."""
    from mlcicd.core import gate_table
    from mlcicd.names import names
    from mlcicd.pipeline.promotion.assets import gate_results

    from .checks import JUDGES

    earlier = gate_results(context.instance, names(proj), run_tier(context))
    verdicts = []
    for gate in gate_table.GATES:
        if gate.stage not in ("data", "model"):
            continue
        if gate.name in JUDGES:
            verdict = JUDGES[gate.name](value, proj, context)
            verdicts.append((gate.name, verdict.passed, verdict.reason))
        else:
            result = earlier.get(gate.name, {"passed": False, "reason": "no result"})
            verdicts.append((gate.name, result["passed"], result["reason"]))
    return verdicts


def evaluate_candidate(context, candidate_model: dict, holdout_set: pd.DataFrame, proj: Project, mlflow: MlflowTracking) -> dg.Output[dict]:
    from mlcicd.core.evaluate import evaluate_models
    from mlcicd.mlflow_registry import CHAMPION, at_promotion, load_model, production_reference, version_by_alias
    from mlcicd.project import merge_base

    mlflow = mlflow.for_model(proj)
    spec, gates = proj.config.dataset, proj.config.gates
    metric, name = gates.primary_metric, candidate_model["name"]
    seed = proj.config.model.seed

    def evaluate(champion_model):
        return evaluate_models(
            candidate_model_loaded, champion_model, holdout_set, target=spec.target, slice_columns=spec.slice_columns, gates=gates, seed=seed
        )

    candidate_model_loaded = booster, features = load_model(proj, name, candidate_model["version"])
    kill_point("evaluate.after_candidate")
    reference = None
    if candidate_model["tier"] == "pr":  # judged against production's champion, read-only (else the base branch's model)
        reference = production_reference(proj, name, merge_base(proj.root), candidate_model["version"])
        context.log.info(f"pull-request tier: compared with {reference.why}")
        champion_name, current = reference.model_name, reference.version
    else:
        champion_name, current = name, version_by_alias(proj, name, CHAMPION)
    champion_error, champion_model = None, None
    if reference is not None and reference.unreadable and current is None:  # fail closed: nothing was compared
        champion_error = f"there is nothing to compare with: {reference.why}"
        context.log.error(champion_error)
    if current is not None:
        try:
            champion_model = load_model(proj, champion_name, str(current.version))
            evidence = evaluate(champion_model)
        except Exception as exc:  # a champion that cannot be scored fails the regression gates, with this reason
            champion_model, champion_error = None, f"{type(exc).__name__}: {exc}"
            context.log.error(f"champion version {current.version} could not be scored: {champion_error}")
    if champion_model is None:
        evidence = evaluate(None)
    candidate = {"version": candidate_model["version"], **evidence["candidate"]}
    champion = None
    if current is not None:  # what the champion showed when it was promoted: the reference for the newest labels and slices
        champion = {"version": str(current.version), **(evidence["champion"] or {}), "at_promotion": at_promotion(current, metric)}
    comparison = evidence["comparison"]
    candidate_predictions, champion_predictions = evidence["predictions"]
    mlflow.log_metrics({f"holdout_{k}": v for k, v in candidate["metrics"].items()})
    mlflow.log_metrics({"holdout_calibration_error": candidate["calibration_error"], "model_size_bytes": candidate["size_bytes"]})
    mlflow.log_metrics({f"latency_{k}": v for k, v in candidate["latency"].items()})
    if champion and "metrics" in champion:
        mlflow.log_metrics({f"champion_holdout_{k}": v for k, v in champion["metrics"].items()})
    value = {
        "model_name": name,
        "tier": candidate_model["tier"],
        "unchanged": bool(candidate_model.get("unchanged")),  # the champion itself: nothing new to learn
        "dataset_hash": holdout_set.attrs[HASH_ATTR],
        "holdout_rows": len(holdout_set),
        "primary_metric": metric,
        "candidate": candidate,
        "champion": champion,
        "champion_error": champion_error,
        "comparison": comparison,
        "features": {"numeric": features.numeric, "categorical": features.categorical, "inputs": features.feature_names},
        "bootstrap": evidence["bootstrap"],
        "threshold": features.threshold if task_of(features.task).thresholded else None,
        "operating_point": evidence["operating_point"],
        "negative_flips": evidence["negative_flips"],
        "training": candidate_model.get("training"),
        "dagster_run_id": context.run.run_id,
        "mlflow_run_id": mlflow.run_id,
        "reference": {"source": reference.source, "model_name": reference.model_name, "why": reference.why} if reference else None,
        "champion_model_name": champion_name,
    }
    metadata = {
        "candidate_version": candidate["version"],
        "champion_version": champion["version"] if champion else "none",
        f"candidate_{metric}": candidate["metrics"][metric],
        "holdout_rows": len(holdout_set),
        "dataset_hash": value["dataset_hash"],
    }
    if comparison:
        metadata.update({f"better_by_{metric}": comparison["delta"], f"better_by_{metric}_lower_bound": comparison["lower"]})
    # judged at most once, when the HTML report or the pull-request report asks for them (the checks judge them again, after)
    verdicts = functools.cache(lambda: gate_verdicts(context, proj, value))
    metadata.update(report_metadata(context, proj, mlflow, value, booster, features, candidate_predictions, champion_predictions, verdicts))
    if candidate_model["tier"] == "pr":
        # what it showed on its holdout, kept on the version as a promotion keeps it: so it can stand in for the base
        # branch's model later (label_quality and the slice gate compare the newest labels with it)
        from mlcicd.mlflow_registry import client, promotion_evidence_tags

        for key, tag in promotion_evidence_tags(value).items():
            client(proj).set_model_version_tag(name, candidate["version"], key, tag)
        path = write_pr_report(context, proj, value, candidate_model, booster, features, champion_model, holdout_set, current, verdicts)
        metadata["pr_report"] = dg.MetadataValue.path(str(path))
    kill_point("evaluate.before_output")
    return dg.Output(value, metadata=shown(metadata))
