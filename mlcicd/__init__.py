"""mlcicd: CI/CD for machine learning on Dagster, MLflow, pandera, LightGBM and Evidently.

Layout:
    mlcicd/config.py      mlcicd.yaml: the dataset spec, gate thresholds and tiers, validated on load
    mlcicd/project.py     where things live (data folders, MLflow store) for one config file
    mlcicd/core/          pure functions: simulate, contract, ingest, dataset, features, train, metrics, gates
    mlcicd/mlflow_registry.py  the only module that talks to the MLflow registry
    mlcicd/defs/          the thin Dagster shell: assets, checks, jobs, resources
    mlcicd/cli.py         the `mlcicd` command
"""
