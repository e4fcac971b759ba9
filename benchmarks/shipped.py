"""The shipped fraud model as a single-model mlcicd.yaml, for the benchmarks' throwaway projects (the repository's own
models live in mlcicd/defs/models/<name>/defs.yaml; a benchmark copies one into a folder of its own)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def shipped_settings(model: str = "fraud") -> dict:
    """A shipped model's settings (its defs.yaml attributes), named, in mlcicd.yaml's shape."""
    attributes = yaml.safe_load((ROOT / "mlcicd" / "defs" / "models" / model / "defs.yaml").read_text())["attributes"]
    return {"name": model, **attributes}


def write_config(folder: Path, model: str = "fraud", settings: dict | None = None) -> Path:
    """folder/mlcicd.yaml with the shipped model's settings (or `settings`)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mlcicd.yaml"
    path.write_text(yaml.safe_dump(settings or shipped_settings(model), sort_keys=False))
    return path
