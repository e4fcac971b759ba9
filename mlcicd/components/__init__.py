"""mlcicd's component type: one model pipeline per `defs.yaml` under mlcicd/defs/models/<name>/ (registered in
pyproject.toml's [tool.dg.project] registry_modules, so `dg list components` and `dg scaffold defs` know it)."""

from mlcicd.components.model_pipeline import ModelPipeline

__all__ = ["ModelPipeline"]
