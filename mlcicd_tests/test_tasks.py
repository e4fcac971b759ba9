"""Bring your own data, for each task: `mlcicd init` and `mlcicd schema freeze` on public datasets that ship
with scikit-learn, cut into batches, then the whole pipeline through its jobs to a promoted champion."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from mlcicd.cli import main
from mlcicd.core.audit import read
from mlcicd.core.metrics import TASK_METRICS
from mlcicd.mlflow_registry import CHAMPION, client, version_by_alias
from mlcicd.project import Project

from .support import ALL_GATES, checks


def bundled(name: str) -> pd.DataFrame:
    from sklearn import datasets

    frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
    frame.columns = [c.replace(" ", "_").replace("/", "_") for c in frame.columns]
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)  # batches without a time order


def land(folder, frame: pd.DataFrame, parts: int, start: int = 0, file_format: str = "csv") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, len(frame), parts + 1).astype(int)
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]), start=start):
        part = frame.iloc[lo:hi]
        path = folder / f"batch-{i:02d}.{file_format}"
        part.to_csv(path, index=False) if file_format == "csv" else part.to_parquet(path, index=False)


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def own_data(tmp_path, mlflow_template, monkeypatch):
    """A project for a user's dataset: batches landed in ./incoming, the config written by `mlcicd init`."""

    def setup(frame: pd.DataFrame, target: str, parts: int, file_format: str = "csv", init_args=()) -> Project:
        root = tmp_path / "own"
        land(root / "incoming", frame, parts, file_format=file_format)
        config = root / "mlcicd.yaml"
        cli("init", "--data", str(root / "incoming"), "--target", target, "--output", str(config), "--name", "own-model", *init_args)
        raw = yaml.safe_load(config.read_text())
        raw["model"].update({"num_threads": 1, "num_boost_round": 150})  # quick and single-threaded, as every test
        config.write_text(yaml.safe_dump(raw, sort_keys=False))
        (root / "data" / "mlflow").mkdir(parents=True)
        shutil.copy(mlflow_template, root / "data" / "mlflow" / "mlflow.db")
        monkeypatch.setenv("MLCICD_CONFIG", str(config))
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        cli("schema", "freeze")
        return Project.load(config)

    return setup


def run_to_champion(project: Project, run_job) -> dict:
    for job in ("own_model__ingestion_job", "training_job"):
        result = run_job(job)
        assert result.success, job
    verdicts = checks(result)
    failed = {name: v.metadata["verdict"].value for name, v in verdicts.items() if not v.passed}
    assert not failed, failed
    evaluation = result.output_for_node("own_model__candidate_evaluation")
    assert_report(project, evaluation, result.asset_materializations_for_node("own_model__candidate_evaluation")[0].metadata)
    promotion = run_job("promotion_job")
    assert promotion.success
    assert_model_card(project, evaluation, promotion.output_for_node("own_model__champion"))
    return evaluation


def assert_report(project: Project, evaluation: dict, metadata: dict) -> None:
    """A self-contained HTML report (Evidently + our plots), in MLflow, linked and summarised in the metadata."""
    version = evaluation["candidate"]["version"]
    path = project.data_dir / "reports" / f"evaluation-{evaluation['model_name']}-v{version}.html"
    assert metadata["report"].value == str(path)
    page = path.read_text()
    assert 'title="Evidently report" srcdoc=' in page and "&lt;script" in page  # Evidently's widgets, their code embedded
    assert "src=\"http" not in page and "href=\"http" not in page  # self-contained: nothing is fetched
    plots = {"binary": ["roc", "precision_recall", "calibration", "confusion_matrix"], "multiclass": ["calibration", "confusion_matrix"],
             "regression": ["predicted_vs_actual", "residuals"]}[evaluation["candidate"]["task"]]
    for name in [*plots, "feature_importance"]:
        assert f'alt="{name}" title="{name}" src="data:image/png;base64,' in page, name
    assert evaluation["primary_metric"] in page
    assert "/artifacts/evaluation/" in metadata["report_in_mlflow"].value
    artifacts = client(project).list_artifacts(evaluation["mlflow_run_id"], "evaluation")
    assert [a.path for a in artifacts] == [f"evaluation/{path.name}"]
    summary = metadata["summary"].value
    assert f"version {version}" in summary and "](data:image/png;base64," in summary and "| candidate | champion |" in summary
    # issue 18 point 5: the verdicts and the answer first, the bootstrap explained, the sample said, the threshold for binary
    top = page[: page.index('id="metrics"')]
    assert "<b>Will this be promoted?</b> Yes, every gate passed" in top
    for gate in ALL_GATES:
        assert f"<td>PASS</td><td>{gate}</td>" in top, gate
    assert f"resampled {evaluation['bootstrap']['rounds']} times" in page and 'alt="bootstrap" src="data:image/png' in page
    assert f"computed on all {evaluation['holdout_rows']:,} holdout rows" in page
    binary = evaluation["candidate"]["task"] == "binary"
    threshold = evaluation["threshold"] or 0.5
    assert (f"The operating point in use is <b>{threshold:g}</b>, chosen by the rule max_f1 on the validation split" in page
            and f"{threshold:g} (in use)" in page) is binary
    assert ('alt="threshold" src="data:image/png' in page) is binary


def assert_model_card(project: Project, evaluation: dict, champion: dict) -> None:
    version = evaluation["candidate"]["version"]
    card = champion["model_card"]
    text = open(card).read()
    assert text.startswith(f"# Model card: {evaluation['model_name']} version {version}")
    assert "| meets_thresholds | pass |" in text and evaluation["primary_metric"] in text
    # issue 18 point 6: owner, use and limits, training window and batches, hyperparameters, every model input, links
    for heading in ("- **Owner:** team:ml", "- **Intended use:**", "- **Limitations:**", "- **Decision threshold:**",
                    "## Training data", "- **Batches (", "## Hyperparameters", "- num_boost_round", "## Links", "Evaluation report"):
        assert heading in text, heading
    for feature in evaluation["features"]["inputs"]:
        assert feature in text.split("## Features as the model sees them")[1].split("##")[0], feature
    page = Path(card).with_suffix(".html").read_text()
    assert "<h1>Model card:" in page and "<table>" in page
    run_id = client(project).get_model_version(evaluation["model_name"], version).run_id
    assert sorted(a.path for a in client(project).list_artifacts(run_id, "model_card")) == sorted(
        [f"model_card/{Path(card).name}", f"model_card/{Path(card).with_suffix('.html').name}"])


@pytest.mark.parametrize(
    "dataset, target, task, metric, file_format",
    [("breast_cancer", "target", "binary", "roc_auc", "csv"), ("wine", "target", "multiclass", "macro_f1", "parquet")],
)
def test_init_freeze_and_promote_a_classifier(own_data, run_job, dataset, target, task, metric, file_format):
    frame = bundled(dataset)
    frame.insert(0, "sample_id", np.arange(len(frame)))
    project = own_data(frame, target, parts=4, file_format=file_format)
    spec = project.config.dataset
    assert (spec.task, spec.id_column, spec.time_column) == (task, "sample_id", None)
    assert project.config.gates.primary_metric == metric

    contract = yaml.safe_load(project.contract_path.read_text())
    assert contract["columns"]["sample_id"]["unique"] is True
    assert contract["columns"][target]["allowed"] == sorted(frame[target].unique().tolist())

    evaluation = run_to_champion(project, run_job)
    metrics = evaluation["candidate"]["metrics"]
    assert set(TASK_METRICS[task]) <= set(metrics)
    assert metrics[metric] > 0.85, metrics  # both sets are easy: a real model, not a constant
    assert version_by_alias(project, project.model_name("full"), CHAMPION).version == 1
    assert read(project.audit_log)[-1]["decision"] == "promoted"


def test_regression_retrains_and_compares_with_its_champion(own_data, run_job):
    frame = bundled("diabetes")
    first, later = frame.iloc[:360], frame.iloc[360:]
    project = own_data(first, "target", parts=4)
    assert project.config.dataset.task == "regression" and project.config.dataset.id_column is None
    assert project.config.gates.primary_metric == "r2"

    evaluation = run_to_champion(project, run_job)
    assert set(TASK_METRICS["regression"]) <= set(evaluation["candidate"]["metrics"])
    assert evaluation["candidate"]["metrics"]["r2"] > 0.2
    assert evaluation["champion"] is None

    land(project.landing_dir, later, parts=1, start=10)
    result = run_job("training_job")
    evaluation = result.output_for_node("own_model__candidate_evaluation")
    assert evaluation["champion"]["version"] == "1"
    comparison = evaluation["comparison"]  # r2 is higher-is-better: the bootstrap measures "better by"
    assert np.isfinite(comparison["lower"]) and comparison["lower"] <= comparison["delta"] <= comparison["upper"]
    verdict = checks(result)["no_regression"]
    assert "r2" in verdict.metadata["verdict"].value and "version 1" in verdict.metadata["verdict"].value


def test_wrong_target_names_the_closest_column(tmp_path):
    land(tmp_path / "incoming", bundled("wine"), parts=1)
    result = CliRunner().invoke(main, ["init", "--data", str(tmp_path / "incoming"), "--target", "targte", "--output", str(tmp_path / "m.yaml")])
    assert result.exit_code != 0
    assert "no target column 'targte' (did you mean 'target'?)" in result.output
    assert not (tmp_path / "m.yaml").exists()


def test_frozen_contract_quarantines_the_impossible_reports_the_unusual_and_a_refreeze_lists_its_changes(own_data, run_job):
    frame = bundled("breast_cancer")
    project = own_data(frame.iloc[:400], "target", parts=2)
    contract = yaml.safe_load(project.contract_path.read_text())["columns"]
    assert contract["mean_radius"]["min"] == 0 and "max" not in contract["mean_radius"], "the observed range is an expectation, not a rule"
    assert contract["mean_radius"]["expected"]["max"] >= frame.iloc[:400]["mean_radius"].max()

    broken = frame.iloc[400:450].copy()
    broken.loc[broken.index[0], "mean_radius"] = -5.0  # a negative radius cannot exist: a hard rule
    broken.to_csv(project.landing_dir / "broken.csv", index=False)
    unusual = frame.iloc[450:500].copy()
    unusual.loc[unusual.index[:2], "mean_radius"] = 1e6  # far outside what was seen, but possible: accepted and reported
    unusual.to_csv(project.landing_dir / "unusual.csv", index=False)
    result = run_job("own_model__ingestion_job")
    (verdict,) = [v for v in checks(result).values()]
    verdicts = {v["source"]: v for v in result.output_for_node("own_model__raw_batch")["verdicts"]}
    assert verdicts["broken.csv"]["status"] == "quarantined" and "mean_radius" in verdict.metadata["verdict"].value
    assert "below the minimum 0" in " ".join(verdicts["broken.csv"]["problems"])
    assert verdicts["unusual.csv"]["status"] == "accepted"
    assert any("'mean_radius'" in note and "above the usual maximum" in note for note in verdicts["unusual.csv"]["unusual"])
    assert list(project.quarantine_dir.glob("broken*.report.txt"))

    output = cli("schema", "freeze", "--data", str(project.quarantine_dir), "--force")
    assert "version 2" in output and "~ column 'mean_radius'" in output
    assert yaml.safe_load(project.contract_path.read_text())["version"] == 2
    output = cli("schema", "freeze", "--force")  # the landing folder is empty now: the accepted store is the reference
    assert "accepted batch(es)" in output and "version 3" in output


@pytest.mark.parametrize(
    "labels",
    [
        pd.Series([0, 1, 1, 0, 1]),
        pd.Series(["0", "1", "1", "0", "1"]),
        pd.Series(pd.Categorical([0, 1, 1, 0, 1], categories=[0, 1, 2])),  # an unused category is not a class
    ],
    ids=["int", "text", "categorical"],
)
def test_label_balance_names_the_classes_whatever_the_labels_dtype(labels):
    from mlcicd.core.gates import label_balance_gate

    binary = label_balance_gate("binary", labels, positive_rate=(0.5, 0.7), min_class_share=0.0)
    assert binary.passed, binary.reason
    assert binary.numbers == {"share_0": 0.4, "share_1": 0.6, "positive_rate": 0.6, "min_positive_rate": 0.5, "max_positive_rate": 0.7}
    rare = label_balance_gate("multiclass", labels, positive_rate=(0.0, 1.0), min_class_share=0.45)
    assert not rare.passed and "0 (40.00%)" in rare.reason, rare.reason


def test_a_task_is_one_object_and_nothing_else_branches_on_its_name():
    """Adding a task type touches core/tasks.py only: no other module compares a task's name or names a task
    other than the binary default."""
    import re

    from mlcicd.core.tasks import TASKS

    from .conftest import REPO

    branching = re.compile(r"task\s*(==|!=|in)\s*[(\[\"']|\"(multiclass|regression)\"")
    offenders = [f"{path.relative_to(REPO)}:{number}" for path in (REPO / "mlcicd").rglob("*.py") if path.name != "tasks.py"
                 for number, line in enumerate(path.read_text().splitlines(), start=1) if branching.search(line)]
    assert offenders == []
    assert set(TASKS) == {"binary", "multiclass", "regression"}
    for task in TASKS.values():  # each object answers everything the code asks of a task
        assert task.primary in task.metrics and task.gate_defaults["primary_metric"] == task.primary and task.plots


@pytest.mark.parametrize("dataset, task, metric, floor", [("wine", "multiclass", "macro_f1", 0.85), ("diabetes", "regression", "r2", 0.2)])
def test_the_dask_engine_trains_every_task(own_data, run_job, dataset, task, metric, floor):
    """model.engine: dask for the tasks the simulator's binary model does not cover: class codes and a class unseen in
    training (multiclass), a lower-is-better validation metric (regression); every gate passes, the model is real."""
    project = own_data(bundled(dataset), "target", parts=4)
    assert project.config.dataset.task == task
    config = yaml.safe_load(project.config_path.read_text())
    config["model"].update(engine="dask", dask={"workers": 2})
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = run_job("training_job")
    assert result.success, {k: v.description for k, v in checks(result).items() if not v.passed}
    assert isinstance(result.output_for_node("own_model__training_dataset"), dict)  # a manifest: the rows stayed on the workers
    model = result.output_for_node("own_model__candidate_model")
    assert 1 <= model["best_iteration"] <= 150
    assert result.output_for_node("own_model__candidate_evaluation")["candidate"]["metrics"][metric] > floor
