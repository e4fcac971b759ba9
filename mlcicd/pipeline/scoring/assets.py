"""batch_predictions: unlabeled batches scored by the champion, and by the challenger in shadow."""

import dagster as dg

from mlcicd.core.ingest import BatchVerdict, atomic_write, file_sha256, move_keeping_both, pending_files, read_validated
from mlcicd.gate_checks import shown
from mlcicd.names import Names
from mlcicd.project import Project


def batch_predictions_for(n: Names, proj: Project) -> dg.AssetsDefinition:
    @dg.asset(
        key=n.key("batch_predictions"), deps=[n.key("champion")], group_name=n.group, io_manager_key=n.io_manager_key,
        kinds={"lightgbm", "parquet"},
        description=(
            "Every batch waiting in scoring.landing_dir, scored by the champion through the same feature code as training "
            "(the model's predictions/), with the challenger's predictions beside them in shadow; their disagreement is recorded."
        ),
    )
    def batch_predictions(context: dg.AssetExecutionContext) -> dg.Output[dict]:
        return score(context, proj)

    return batch_predictions


def score(context: dg.AssetExecutionContext, proj: Project) -> dg.Output[dict]:
    from mlcicd.core.scoring import decisions, shadow_comparison
    from mlcicd.core.train import predict
    from mlcicd.mlflow_registry import CHALLENGER, CHAMPION, load_model, version_by_alias

    spec = proj.config.dataset
    name = proj.model_name("full")
    champion = version_by_alias(proj, name, CHAMPION)
    if champion is None:
        raise dg.Failure(f"There is no champion of {name}; promote one before scoring.")
    from mlcicd.core.audit import audited_artifact, unaudited

    moved_outside = unaudited(proj.audit_log, name, str(champion.version))
    if moved_outside:
        raise dg.Failure(f"Nothing was scored: {moved_outside}. Promote or roll back through the pipeline, or set promotion.revert_unaudited.")
    try:
        champion_model = load_model(proj, name, str(champion.version), audited_artifact(proj.audit_log, name, str(champion.version)))
    except Exception as exc:  # noqa: BLE001 - said in words: nothing is scored with files that do not verify
        raise dg.Failure(
            f"Champion version {champion.version} of {name} cannot be used for scoring: {exc}. Nothing was scored; roll back to a "
            "version whose files match (`make rollback`)."
        ) from None
    challenger = version_by_alias(proj, name, CHALLENGER)
    shadow = None
    if challenger and challenger.version != champion.version:
        try:
            shadow = load_model(proj, name, str(challenger.version))
        except Exception as exc:  # noqa: BLE001 - the shadow is evidence, not the answer: score without it, and say so
            context.log.warning(f"challenger version {challenger.version} is left out of the shadow comparison: {exc}")
    contract = proj.contract.without(spec.target)

    scored, rejected, comparisons = [], [], []
    for path in pending_files(proj.scoring_dir):
        digest = file_sha256(path)
        checked = read_validated(path, contract, proj.quarantine_dir, digest, ignore=(spec.target,))
        if isinstance(checked, BatchVerdict):
            rejected.append(checked.to_dict())
            continue
        rows = checked.validated
        out = rows[[c for c in (spec.id_column, spec.time_column) if c]].copy()
        out["champion_version"] = str(champion.version)
        mine = decisions(champion_model[1], predict(*champion_model, rows))
        out = out.assign(**mine)
        if shadow is not None:
            theirs = decisions(shadow[1], predict(*shadow, rows))
            out["challenger_version"] = str(challenger.version)
            out = out.assign(**{f"challenger_{k}": v for k, v in theirs.items()})
            comparisons.append(shadow_comparison(spec.task, mine, theirs))
        proj.predictions_dir.mkdir(parents=True, exist_ok=True)
        target = proj.predictions_dir / f"{path.stem}-{digest[:8]}.parquet"
        atomic_write(target, lambda p: out.to_parquet(p, index=False))
        move_keeping_both(path, proj.archive_dir / "scored", digest)
        scored.append({"source": path.name, "rows": len(out), "predictions": str(target)})

    total = sum(s["rows"] for s in scored)
    summary = None
    if comparisons:
        weights = [c["rows"] for c in comparisons]
        summary = {k: sum(c[k] * w for c, w in zip(comparisons, weights)) / sum(weights) for k in comparisons[0] if k != "rows"}
    value = {
        "champion_version": str(champion.version),
        "challenger_version": str(challenger.version) if shadow is not None else None,
        "scored": scored,
        "rejected": rejected,
        "rows": total,
        "shadow": summary,
    }
    metadata = {
        "files_scored": len(scored),
        "files_rejected": len(rejected),
        "dagster/row_count": total,
        "champion_version": str(champion.version),
        "challenger_version": value["challenger_version"] or "none (no shadow)",
    }
    if summary:
        metadata.update({f"shadow_{k}": v for k, v in summary.items()})
    for item in rejected:
        context.log.warning(f"{item['source']}: quarantined ({'; '.join(item['problems'])})")
    return dg.Output(value, metadata=shown(metadata))
