"""The code axis: code versions make a model stale and retrain it in a running deployment; every promotion says what
changed since the previous champion on each axis (data, code, settings)."""

import dagster as dg

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
