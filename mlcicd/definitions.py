"""The code location: every definition under mlcicd/defs/, loaded by Dagster's defs-folder loader.

`workspace.yaml`, `dagster dev` and `dagster job execute -m mlcicd.definitions` all load this module.
Heavy libraries (mlflow, lightgbm, evidently, sklearn) are imported inside the functions that use them.
"""

from functools import cache
from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return _loaded()


@cache
def _loaded() -> dg.Definitions:
    """Built once per process. Dagster calls `defs` again at each stage of one command (`dagster job execute`
    called it five times, about 0.1 s each after the first); the modules it builds from are loaded once anyway,
    so every call returns the same definitions, as a module-level `Definitions` object would."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
