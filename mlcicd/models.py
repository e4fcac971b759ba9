"""Which models a command works on: the ModelPipeline components under mlcicd/defs/models/ (a many-model project), or
one mlcicd.yaml (a single-model project: --config, $MLCICD_CONFIG, or ./mlcicd.yaml)."""

from __future__ import annotations

import os
from pathlib import Path

from mlcicd.config import CONFIG_ENV_VAR, DEFAULT_CONFIG_NAME, ConfigError
from mlcicd.project import Project

PACKAGE = Path(__file__).resolve().parent
MODELS_DIR = PACKAGE / "defs" / "models"
COMPONENT_TYPE = "mlcicd.components.ModelPipeline"


def single_model_config(explicit: str | os.PathLike | None = None) -> Path | None:
    """The single-model mlcicd.yaml to use, if any: an explicit path, $MLCICD_CONFIG, or ./mlcicd.yaml when it exists."""
    if explicit or os.environ.get(CONFIG_ENV_VAR):
        return Path(explicit or os.environ[CONFIG_ENV_VAR]).expanduser().resolve()
    here = Path(DEFAULT_CONFIG_NAME).resolve()
    return here if here.exists() else None


def project_root() -> Path:
    """The project folder a many-model project's paths start from (where pyproject.toml is)."""
    return PACKAGE.parent


def component_projects(models_dir: Path = MODELS_DIR, root: Path | None = None) -> list[Project]:
    """Every model under mlcicd/defs/models/, validated as the code location validates it (components/model_pipeline.py)."""
    import yaml

    from mlcicd.components.model_pipeline import project_of

    projects = []
    for defs_yaml in sorted(models_dir.glob("*/defs.yaml")):
        try:
            declared = yaml.safe_load(defs_yaml.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{defs_yaml}: not valid YAML: {exc}") from None
        if declared.get("type") != COMPONENT_TYPE:
            continue
        projects.append(project_of(declared.get("attributes"), defs_yaml, root or project_root()))
    return projects


def load_projects(config_path: str | os.PathLike | None = None) -> list[Project]:
    single = single_model_config(config_path)
    if single is not None:
        return [Project.load(single)]
    projects = component_projects()
    if not projects:
        raise ConfigError(f"{MODELS_DIR}: no model here and no {DEFAULT_CONFIG_NAME}: add one with "
                          "`mlcicd init --data FILE --target COLUMN --name NAME`")
    return projects


def select(projects: list[Project], name: str | None) -> list[Project]:
    """The model named `name` (all of them when None)."""
    if name is None:
        return projects
    chosen = [proj for proj in projects if proj.name == name]
    if not chosen:
        raise ConfigError(f"no model named '{name}'; the models are {', '.join(p.name for p in projects)}")
    return chosen


def port_clashes(projects: list[Project], enabled_only: bool = True) -> list[str]:
    """Models that would serve on the same address (serving.host and serving.port), in words; empty when none."""
    by_address: dict[tuple[str, int], list[str]] = {}
    for proj in projects:
        serving = proj.config.serving
        if serving.enabled or not enabled_only:
            by_address.setdefault((serving.host, serving.port), []).append(proj.name)
    return [f"models {' and '.join(names)} would all serve on {host}:{port} (serving.host, serving.port): give each its own port"
            for (host, port), names in by_address.items() if len(names) > 1]
