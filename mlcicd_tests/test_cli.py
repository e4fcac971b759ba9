"""The `mlcicd` command as a person meets it: help everywhere, progress for long work, errors in words."""

import click
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from mlcicd.cli import main
from mlcicd.core import simulate as simulator


def all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("command", [(), *all_commands(main)], ids=lambda c: " ".join(c) or "mlcicd")
def test_every_command_has_help(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ") and len(result.output.splitlines()) > 3


def test_validate_names_a_wrong_column_and_the_closest_real_one(make_project):
    make_project({"dataset": {"slice_columns": ["regoin"]}})
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 1
    assert "dataset.slice_columns: 'regoin' is not a column of the contract" in result.output
    assert "(did you mean 'region'?)" in result.output


def test_a_renamed_column_is_reported_as_probably_renamed(project, run_job):
    CliRunner().invoke(main, ["simulate", "--batches", "1", "--rows", "500", "--scenario", "schema_break"])
    run_job("fraud__ingestion_job")
    (report,) = project.quarantine_dir.glob("*.report.txt")
    assert "column 'amount' is missing (the batch has 'amount_usd' instead: renamed upstream?)" in report.read_text()


def test_big_batches_are_made_in_chunks_with_progress(monkeypatch):
    monkeypatch.setattr(simulator, "CHUNK_ROWS", 1000)
    seen = []
    batch = simulator.simulate_batch(2, 2500, on_rows=seen.append)
    assert seen == [1000, 1000, 500]
    assert len(batch) == 2500 and batch["transaction_id"].is_unique
    assert isinstance(batch["region"].dtype, pd.CategoricalDtype)
    # the first chunk is what an unchunked batch of that size would be: small batches did not change
    pd.testing.assert_frame_equal(batch.iloc[:1000], simulator.simulate_batch(2, 1000))


def test_errors_say_what_to_do_next(make_project, tmp_path, monkeypatch, definitions, instance):
    """Issue 18 point 4: promote before training, no data, a typo in the config, outside the project: one clear line each."""
    project = make_project()
    promoted = CliRunner().invoke(main, ["promote"])
    assert promoted.exit_code == 1
    assert promoted.output.strip() == "Error: fraud: no candidate has been evaluated yet: run `mlcicd train` first"
    # the same run from CI (`dagster job execute promotion_job`): the step's error says the same, not Dagster's wrapper
    failed = definitions.resolve_job_def("promotion_job").execute_in_process(instance=instance, raise_on_error=False)
    (failure,) = [e for e in failed.all_events if e.is_step_failure]
    assert "no candidate has been evaluated yet: run `mlcicd train` first" in str(failure.step_failure_data.error.cause.message)

    untrained = CliRunner().invoke(main, ["train"])
    assert untrained.exit_code == 1
    assert f"fraud: no data yet: run `mlcicd simulate` for simulated batches, or put CSV or Parquet files in {project.landing_dir}" \
        in untrained.output

    config = yaml.safe_load(project.config_path.read_text())
    config["gates"]["max_regresion"] = 0.01
    make_project.write(config)
    typo = CliRunner().invoke(main, ["train"])
    assert typo.exit_code == 1 and len(typo.output.strip().splitlines()) == 1, typo.output
    assert "unknown key 'gates.max_regresion' (did you mean 'gates.max_regression'?)" in typo.output

    monkeypatch.delenv("MLCICD_CONFIG")
    monkeypatch.chdir(tmp_path)
    outside = CliRunner().invoke(main, ["validate"])
    assert f"{tmp_path.resolve()} is outside the project and has no mlcicd.yaml: using the project at " in outside.output


def test_version():
    from importlib.metadata import version

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"mlcicd {version('mlcicd')}"


def test_without_dagster_home_a_project_uses_its_own_instance(make_project, tmp_path, monkeypatch):
    """README "Your own data": the CLI sets DAGSTER_HOME for a project (its data/dagster/) and says so."""
    project = make_project()
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.chdir(tmp_path)  # anywhere: --config names the project
    result = CliRunner().invoke(main, ["status", "--config", str(project.config_path)])
    assert result.exit_code == 0, result.output
    home = project.data_dir / "dagster"
    assert f"DAGSTER_HOME is not set: using {home}" in result.output and (home / "dagster.yaml").exists()
    assert "champion: none yet" in result.output


def test_holdout_batches_makes_the_newest_batches_the_holdout(make_project, run_job):
    from mlcicd.core.simulate import write_batches

    project = make_project({"dataset": {"holdout_batches": 1}})
    write_batches(project.landing_dir, batches=4, rows_per_batch=6000)
    result = run_job("training_job")
    assert result.success
    holdout = result.asset_materializations_for_node("fraud__train_holdout_split")
    rows = {m.asset_key.path[-1]: m.metadata["dagster/row_count"].value for m in holdout}
    assert rows == {"train_set": 18_000, "holdout_set": 6000}, rows


def test_rollback_is_its_own_command_and_needs_no_stored_evaluation(project, tmp_path, monkeypatch):
    """`mlcicd rollback` (rollback_job, its own config) on a project that never trained: refused in words, audited."""
    from mlcicd.core.audit import read

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    result = CliRunner().invoke(main, ["rollback", "--reason", "the new model misbehaves"])
    assert result.exit_code == 1
    assert "step fraud__roll_back: " in result.output and "there is no previous champion to go back to" in result.output
    (last,) = read(project.audit_log)
    assert last["decision"] == "refused" and "no previous champion" in last["reason"]


def test_the_champion_alias_is_moved_in_one_place():
    """Only mlcicd/champion.py moves `champion` (through mlflow_registry.move_champion), and only it writes decisions."""
    from .conftest import REPO

    sources = {path.relative_to(REPO).as_posix(): path.read_text() for path in (REPO / "mlcicd").rglob("*.py")}
    movers = sorted(name for name, text in sources.items() if "move_champion(" in text)
    assert movers == ["mlcicd/champion.py", "mlcicd/mlflow_registry.py"]
    assert sources["mlcicd/mlflow_registry.py"].count("set_registered_model_alias(model_name, CHAMPION") == 1
    writers = sorted(name for name, text in sources.items() if "append(proj.audit_log" in text)
    assert writers == ["mlcicd/champion.py"]


def test_every_command_that_reads_a_project_takes_config():
    """`--config` works on every command (init writes a config: it takes --output instead)."""
    leaves = [c for c in all_commands(main) if not isinstance(main.get_command(None, c[0]), click.Group) or len(c) > 1]
    for path in leaves:
        command = main
        for name in path:
            command = command.get_command(None, name)
        if path != ("init",):
            assert "config_path" in {p.name for p in command.params}, f"mlcicd {' '.join(path)} has no --config"


@pytest.mark.persistent_instance  # the CLI's `dagster job execute` and this test share the instance
def test_train_prints_the_result_and_keeps_dagsters_log_in_a_file(project, instance):
    """Issue 18 point 3: the terminal gets the result (version, metric with interval, decision, next step), not Dagster's
    event log, which goes to a file."""
    from .support import simulate

    simulate(project, batches=4)
    result = CliRunner().invoke(main, ["train"])
    assert result.exit_code == 0, result.output
    assert "DEBUG" not in result.output and "Warning" not in result.output
    assert "fraud: version 1 of mlcicd-fraud" in result.stdout
    assert "  roc_auc 0." in result.stdout and "(95% interval 0." in result.stdout and "holdout rows" in result.stdout
    assert "  decision: every gate passed; next: `mlcicd promote`" in result.stdout
    (log,) = (project.root / "data" / "logs").glob("fraud__training_job-*.log")
    assert f"full log: {log}" in result.output
    assert "STEP_SUCCESS" in log.read_text(), "Dagster's full event log is in the file"

    status = CliRunner().invoke(main, ["status"])
    gates = [line.split()[1] for line in status.stdout.splitlines() if line.startswith(("PASS ", "FAIL ", "RUNNING "))]
    from .support import ALL_GATES
    from mlcicd.core.gate_table import in_pipeline_order

    assert set(gates) == ALL_GATES and gates == in_pipeline_order(gates), "every gate, in pipeline order"
