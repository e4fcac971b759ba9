"""ModelPipeline: the Dagster component one model is. Its attributes are the model's settings, section by section as in
a single-model mlcicd.yaml (dataset, model, gates, promotion, automation, monitoring, scoring, serving, tiers, simulator, card);
they are validated when the component loads (mlcicd/config.py), and an error names the defs.yaml and the key."""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import ConfigDict, Field

from mlcicd.project import Project


class ModelPipelineAttributes(dg.Model):
    """The attributes' schema (what `dg list components` shows). Each section is validated in full, with the key named
    on error, by mlcicd/config.py: the same rules as a single-model mlcicd.yaml."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str | None = Field(None, description="The model's name; default: its folder's name (mlcicd/defs/models/<name>/).")
    dataset: dict[str, Any] = Field(description="What the data is: contract, target, task, id/time/categorical/slice columns, window.")
    learner: dict[str, Any] = Field({}, alias="model", description="LightGBM settings: rounds, params, seed, threads, engine.")
    gates: dict[str, Any] = Field({}, description="Every gate's threshold (defaults by task).")
    promotion: dict[str, Any] = Field({}, description="manual or auto, override rules, canary requirement.")
    automation: dict[str, Any] = Field({}, description="Sensors' intervals and the retraining schedule.")
    monitoring: dict[str, Any] = Field({}, description="Drift and decay: windows, samples, limits, schedule.")
    scoring: dict[str, Any] = Field({}, description="Batch scoring: where unlabeled batches land.")
    serving: dict[str, Any] = Field({}, description="`mlcicd serve` and the deployment: host, port, budgets, canary.")
    tiers: dict[str, Any] = Field({}, description="full and ci: sample, rounds, registered-model suffix, report.")
    simulator: dict[str, Any] = Field({}, description="The embedded simulator's dataset and sizes (for the demo and ci_job).")
    card: dict[str, Any] = Field({}, description="The model card: owner (an e-mail or team:<name>), intended use, limitations.")

    def settings(self) -> dict[str, Any]:
        """The attributes as written (sections left out take their defaults), in mlcicd.yaml's shape."""
        return self.model_dump(by_alias=True, exclude_defaults=True)


class ScaffoldParams(dg.Model):
    """`dg scaffold defs mlcicd.components.ModelPipeline models/<name> --json-params '{"data": ..., "target": ...}'`"""

    data: str = Field(description="A CSV or Parquet file, or a folder of them: the model's data (relative to the project root).")
    target: str = Field(description="The column to predict.")
    task: str | None = Field(None, description="binary, multiclass or regression; default: inferred from the target.")


class ModelPipelineScaffolder(dg.Scaffolder[ScaffoldParams]):
    """Writes a new model's defs.yaml with settings inferred from its data, as `mlcicd init` does (an empty attributes
    block would not load: a model needs at least its dataset)."""

    @classmethod
    def get_scaffold_params(cls) -> type[ScaffoldParams]:
        return ScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[ScaffoldParams]) -> None:
        import re
        from pathlib import Path

        from mlcicd.cli import model_settings_yaml

        params = request.params
        if params is None or not getattr(params, "data", None):
            raise ValueError(
                "a model needs its data: dg scaffold defs mlcicd.components.ModelPipeline models/<name> "
                "--json-params '{\"data\": \"path/to/batches\", \"target\": \"column\"}'"
            )
        name = request.target_path.name
        model = re.sub(r"[^a-z0-9_]", "_", name.lower()).lstrip("_0123456789") or "model"
        data = Path(params.data) if Path(params.data).is_absolute() else (request.project_root or Path.cwd()) / params.data
        output = request.target_path / "defs.yaml"
        text, _ = model_settings_yaml(data, params.target, params.task, None, None, name, model, output, component=True)
        request.target_path.mkdir(parents=True, exist_ok=True)
        output.write_text(text)


@dg.scaffold_with(ModelPipelineScaffolder)
class ModelPipeline(dg.Component):
    """One model: its data contract, its training, its gates, its champion, its monitoring and serving. Every asset,
    check, job, sensor and schedule it makes is named after the model (fraud/champion, fraud__training_job)."""

    def __init__(self, project: Project):
        self.project = project

    @classmethod
    def get_model_cls(cls) -> type[ModelPipelineAttributes]:
        return ModelPipelineAttributes

    @classmethod
    def load(cls, attributes: ModelPipelineAttributes | None, context: dg.ComponentLoadContext) -> "ModelPipeline":
        settings = attributes.settings() if attributes is not None else None
        return cls(project_of(settings, context.path / "defs.yaml", context.project_root))

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        from mlcicd.pipeline import model_defs

        return model_defs(self.project)


def project_of(settings: dict[str, Any] | None, defs_yaml, root) -> Project:
    """The model's settings validated (ConfigError names the file and the key), with where its files live."""
    from mlcicd.config import ConfigError, parse_config

    if not isinstance(settings, dict):
        raise ConfigError(f"{defs_yaml}: missing required key 'attributes' (the model's settings)")
    return Project.of_component(parse_config(settings, defs_yaml), defs_yaml, root)
