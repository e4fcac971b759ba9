"""Three models in one code location and one Dagster instance (the shipped fraud, merchants and disputes components):
each trains and is promoted under its own names; one model's bad batch stops only that model; a bad defs.yaml fails
the code location naming the file and the key."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from mlcicd.core.audit import decisions
from mlcicd.core.simulate import write_batches
from mlcicd.mlflow_registry import CHAMPION, version_by_alias
from mlcicd.models import MODELS_DIR, component_projects
from mlcicd.pipeline import build

from .conftest import REPO, TEST_OVERRIDES, deep_merge

MODELS = ("fraud", "merchants", "disputes")


def three_models(root: Path, template: Path):
    """The shipped models' defs.yaml files with the suite's small settings, in a project folder of their own."""
    shutil.copytree(REPO / "contracts", root / "contracts")
    for name in MODELS:
        declared = yaml.safe_load((MODELS_DIR / name / "defs.yaml").read_text())
        small = {**TEST_OVERRIDES, "simulator": {"batches": 4, "rows_per_batch": 5000, "ci_rows": 20000}}
        declared["attributes"] = deep_merge(declared["attributes"], {k: v for k, v in small.items() if k != "tiers"})
        folder = root / "models" / name
        folder.mkdir(parents=True)
        (folder / "defs.yaml").write_text(yaml.safe_dump(declared, sort_keys=False))
    (root / "data" / "mlflow").mkdir(parents=True)
    shutil.copy(template, root / "data" / "mlflow" / "mlflow.db")
    return component_projects(root / "models", root)


def test_three_models_train_and_promote_side_by_side_and_a_bad_batch_stops_only_its_model(tmp_path, mlflow_template, instance):
    projects = {proj.name: proj for proj in three_models(tmp_path, mlflow_template)}
    assert set(projects) == set(MODELS) and projects["merchants"].data_dir == tmp_path / "data" / "merchants"
    for proj in projects.values():
        sim = proj.config.simulator
        write_batches(proj.landing_dir, batches=sim.batches, rows_per_batch=sim.rows_per_batch, dataset=sim.dataset)
    merchants = projects["merchants"]
    write_batches(merchants.landing_dir, batches=1, rows_per_batch=500, scenario="schema_break", start_index=7, dataset="merchants")
    definitions = build(list(projects.values()))

    trained = definitions.resolve_job_def("training_job").execute_in_process(instance=instance, raise_on_error=False)
    failed = {(e.asset_key.path[0], e.check_name): e.description for e in trained.get_asset_check_evaluations() if not e.passed}
    assert set(failed) == {("merchants", "data_contract")}, failed
    assert [p.name for p in merchants.quarantine_dir.glob("*.parquet")] == ["batch-00007-schema_break.parquet"]
    evaluated = {m.asset_key.path[0] for m in trained.get_asset_materialization_events() if m.asset_key.path[-1] == "candidate_evaluation"}
    assert evaluated == {"fraud", "disputes"}, "merchants' bad batch stops merchants only"

    definitions.resolve_job_def("promotion_job").execute_in_process(instance=instance, raise_on_error=False)
    for name in ("fraud", "disputes"):
        proj = projects[name]
        assert version_by_alias(proj, proj.model_name("full"), CHAMPION).version == 1, name
        (record,) = decisions(proj.audit_log)
        assert record["decision"] == "promoted" and record["model_name"] == f"mlcicd-{name}"
    assert version_by_alias(merchants, merchants.model_name("full"), CHAMPION) is None

    shutil.move(merchants.quarantine_dir / "batch-00007-schema_break.parquet", tmp_path / "kept-aside.parquet")
    alone = definitions.resolve_job_def("merchants__training_job").execute_in_process(instance=instance, raise_on_error=False)
    assert alone.success, [e.description for e in alone.get_asset_check_evaluations() if not e.passed]
    promoted = definitions.resolve_job_def("merchants__promotion_job").execute_in_process(instance=instance, raise_on_error=False)
    assert promoted.success and version_by_alias(merchants, merchants.model_name("full"), CHAMPION).version == 1
    evaluation = alone.output_for_node("merchants__candidate_evaluation")
    assert evaluation["primary_metric"] == "macro_f1" and evaluation["candidate"]["metrics"]["macro_f1"] > 0.4
    assert [r["decision"] for r in decisions(projects["fraud"].audit_log)] == ["promoted"], "nothing of fraud moved"


def test_ci_job_on_a_fresh_clone_simulates_each_model_its_own_data_and_promotes_each(tmp_path, mlflow_template, instance):
    projects = three_models(tmp_path, mlflow_template)
    result = build(projects).resolve_job_def("ci_job").execute_in_process(instance=instance, raise_on_error=False)
    assert result.success, {(e.asset_key.path[0], e.check_name): e.description for e in result.get_asset_check_evaluations() if not e.passed}
    for proj in projects:
        assert version_by_alias(proj, proj.model_name("ci"), CHAMPION).version == 1, proj.name
        assert version_by_alias(proj, proj.model_name("full"), CHAMPION) is None, "the CI tier never touches production"
        assert proj.config.dataset.target in pd.read_parquet(next(proj.accepted_dir.rglob("*.parquet"))).columns


def test_an_invalid_defs_yaml_fails_the_code_location_naming_the_file_and_the_key(tmp_path):
    """Through Dagster's own component loading (a dg project with one ModelPipeline instance), as `dg check defs` and
    the UI load it."""
    package = tmp_path / "someproject"
    folder = package / "defs" / "models" / "churn"
    folder.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "defs" / "__init__.py").write_text("")
    (tmp_path / "pyproject.toml").write_text('[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\nroot_module = "someproject"\n')
    settings = yaml.safe_load((MODELS_DIR / "fraud" / "defs.yaml").read_text())
    settings["attributes"]["gates"]["max_regresion"] = 0.01
    (folder / "defs.yaml").write_text(yaml.safe_dump(settings))
    code = f"import dagster as dg, pathlib; dg.load_from_defs_folder(path_within_project=pathlib.Path({str(tmp_path)!r}))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert loaded.returncode != 0
    said = loaded.stderr
    assert str(folder / "defs.yaml") in said and "unknown key 'gates.max_regresion' (did you mean 'gates.max_regression'?)" in said, said[-2000:]


def test_dg_scaffold_writes_a_model_that_loads(tmp_path):
    """`dg scaffold defs mlcicd.components.ModelPipeline models/<name>` with the data and the target: settings inferred
    as `mlcicd init` infers them, in a defs.yaml that validates (an empty attributes block would not load)."""
    package = tmp_path / "someproject"
    (package / "defs").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "defs" / "__init__.py").write_text("")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\nroot_module = "someproject"\nregistry_modules = ["mlcicd.components"]\n')
    data = tmp_path / "incoming"
    data.mkdir()
    rows = 400
    pd.DataFrame({"amount": [float(i % 97) for i in range(rows)], "kind": [("a", "b", "c")[i % 3] for i in range(rows)],
                  "churned": [int(i % 7 == 0) for i in range(rows)]}).to_csv(data / "day1.csv", index=False)
    dg_cli = str(Path(sys.executable).with_name("dg"))
    made = subprocess.run([dg_cli, "scaffold", "defs", "mlcicd.components.ModelPipeline", "models/churn", "--json-params",
                           '{"data": "incoming", "target": "churned"}'], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    written = yaml.safe_load((package / "defs" / "models" / "churn" / "defs.yaml").read_text())
    assert written["type"] == "mlcicd.components.ModelPipeline"
    spec = written["attributes"]["dataset"]
    assert spec["target"] == "churned" and spec["task"] == "binary" and spec["contract"] == "contracts/churn.yaml"

    from mlcicd.components.model_pipeline import project_of

    project = project_of(written["attributes"], package / "defs" / "models" / "churn" / "defs.yaml", tmp_path)  # it validates
    assert project.name == "churn"


def test_two_models_that_would_deploy_to_one_address_are_refused(tmp_path):
    """With serving on, two models on the same host and port would replace each other's service: the code location
    refuses to load and says which; the shipped models each have their own port."""
    import pytest

    from mlcicd.components.model_pipeline import project_of

    projects = []
    for name in ("fraud", "disputes"):
        settings = deep_merge(yaml.safe_load((MODELS_DIR / name / "defs.yaml").read_text())["attributes"],
                              {"serving": {"enabled": True, "port": 8100}})
        projects.append(project_of(settings, tmp_path / name / "defs.yaml", tmp_path))
    with pytest.raises(ValueError, match="models fraud and disputes would all serve on 127.0.0.1:8100"):
        build(projects)
    from mlcicd.models import port_clashes

    assert port_clashes(component_projects(), enabled_only=False) == []
