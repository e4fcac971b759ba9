"""The code location: every definition under mlcicd/defs/, loaded by Dagster's defs-folder loader.

`workspace.yaml`, `dagster dev` and `dagster job execute -m mlcicd.definitions` all load this module.
Heavy libraries (mlflow, lightgbm, evidently, sklearn) are imported inside the functions that use them.
"""

from pathlib import Path

import dagster as dg

from mlcicd.heap import freeze_loaded_code


@dg.definitions
def defs() -> dg.Definitions:
    definitions = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    freeze_loaded_code()  # the loaded code lives as long as the process: keep it out of the collector's way
    return definitions
