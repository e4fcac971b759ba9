"""The registered model as MLflow sees it: a pyfunc whose predict applies mlcicd's one feature path.

`pyfunc_model.py` holds the class; `entry.py` is the models-from-code file MLflow copies into every version and runs
when it loads one (no pickle is stored). mlcicd itself loads versions through `mlcicd.mlflow_registry.load_model`,
which checks the files' SHA-256 first.
"""
