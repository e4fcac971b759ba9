"""The code location: one ModelPipeline component per model under mlcicd/defs/models/<name>/defs.yaml, loaded by
Dagster's component tree, plus what the project has once (training_job, promotion_job and ci_job over every model,
alerts, the dead-run sweeper). A single-model mlcicd.yaml ($MLCICD_CONFIG, or ./mlcicd.yaml) is still a project of
its own: then that file is the one model.

Each model's settings are loaded once, here, when the definitions are built, and captured by its definitions; nothing
reads them at import or at run time. A missing or invalid config fails the code location with the file and the key
(the UI shows it), never a silent default.

`workspace.yaml`, `dagster dev`, `dg` and `dagster job execute -m mlcicd.definitions` all load this module.
Heavy libraries (mlflow, lightgbm, evidently, sklearn) are imported inside the functions that use them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    from mlcicd.models import single_model_config

    single = single_model_config()
    if single is not None:
        return _single_model(single, _text(single))
    return _from_components()


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""  # Project.load says why, naming the file


# Built once per process (and per version of a single-model config's text). Dagster calls `defs` again at each stage of
# one command (`dagster job execute` called it five times, about 0.1 s each after the first).
@cache
def _single_model(path: Path, text: str) -> dg.Definitions:
    from mlcicd.pipeline import build
    from mlcicd.project import Project

    return build([Project.load(path)])


@cache
def _from_components() -> dg.Definitions:
    from mlcicd.components import ModelPipeline
    from mlcicd.pipeline import project_defs

    tree = dg.ComponentTree.for_project(Path(__file__).parent)
    found = tree.build_defs()
    projects = [component.project for component in tree.get_all_components(of_type=ModelPipeline)]
    if not projects:
        raise dg.DagsterInvariantViolationError(
            "no model: add one with `mlcicd init --data FILE --target COLUMN --name NAME` (mlcicd/defs/models/NAME/defs.yaml)"
        )
    return dg.Definitions.merge(found, project_defs(projects))
