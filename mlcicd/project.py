"""Where everything lives for one model: its data folders, the MLflow store, its names.

A model's settings come from its component instance (mlcicd/defs/models/<name>/defs.yaml, data under data/<name>/) or
from a single-model mlcicd.yaml (data under data/ beside it, as before components). Every path is derived from the
project root, so a project can be moved or copied as a whole (the tests make throwaway projects this way).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from mlcicd.config import Config, TierSpec, load_config

TIERS = ("full", "ci", "pr")
TIER_TAG = "mlcicd/tier"

# One MLflow experiment per model and purpose, each with a description the MLflow UI shows.
PURPOSES = {
    "training": (
        "Training runs of the {model} model: each trains a candidate on the newest accepted batches, registers it as a new "
        "version of {registered} (alias `challenger`), and evaluates it against the champion on the same holdout."
    ),
    "ci": (
        "CI runs of the {model} model (ci_job, on a sample): the candidate of a code, data or config change, registered in "
        "{registered}, never in the production model."
    ),
    "pr": (
        "Pull-request runs of the {model} model (pr_job, `mlcicd ci`): the branch's candidate, trained on the newest accepted "
        "data as production's champion ({production}) was, and judged against it on the same holdout; registered in "
        "{registered}, never in production's model; no alias moves."
    ),
    "monitoring": (
        "Monitoring runs of the {model} model: drift of the newest accepted batches against the champion's training "
        "reference, and the champion's performance on them where labels are present."
    ),
}


SINGLE_MODEL_NAME = "model"


@dataclass(frozen=True)
class Project:
    config: Config
    config_path: Path  # the file the settings came from: a model's defs.yaml, or a single-model mlcicd.yaml
    name: str = SINGLE_MODEL_NAME
    root: Path | None = None  # relative paths in the settings start here; default: the config file's folder
    data_dir: Path | None = None  # default: <root>/data

    def __post_init__(self) -> None:
        root = self.root or self.config_path.parent
        object.__setattr__(self, "root", root)
        object.__setattr__(self, "data_dir", self.data_dir or root / "data")

    @classmethod
    def load(cls, config_path: str | os.PathLike | None = None) -> "Project":
        """A single-model project from mlcicd.yaml (explicit path, else $MLCICD_CONFIG, else ./mlcicd.yaml)."""
        config, path = load_config(config_path)
        return cls(config=config, config_path=path, name=config.name or SINGLE_MODEL_NAME)

    @classmethod
    def of_component(cls, config: Config, defs_yaml: Path, root: Path) -> "Project":
        """A model of a many-model project: named by its folder (mlcicd/defs/models/<name>/), its data under data/<name>/."""
        name = config.name or defs_yaml.parent.name
        return cls(config=config, config_path=defs_yaml, name=name, root=root, data_dir=root / "data" / name)

    @property
    def is_component(self) -> bool:
        return self.config_path.name == "defs.yaml"

    @property
    def landing_dir(self) -> Path:
        return (self.root / self.config.dataset.landing_dir).resolve() if self.config.dataset.landing_dir else self.data_dir / "landing"

    @property
    def accepted_dir(self) -> Path:
        """Validated batches, one Parquet file and one JSON record each, named by content hash."""
        return self.data_dir / "accepted"

    @property
    def removed_dir(self) -> Path:
        """Accepted batches taken out of training by `mlcicd batches remove` (moved here, never deleted)."""
        return self.data_dir / "removed"

    @property
    def batch_log(self) -> Path:
        """Append-only JSON lines: every batch removed from or restored to the accepted store, by whom and why."""
        return self.data_dir / "audit" / "batches.jsonl"

    @property
    def archive_dir(self) -> Path:
        """Landed files that were accepted (or were exact duplicates), kept as they arrived."""
        return self.data_dir / "archive"

    @property
    def quarantine_dir(self) -> Path:
        """Landed files that were rejected, each with a report saying why."""
        return self.data_dir / "quarantine"

    @property
    def assets_dir(self) -> Path:
        """Stored asset values (Parquet for tables, JSON for records)."""
        return self.data_dir / "assets"

    def evaluation_report(self, model_name: str, version: str) -> Path:
        """A candidate's HTML evaluation report."""
        return self.data_dir / "reports" / f"evaluation-{model_name}-v{version}.html"

    @property
    def pr_report(self) -> Path:
        """The pull-request tier's markdown report of this model (data/reports/ci/<model>.md at the project root)."""
        return self.root / "data" / "reports" / "ci" / f"{self.name}.md"

    @property
    def alerts_log(self) -> Path:
        """One notice file for the whole project (every model, and runs over several): data/alerts/alerts.jsonl."""
        return self.root / "data" / "alerts" / "alerts.jsonl"

    @property
    def audit_log(self) -> Path:
        """Append-only JSON lines: every promotion decision and its evidence."""
        return self.data_dir / "audit" / "promotions.jsonl"

    @property
    def scoring_dir(self) -> Path:
        """Unlabeled batches waiting to be scored."""
        return (self.root / self.config.scoring.landing_dir).resolve() if self.config.scoring.landing_dir else self.data_dir / "to_score"

    @property
    def predictions_dir(self) -> Path:
        return self.data_dir / "predictions"

    @property
    def contract_path(self) -> Path:
        return (self.root / self.config.dataset.contract).resolve()

    @cached_property
    def contract(self):
        from mlcicd.core.contract import load_contract

        return load_contract(self.contract_path)

    @property
    def mlflow_dir(self) -> Path:
        """One MLflow store for the whole project (every model's experiments and registered model)."""
        return self.root / "data" / "mlflow"

    @property
    def tracking_uri(self) -> str:
        """$MLFLOW_TRACKING_URI if set, else a SQLite store under data/mlflow/."""
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def tracking_uri_shown(self) -> str:
        """The tracking URI as it may be shown (status, logs): any password replaced by ***."""
        return redact(self.tracking_uri)

    @property
    def artifact_location(self) -> str | None:
        """Where new experiments keep artifacts: a local folder unless a tracking server decides."""
        if self.tracking_uri.startswith(("http://", "https://", "databricks")):
            return None
        return (self.mlflow_dir / "artifacts").as_uri()

    def tier(self, name: str) -> TierSpec:
        if name not in TIERS:
            raise ValueError(f"unknown tier {name!r}; the tiers are {', '.join(TIERS)}")
        return getattr(self.config.tiers, name)

    @property
    def registered_name(self) -> str:
        return self.config.model.registered_name or f"mlcicd-{self.name.replace('_', '-')}"

    @property
    def experiment(self) -> str:
        """The training experiment; CI and monitoring runs have their own (experiment_for)."""
        return self.config.model.experiment or f"mlcicd-{self.name.replace('_', '-')}"

    def experiment_for(self, purpose: str) -> str:
        """The MLflow experiment of one purpose (PURPOSES): mlcicd-fraud, mlcicd-fraud-ci, mlcicd-fraud-monitoring."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown purpose {purpose!r}; the purposes are {', '.join(PURPOSES)}")
        return self.experiment if purpose == "training" else f"{self.experiment}-{purpose}"

    def experiment_description(self, purpose: str) -> str:
        registered = self.model_name(purpose if purpose in ("ci", "pr") else "full")
        return PURPOSES[purpose].format(model=self.name, registered=registered, production=self.model_name("full"))

    def model_name(self, tier: str) -> str:
        return self.registered_name + self.tier(tier).model_name_suffix


def git_commit(folder: Path) -> str:
    """The commit of the code being run, with '-dirty' when there are uncommitted changes."""
    import subprocess

    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def tier_folder(assets_dir: Path, tier: str) -> Path:
    """Where a tier keeps its stored asset values: the assets folder for the full tier, tier-<name>/ inside it for another,
    so a CI or pull-request run never replaces a value production's promotion reads."""
    return assets_dir if tier == "full" else assets_dir / f"tier-{tier}"


def merge_base(folder: Path, base: str | None = None) -> str | None:
    """The commit this branch left the base branch at ($MLCICD_BASE_REF, else origin/main, else main), or None."""
    import os
    import subprocess

    for ref in [base or os.environ.get("MLCICD_BASE_REF") or "origin/main", "main"]:
        try:
            result = subprocess.run(["git", "merge-base", "HEAD", ref], cwd=folder, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()
    return None


def changed_files(folder: Path, old: str | None, new: str | None) -> list[str] | None:
    """The files that differ between two commits (None when either is unknown or git cannot tell)."""
    import subprocess

    shas = [str(c or "").removesuffix("-dirty") for c in (old, new)]
    if not all(len(c) == 40 for c in shas) or shas[0] == shas[1]:
        return None
    try:
        result = subprocess.run(["git", "diff", "--name-only", shas[0], shas[1]], cwd=folder, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.split() if result.returncode == 0 else None


def redact(url: str) -> str:
    """A URL with its password (user:password@host) replaced by ***: credentials are never shown."""
    import re

    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", url)
