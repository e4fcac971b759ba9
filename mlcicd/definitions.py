"""The code location: every definition under mlcicd/defs/, loaded by Dagster's defs-folder loader.

`workspace.yaml`, `dagster dev` and `dagster job execute -m mlcicd.definitions` all load this module.
Heavy libraries (mlflow, lightgbm, evidently, sklearn) are imported inside the functions that use them.
"""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
