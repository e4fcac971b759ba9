"""The code axis: what shapes each asset, as Dagster code versions.

A model's assets are shaped by code (the feature path, the training code, ...) and by settings (its dataset, model and
gate settings, its data contract). Each of those has a short content hash (`components`); an asset's code version is the
hash of the components that shape it (`ASSET_INPUTS`), so a change to the feature code makes candidate_model stale in
the Dagster UI and, through `AutomationCondition.code_version_changed()`, retrains it in a running deployment. The
components are kept with every registered version, so promotion can say which of them changed since the champion.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from mlcicd.project import Project

PACKAGE = Path(__file__).resolve().parent

# Code components: the modules (relative to the mlcicd package) whose content shapes an asset.
CODE = {
    "ingestion_code": ("core/ingest.py", "core/contract.py", "core/landing.py"),
    "dataset_code": ("core/dataset.py", "core/distributed.py"),  # distributed.py: the cut and samples with model.engine: dask
    "feature_code": ("core/features.py",),
    "training_code": ("core/train.py", "core/tasks.py", "core/distributed.py", "mlflow_model/pyfunc_model.py", "mlflow_model/entry.py"),
    # everything that computes the evidence the model gates judge, including what differs by task (tasks.py)
    "evaluation_code": ("core/evaluate.py", "core/metrics.py", "core/gates.py", "core/stats.py", "core/operating_point.py", "core/flips.py",
                        "core/tasks.py"),
    "promotion_code": ("core/promotion.py", "champion.py"),
}
# Settings components: a section of the model's settings, or its data contract.
SETTINGS = ("dataset_settings", "model_settings", "gate_settings", "promotion_settings", "contract")

ASSET_INPUTS = {
    "raw_batch": ("ingestion_code", "contract"),
    "training_dataset": ("dataset_code", "dataset_settings", "contract"),
    "train_set": ("dataset_code", "dataset_settings"),
    "holdout_set": ("dataset_code", "dataset_settings"),
    "candidate_model": ("feature_code", "training_code", "model_settings", "dataset_settings", "contract"),
    "candidate_evaluation": ("feature_code", "evaluation_code", "gate_settings"),
    "champion": ("promotion_code", "promotion_settings"),
}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


@lru_cache(maxsize=64)
def _file_digest(path: str, mtime_ns: int) -> str:
    return _digest(Path(path).read_bytes())


def _files_digest(relative: tuple[str, ...], package: Path) -> str:
    parts = []
    for name in relative:
        path = package / name
        parts.append(f"{name}={_file_digest(str(path), path.stat().st_mtime_ns) if path.exists() else 'missing'}")
    return _digest("\n".join(parts).encode())


def _settings_digest(value) -> str:
    return _digest(json.dumps(value, sort_keys=True, default=str, separators=(",", ":")).encode())


def components(proj: Project, package: Path = PACKAGE) -> dict[str, str]:
    """Every component's short content hash, for one model."""
    config = proj.config
    out = {name: _files_digest(files, package) for name, files in CODE.items()}
    out["dataset_settings"] = _settings_digest(config.dataset.model_dump(mode="json"))
    out["model_settings"] = _settings_digest(config.model.model_dump(mode="json"))
    out["gate_settings"] = _settings_digest(config.gates.model_dump(mode="json"))
    out["promotion_settings"] = _settings_digest(config.promotion.model_dump(mode="json"))
    out["contract"] = _digest(proj.contract_path.read_bytes()) if proj.contract_path.exists() else "missing"
    return out


def code_version(parts: dict[str, str], asset: str) -> str:
    """An asset's code version: the hash of the components that shape it."""
    return _digest("\n".join(f"{name}={parts[name]}" for name in ASSET_INPUTS[asset]).encode())


def changed(before: dict[str, str] | None, after: dict[str, str]) -> list[str]:
    """The components that differ, in CODE and SETTINGS order (empty when nothing was recorded before: unknown)."""
    order = [*CODE, *SETTINGS]
    if not before:
        return []
    return [name for name in order if before.get(name) != after.get(name)]
