"""Where everything lives for one mlcicd.yaml: the data folders, the MLflow store, the model names.

All paths are derived from the config file's folder, so a project can be moved or copied as a whole
(the tests make throwaway projects in temporary folders this way).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from mlcicd.config import Config, TierSpec, load_config

TIERS = ("full", "ci")
TIER_TAG = "mlcicd/tier"


@dataclass(frozen=True)
class Project:
    config: Config
    config_path: Path

    @classmethod
    def load(cls, config_path: str | os.PathLike | None = None) -> "Project":
        config, path = load_config(config_path)
        return cls(config=config, config_path=path)

    @property
    def root(self) -> Path:
        return self.config_path.parent

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def landing_dir(self) -> Path:
        return (self.root / self.config.dataset.landing_dir).resolve()

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

    @property
    def audit_log(self) -> Path:
        """Append-only JSON lines: every promotion decision and its evidence."""
        return self.data_dir / "audit" / "promotions.jsonl"

    @property
    def scoring_dir(self) -> Path:
        """Unlabeled batches waiting to be scored."""
        return (self.root / self.config.scoring.landing_dir).resolve()

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
        return self.data_dir / "mlflow"

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

    def model_name(self, tier: str) -> str:
        return self.config.model.registered_name + self.tier(tier).model_name_suffix


def git_commit(folder: Path) -> str:
    """The commit of the code being run, with '-dirty' when there are uncommitted changes."""
    import subprocess

    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def redact(url: str) -> str:
    """A URL with its password (user:password@host) replaced by ***: credentials are never shown."""
    import re

    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", url)
