"""Everything that talks to MLflow's tracking store and model registry lives here.

Models are logged as MLflow pyfuncs from code (mlcicd/mlflow_model: the LightGBM booster as a text file, never a
pickle) and carry their fitted FeatureState, so whoever loads a version, mlcicd or any MLflow user, scores through
the same feature path.
Aliases, not stages: `challenger` is the newest registered candidate, `champion` is production.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from mlcicd.core.features import FeatureState
from mlcicd.faults import kill_point
from mlcicd.project import Project

CHAMPION = "champion"
CHALLENGER = "challenger"
HASH_TAG = "artifact_sha256"


class ArtifactIntegrityError(RuntimeError):
    """A registered model's files are not the ones recorded at registration (or no record exists)."""


def artifact_sha256(folder) -> str:
    """SHA-256 over every file of a model folder (relative path and content, in sorted order)."""
    import hashlib
    from pathlib import Path

    digest = hashlib.sha256()
    root = Path(folder)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    run_id: str | None
    uri: str

    def to_dict(self) -> dict:
        return asdict(self)


def client(project: Project):
    import mlflow
    from mlflow import MlflowClient

    with environment_kept():
        mlflow.set_tracking_uri(project.tracking_uri)
        mlflow.set_registry_uri(project.tracking_uri)  # the registry is always the project's store, whatever ran before
    return MlflowClient(tracking_uri=project.tracking_uri, registry_uri=project.tracking_uri)


@contextmanager
def environment_kept():
    """MLflow's set_tracking_uri also writes MLFLOW_TRACKING_URI into the environment (for subprocesses). That
    variable is the user's override (Project.tracking_uri reads it), so it is put back as it was."""
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    before = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def ensure_experiment(project: Project, purpose: str = "training") -> str:
    """Create the store and the purpose's experiment (with its artifact folder and description) once, before any run
    uses them."""
    if project.artifact_location:
        project.mlflow_dir.mkdir(parents=True, exist_ok=True)
    mlflow_client = client(project)
    name = project.experiment_for(purpose)
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow_client.create_experiment(
        name, artifact_location=project.artifact_location,
        tags={"mlflow.note.content": project.experiment_description(purpose), "mlcicd_model": project.name, "mlcicd_purpose": purpose},
    )


def next_version(project: Project, model_name: str) -> int:
    """The number the registry will give the next version of a model (for names; the registry's answer is the truth)."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client(project).search_model_versions(f"name = '{model_name}'")
    except MlflowException:
        return 1
    return max((int(v.version) for v in versions), default=0) + 1


def log_candidate(
    project: Project, trained, frame, *, model_name: str, tags: dict[str, str], logged_name: str, challenger: bool = True,
) -> RegisteredModel:
    """Log the model in the active MLflow run as a pyfunc (the LightGBM booster as text behind the feature path, with a
    signature from the contract and an input example from `frame`), register it as a new version and (unless
    `challenger` is False: the pull-request tier moves no alias) point `challenger` at it."""
    import tempfile
    from pathlib import Path

    import lightgbm
    import mlflow.artifacts
    import mlflow.pyfunc

    from mlcicd.core.train import predict
    from mlcicd.mlflow_model import pyfunc_model

    target = project.config.dataset.target
    contract = project.contract
    example = pyfunc_model.raw_input_example(frame, contract, target)
    reads = trained.features.numeric + trained.features.categorical + ([trained.features.time_column] if trained.features.time_column else [])
    signature = pyfunc_model.model_signature(contract, target, reads, predict(trained.booster, trained.features, example))
    with tempfile.TemporaryDirectory() as tmp:
        booster, state = Path(tmp) / "booster.txt", Path(tmp) / "feature_state.json"
        trained.booster.save_model(str(booster))
        state.write_text(json.dumps(trained.features.to_dict(), indent=1))
        # MLflow checks these requirements against the running environment by reading every installed package's file
        # list: about 0.85 s per training run here (measured), with no public switch to skip it; it is paid, not patched.
        # The model code imports mlcicd (its feature path): load it where mlcicd is installed (--env-manager local).
        info = mlflow.pyfunc.log_model(
            name=logged_name,
            python_model=str(Path(pyfunc_model.__file__).with_name("entry.py")),
            artifacts={pyfunc_model.BOOSTER: str(booster), pyfunc_model.FEATURE_STATE: str(state)},
            signature=signature,
            input_example=example,
            pip_requirements=[f"lightgbm=={lightgbm.__version__}", "pandas", "numpy"],
            metadata={"feature_state": trained.features.to_dict(), "best_iteration": trained.best_iteration},
            registered_model_name=model_name,
        )
    version = str(info.registered_model_version)
    kill_point("registry.after_log_model")
    mlflow_client = client(project)
    local = mlflow.artifacts.download_artifacts(f"models:/{model_name}/{version}", tracking_uri=project.tracking_uri, registry_uri=project.tracking_uri)
    tags = {**tags, HASH_TAG: artifact_sha256(local)}  # verified by every load_model from now on
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(model_name, version, key, str(value))
    kill_point("registry.before_challenger")
    if challenger:
        mlflow_client.set_registered_model_alias(model_name, CHALLENGER, version)
    return RegisteredModel(model_name, version, info.run_id, f"models:/{model_name}/{version}")


def version_by_alias(project: Project, model_name: str, alias: str):
    """The ModelVersion an alias points at, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client(project).get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def load_model(project: Project, model_name: str, version: str, audited_sha256: str | None = None) -> tuple[Any, FeatureState]:
    """The booster and its FeatureState for one registered version, after checking that the model's files
    are byte for byte the ones registered (their SHA-256 is a version tag): a tampered artifact is refused.
    `audited_sha256` (the audit trail's record of the version's files, for a champion): the tag must say the same, since
    whoever can write the registry can rewrite a tag together with the files."""
    from pathlib import Path

    import lightgbm
    import mlflow.artifacts
    from mlflow.models import Model

    mlflow_client = client(project)
    uri = f"models:/{model_name}/{version}"
    expected = (mlflow_client.get_model_version(model_name, version).tags or {}).get(HASH_TAG)
    local = mlflow.artifacts.download_artifacts(uri, tracking_uri=project.tracking_uri, registry_uri=project.tracking_uri)
    if not expected:
        raise ArtifactIntegrityError(f"{uri} has no recorded {HASH_TAG}, so its files cannot be trusted; re-register it through mlcicd")
    if audited_sha256 and audited_sha256 != expected:
        raise ArtifactIntegrityError(
            f"{uri}: its {HASH_TAG} tag says {expected[:12]}..., but the audit trail recorded {audited_sha256[:12]}... when the alias moved to "
            "it: the registry's record was rewritten; refusing to use it"
        )
    actual = artifact_sha256(local)
    if actual != expected:
        raise ArtifactIntegrityError(
            f"{uri}: the model files changed after registration (SHA-256 {actual[:12]}..., recorded {expected[:12]}...); refusing to use them"
        )
    model = Model.load(local)
    metadata = model.metadata or {}
    if "feature_state" not in metadata:
        raise ValueError(f"{uri} has no feature_state in its metadata; it was not logged by mlcicd")
    booster_file = ((model.flavors.get("python_function") or {}).get("artifacts") or {}).get("booster", {}).get("path")
    if not booster_file:
        raise ValueError(f"{uri} has no booster artifact; it was not logged by this version of mlcicd (retrain to re-register it)")
    return lightgbm.Booster(model_file=str(Path(local) / booster_file)), FeatureState.from_dict(metadata["feature_state"])


SLICES_TAG = "holdout_slices"
MAX_TAG_CHARS = 5000  # MLflow's limit on a model version tag's value


def promotion_evidence_tags(evaluation: dict) -> dict[str, str]:
    """What a promoted version showed on its holdout, kept on the version: its primary metric with its bootstrap
    standard deviation and row count, and each judged slice as [metric, sd, rows]. Later evaluations compare the
    newest labels (label_quality) and the newest slices (no_slice_regression) with it."""
    metric, candidate = evaluation["primary_metric"], evaluation["candidate"]
    slices = {
        f"{column}={value}": [entry[metric], entry.get("sd"), entry["rows"]]
        for column, values in candidate["slices"].items() for value, entry in values.items() if entry.get("judged")
    }
    text = json.dumps(slices, separators=(",", ":"))
    while len(text) > MAX_TAG_CHARS and slices:  # keep the largest slices when they do not all fit
        slices.pop(min(slices, key=lambda k: slices[k][2]))
        text = json.dumps(slices, separators=(",", ":"))
    return {
        f"holdout_{metric}": f"{candidate['metrics'][metric]:.6f}",
        f"holdout_{metric}_sd": f"{candidate.get('metric_sd', float('nan')):.6f}",
        "holdout_rows": str(evaluation["holdout_rows"]),
        SLICES_TAG: text,
    }


def at_promotion(version, metric: str) -> dict | None:
    """What promotion_evidence_tags kept on a version (None for a version promoted without it)."""
    tags = version.tags or {}
    if f"holdout_{metric}" not in tags:
        return None

    def number(key: str):
        try:
            value = float(tags[key])
        except (KeyError, ValueError):
            return None
        return value if value == value else None  # NaN: unknown

    rows = number("holdout_rows")
    return {"metric": number(f"holdout_{metric}"), "sd": number(f"holdout_{metric}_sd"), "rows": int(rows) if rows else None,
            "slices": json.loads(tags.get(SLICES_TAG) or "{}")}


def move_champion(project: Project, model_name: str, version: str, tags: dict[str, str]) -> None:
    """Point `champion` at a version, record why on the version, and clear `challenger` if it pointed there."""
    mlflow_client = client(project)
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(model_name, version, key, str(value))
    kill_point("registry.after_champion_tags")
    mlflow_client.set_registered_model_alias(model_name, CHAMPION, version)
    kill_point("registry.after_champion_alias")
    challenger = version_by_alias(project, model_name, CHALLENGER)
    if challenger is not None and str(challenger.version) == str(version):
        mlflow_client.delete_registered_model_alias(model_name, CHALLENGER)


REFERENCE_ARTIFACT = "reference/training_sample.parquet"


def log_reference(frame, rows: int, seed: int) -> None:
    """Keep a sample of the training rows with the active run: what drift is later measured against."""
    import tempfile
    from pathlib import Path

    import mlflow

    sample = frame.sample(n=min(rows, len(frame)), random_state=seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
        sample.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(REFERENCE_ARTIFACT).parent))  # (local file, folder in the run)


def load_reference(project: Project, model_name: str, version: str):
    """The training reference logged with a registered version's run."""
    import mlflow.artifacts
    import pandas as pd

    model_version = client(project).get_model_version(model_name, version)
    local = mlflow.artifacts.download_artifacts(f"runs:/{model_version.run_id}/{REFERENCE_ARTIFACT}", tracking_uri=project.tracking_uri)
    return pd.read_parquet(local)


PROVENANCE_ARTIFACT = "mlcicd/provenance.json"


def log_provenance(record: dict) -> None:
    """Keep what a version was made from (core/changes.py: provenance) with the active run."""
    import mlflow

    mlflow.log_dict(record, PROVENANCE_ARTIFACT)


def load_provenance(project: Project, model_name: str, version: str | None) -> dict | None:
    """What a registered version was made from, or None (no such version, or trained before provenance was kept)."""
    import mlflow.artifacts

    if version is None:
        return None
    try:
        run_id = client(project).get_model_version(model_name, version).run_id
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/{PROVENANCE_ARTIFACT}") if run_id else None
    except Exception:  # noqa: BLE001 - no record: the comparison says it cannot tell
        return None


@dataclass(frozen=True)
class Reference:
    """What a pull-request candidate is judged against: production's champion (read-only), else the base branch's model
    trained the same way, else nothing; `why` says which and why, in words. `unreadable`: production's registry could not
    be read (not merely without a champion), so judging without a reference would pass a change nobody compared."""

    model_name: str
    version: Any  # a ModelVersion, or None
    source: str  # "production" | "base branch" | "none"
    why: str
    unreadable: bool = False


def production_reference(project: Project, pr_model_name: str, base_commit: str | None, candidate_version: str) -> Reference:
    """Production's champion when its registry answers and has one; otherwise the newest version of the pull-request model
    trained from `base_commit` (the merge base with the base branch), other than the candidate itself; otherwise none,
    said why."""
    from mlflow.exceptions import MlflowException

    production = project.model_name("full")
    unreadable = True
    try:
        champion = client(project).get_model_version_by_alias(production, CHAMPION)
        return Reference(production, champion, "production", f"production's champion: {production} version {champion.version}")
    except MlflowException as exc:
        missing = getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
        unreadable = not missing
        problem = (f"production's registry has no champion of {production}" if missing
                   else f"production's registry could not be read ({type(exc).__name__}: {str(exc)[:200]})")
    except Exception as exc:  # noqa: BLE001 - an unreachable server: said, and the base branch's model is used instead
        problem = f"production's registry could not be read ({type(exc).__name__}: {str(exc)[:200]})"
    if base_commit:
        try:
            versions = client(project).search_model_versions(f"name = '{pr_model_name}'")
        except Exception:  # noqa: BLE001
            versions = []
        same = sorted((v for v in versions if (v.tags or {}).get("git_commit", "").removesuffix("-dirty") == base_commit
                       and str(v.version) != str(candidate_version)), key=lambda v: int(v.version))
        if same:
            return Reference(pr_model_name, same[-1], "base branch",
                             f"{problem}; compared with the base branch's model trained the same way ({pr_model_name} version "
                             f"{same[-1].version}, commit {base_commit[:12]})")
        return Reference(pr_model_name, None, "none", f"{problem}, and no model of the base branch (commit {base_commit[:12]}) was "
                         "trained the same way: run `mlcicd ci` on the base branch first; judged without a champion", unreadable)
    return Reference(pr_model_name, None, "none", f"{problem}, and the base branch's commit is unknown; judged without a champion",
                     unreadable)
