"""mlcicd.yaml is validated on load; a wrong key or value is an error that names the key."""

import pytest
import yaml
from click.testing import CliRunner

from mlcicd.cli import main
from mlcicd.config import ConfigError, load_config
from mlcicd_tests.conftest import REPO, deep_merge
from mlcicd_tests.support import shipped_settings


def write(tmp_path, text: str):
    path = tmp_path / "mlcicd.yaml"
    path.write_text(text)
    return path


def shipped() -> dict:
    return shipped_settings()


def test_shipped_config_is_valid_and_complete():
    from mlcicd.models import component_projects

    (fraud,) = [p for p in component_projects() if p.name == "fraud"]
    config = fraud.config
    assert fraud.config_path == REPO / "mlcicd" / "defs" / "models" / "fraud" / "defs.yaml" and fraud.data_dir == REPO / "data" / "fraud"
    assert config.dataset.target == "is_fraud"
    assert config.dataset.slice_columns == ["region", "channel"]
    assert 0 < config.gates.min_metrics["roc_auc"] < 1 and config.promotion.mode == "manual"


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"gates": {"max_slice_regresion": 0.9}}, "unknown key 'gates.max_slice_regresion' (did you mean 'gates.max_slice_regression'?)"),
        ({"gates": {"min_metrics": {"accuracy": 0.9}}}, "gates.min_metrics: 'accuracy' is not a binary metric; binary metrics are roc_auc, pr_auc"),
            ({"gates": {"primary_metric": "roc"}}, "gates.primary_metric: 'roc' is not a binary metric (did you mean 'roc_auc'?)"),
            ({"gates": {"max_metrics": {"roc_auc": 0.9}}}, "point the wrong way"),
            ({"dataset": {"task": "regression"}}, "gates.primary_metric: 'roc_auc' is not a regression metric"),
        ({"gates": {"positive_rate": [0.5, 0.1]}}, "positive_rate must be [low, high]"),
        ({"promotion": {"mode": "yolo"}}, "bad value for 'promotion.mode'"),
        ({"dataset": {"holdout_fraction": 2}}, "bad value for 'dataset.holdout_fraction'"),
        ({"dataset": {"task": "ranking"}}, "'dataset.task': 'ranking' is not a task; tasks: binary, multiclass, regression"),
        ({"model": {"num_boost_round": "many"}}, "bad value for 'model.num_boost_round'"),
        ({"tiers": {"nightly": {}}}, "unknown key 'tiers.nightly'"),
        ({"tiers": {"ci": {"model_name_suffix": ""}}}, "need different model_name_suffix values"),
        ({"dataset": {"time_column": "is_fraud"}}, "target, id_column and time_column must be different columns"),
    ],
)
def test_bad_key_or_value_names_the_key(tmp_path, override, expected):
    path = write(tmp_path, yaml.safe_dump(deep_merge(shipped(), override)))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_missing_required_key_is_named(tmp_path):
    raw = shipped()
    del raw["dataset"]["target"]
    with pytest.raises(ConfigError, match=r"missing required key 'dataset.target'"):
        load_config(write(tmp_path, yaml.safe_dump(raw)))


def test_unparseable_and_missing_files_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "dataset: [unclosed"))
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path, "- just\n- a list\n"))


def test_cli_reports_the_bad_key_and_exits_non_zero(tmp_path):
    path = write(tmp_path, yaml.safe_dump(deep_merge(shipped(), {"gates": {"max_regression": -1}})))
    result = CliRunner().invoke(main, ["validate", "--config", str(path)])
    assert result.exit_code != 0
    assert "gates.max_regression" in result.output


def test_cli_validates_the_shipped_project():
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 0, result.output
    assert "14 columns" in result.output


def test_a_job_with_a_malformed_config_fails_naming_the_key(make_project, run_job):
    raw = deep_merge(shipped(), {"dataset": {"window_batchez": 3}})
    make_project.write(raw)
    with pytest.raises(ConfigError, match=r"unknown key 'dataset.window_batchez' \(did you mean 'dataset.window_batches'\?\)"):
        run_job("training_job")  # the definitions are built from the config: no job exists to run


def test_an_invalid_config_fails_the_code_location_naming_the_file_and_the_key(make_project, tmp_path):
    """The config is read once, when the definitions are built: a bad one stops the code location loudly (the UI and
    the CLI show the file and the key), never a silent default."""
    import os
    import subprocess
    import sys

    project = make_project()
    config = yaml.safe_load(project.config_path.read_text())
    config["automation"] = {"retrain_cron": "0 2 * * *", "landing_interval_seconds": "often"}
    project.config_path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "MLCICD_CONFIG": str(project.config_path)}
    listed = subprocess.run([sys.executable, "-m", "dagster", "job", "list", "-m", "mlcicd.definitions"], env=env, capture_output=True, text=True)
    assert listed.returncode != 0
    assert str(project.config_path) in listed.stderr and "automation.landing_interval_seconds" in listed.stderr, listed.stderr[-1500:]
