"""The code axis: code versions make a model stale and retrain it in a running deployment; every promotion says what
changed since the previous champion on each axis (data, code, settings)."""

import dagster as dg
import pytest
from click.testing import CliRunner

from mlcicd.cli import main

from .support import simulate


def test_a_code_version_change_requests_a_retrain_and_an_unchanged_one_nothing(make_project, run_job, definitions, instance):
    project = make_project()
    simulate(project, batches=4)
    assert run_job("training_job").success

    before = definitions.now()
    first = dg.evaluate_automation_conditions(defs=before, instance=instance)
    assert first.total_requested == 0, "trained and up to date: nothing to do"
    again = dg.evaluate_automation_conditions(defs=definitions.now(), instance=instance, cursor=first.cursor)
    assert again.total_requested == 0, "an unchanged code version requests nothing"

    make_project({"model": {"params": {"num_leaves": 15}}})  # a model setting: candidate_model's code version changes
    after = definitions.now()
    graph_before, graph_after = before.resolve_asset_graph(), after.resolve_asset_graph()
    key = dg.AssetKey(["fraud", "candidate_model"])
    assert graph_before.get(key).code_version != graph_after.get(key).code_version
    assert graph_before.get(dg.AssetKey(["fraud", "training_dataset"])).code_version == \
        graph_after.get(dg.AssetKey(["fraud", "training_dataset"])).code_version, "the dataset is shaped by other settings"
    changed = dg.evaluate_automation_conditions(defs=after, instance=instance, cursor=again.cursor)
    asked = {r.key for r in changed.results if r.true_subset.size and isinstance(r.key, dg.AssetKey)}
    assert key in asked and dg.AssetKey(["fraud", "training_dataset"]) not in asked, asked


def test_every_new_champion_says_what_changed_on_each_axis(make_project, run_job, instance):
    """Issue 19 point 4: the training run's tags, the audit record and the model card name what changed since the
    previous champion: here one new batch (data) and one gate setting (settings); the code is the same."""
    from mlcicd.core.audit import read
    from mlcicd.core.simulate import next_batch_index, write_batches

    project = make_project()
    simulate(project, batches=4)
    assert run_job("training_job").success and run_job("promotion_job").success
    first = read(project.audit_log)[-1]
    assert first["changes"]["data"] == ["the first champion: nothing to compare with"]

    project = make_project({"gates": {"max_calibration_error": 0.03}})
    write_batches(project.landing_dir, batches=1, rows_per_batch=6000, start_index=next_batch_index([project.data_dir]))
    trained = run_job("training_job")
    assert trained.success
    reason = instance.get_run_by_id(trained.run_id).tags["mlcicd/changes_since_champion"]
    assert reason.startswith("since champion version 1: data: dataset ") and "1 batch(es) added" in reason
    assert "settings: gates.max_calibration_error: 0.02 -> 0.03" in reason and "code:" not in reason, reason

    assert run_job("promotion_job").success
    record = read(project.audit_log)[-1]
    assert record["decision"] == "promoted" and record["to_version"] == "2"
    assert record["changes"]["code"] == [], "same commit, same code"
    assert record["changes"]["settings"] == ["gates.max_calibration_error: 0.02 -> 0.03"]
    assert any(line.startswith("added batch ") for line in record["changes"]["data"])
    card = (project.data_dir / "reports" / "model_cards" / f"{project.model_name('full')}-v2.md").read_text()
    section = card.split("## What changed since the previous champion")[1].split("##")[0]
    assert "- **settings:** gates.max_calibration_error: 0.02 -> 0.03" in section and "- **code:** nothing changed" in section


def test_what_changed_names_code_components_commits_and_files():
    from mlcicd.core.changes import provenance, what_changed

    before = provenance(dataset_hash="a" * 64, batches=["b1"], git_commit="1" * 40,
                        components={"feature_code": "x", "training_code": "y", "model_settings": "m", "contract": "c"}, settings={"model": {"seed": 1}})
    after = provenance(dataset_hash="a" * 64, batches=["b1"], git_commit="2" * 40,
                       components={"feature_code": "z", "training_code": "y", "model_settings": "m", "contract": "d"}, settings={"model": {"seed": 2}})
    changes = what_changed(before, after, ["mlcicd/core/features.py"])
    assert changes["data"] == []
    assert changes["code"] == ["commit 111111111111 -> 222222222222", "feature_code changed", "changed file mlcicd/core/features.py"]
    assert changes["settings"] == ["the data contract changed", "model.seed: 1 -> 2"]


@pytest.fixture
def in_production(make_project, run_job):
    """Production has a champion (version 1 of mlcicd-fraud), trained and promoted by the full tier."""
    project = make_project()
    simulate(project, batches=4)
    assert run_job("training_job").success and run_job("promotion_job").success
    return project


def assert_production_untouched(project) -> None:
    from mlcicd.mlflow_registry import CHAMPION, CHALLENGER, client, version_by_alias

    registry = client(project)
    assert [str(v.version) for v in registry.search_model_versions(f"name = '{project.model_name('full')}'")] == ["1"], \
        "the pull-request tier never registers into production's model"
    assert str(version_by_alias(project, project.model_name("full"), CHAMPION).version) == "1"
    assert all(version_by_alias(project, project.model_name("pr"), alias) is None for alias in (CHAMPION, CHALLENGER)), "no alias moves"


@pytest.mark.persistent_instance  # `mlcicd ci` runs pr_job with `dagster job execute`, against this instance
def test_mlcicd_ci_fails_a_change_that_makes_productions_model_worse_and_passes_a_neutral_one(in_production, make_project):
    """Issue 19 points 2, 3 and 5: a config change that drops the strongest features fails `no_regression` against
    production's champion, and the report holds the numbers; a neutral change passes; production is untouched."""
    make_project({"dataset": {"drop_columns": ["amount", "device_risk_score"]}})
    worse = CliRunner().invoke(main, ["ci"])
    assert worse.exit_code != 0, worse.output
    assert "gate no_regression" in worse.output
    said = " ".join(worse.output.split())  # (lines wrap)
    assert "gate(s) failed: no_regression" in said and "data/reports/ci/fraud.md says why)" in said, "the report, not status"
    report = (in_production.root / "data" / "reports" / "ci" / "fraud.md").read_text()
    assert report.startswith("## mlcicd · mlcicd-fraud-pr · FAIL")
    assert "compared with production's champion: mlcicd-fraud version 1" in report
    assert "| ❌ | no_regression |" in report and "| roc_auc | 0." in report and "95% interval" in report
    assert "dataset.drop_columns: [] -> ['amount', 'device_risk_score']" in report
    assert "### Largest feature-importance changes" in report and "| amount |" in report
    assert_production_untouched(in_production)

    make_project({"gates": {"max_calibration_error": 0.03}})  # neutral: the same model
    neutral = CliRunner().invoke(main, ["ci"])
    assert neutral.exit_code == 0, neutral.output
    report = (in_production.root / "data" / "reports" / "ci" / "fraud.md").read_text()
    assert report.startswith("## mlcicd · mlcicd-fraud-pr · PASS") and "| ✅ | no_regression |" in report
    assert "pull-request report: " in neutral.output
    assert_production_untouched(in_production)


def test_a_training_code_change_that_hurts_the_model_fails_pr_job(in_production, run_job, monkeypatch):
    """The same through `pr_job` in process, with the code change supplied by this fixture: the training code asks
    LightGBM for tiny trees barely trained."""
    import mlcicd.core.train as training_code

    original = training_code.lightgbm_params
    monkeypatch.setattr(training_code, "lightgbm_params", lambda *args, **kwargs: {
        **original(*args, **kwargs), "num_leaves": 2, "learning_rate": 0.005, "feature_fraction": 0.2})
    summary = in_production.root / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = run_job("pr_job")
    assert not result.success
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert "no_regression" in failed, failed
    report = (in_production.root / "data" / "reports" / "ci" / "fraud.md").read_text()
    assert "| ❌ | no_regression |" in report and "better by -0." in report
    assert summary.read_text().startswith(report), "appended to GitHub's job summary"
    assert_production_untouched(in_production)


def test_without_a_production_champion_the_base_branchs_model_stands_in(make_project, run_job, monkeypatch):
    """Production's registry has no champion: the first run says so and judges without one; once the base branch's
    commit has a model trained the same way, the next run is compared with it."""
    import subprocess

    project = make_project()
    for command in (["init", "-q"], ["add", "."], ["-c", "user.email=ci@example.org", "-c", "user.name=ci", "commit", "-qm", "base"]):
        subprocess.run(["git", *command], cwd=project.root, check=True, capture_output=True)
    monkeypatch.setenv("MLCICD_BASE_REF", "HEAD")
    simulate(project, batches=4)
    assert run_job("pr_job").success
    report = (project.root / "data" / "reports" / "ci" / "fraud.md").read_text()
    assert "production's registry has no champion of mlcicd-fraud, and no model of the base branch" in report, report[:600]

    assert run_job("pr_job").success
    report = (project.root / "data" / "reports" / "ci" / "fraud.md").read_text()
    assert "compared with the base branch's model trained the same way (mlcicd-fraud-pr version 1" in report, report[:600]
    assert "| ✅ | no_regression |" in report and "better by +0.0000" in report, "the same code on the same data: the same model"


def test_when_productions_registry_cannot_be_read_the_pull_request_fails_closed(make_project, run_job, monkeypatch):
    """Not "no champion yet": a registry that does not answer leaves nothing compared, so the regression gates refuse."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    project = make_project()
    simulate(project, batches=4)

    def unreachable(self, name, alias):
        raise MlflowException("connection refused (the production tracking server)", error_code="TEMPORARILY_UNAVAILABLE")

    monkeypatch.setattr(MlflowClient, "get_model_version_by_alias", unreachable)
    result = run_job("pr_job")
    assert not result.success
    failed = {e.check_name: e.description for e in result.get_asset_check_evaluations() if not e.passed}
    assert "no_regression" in failed and "production's registry could not be read" in failed["no_regression"], failed
    report = project.pr_report.read_text()
    assert "| ❌ | no_regression |" in report
