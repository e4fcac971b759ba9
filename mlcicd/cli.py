"""The `mlcicd` command: simulate data, validate the config, show the champion and the audit trail."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from mlcicd.config import ConfigError
from mlcicd.core.tasks import TASKS
from mlcicd.project import Project
from mlcicd.terminal import model_option
from mlcicd.terminal import table as _table

MODEL_KEY = "mlcicd_model"


def _remember_model(ctx: click.Context, _param, value: str | None) -> str | None:
    ctx.meta[MODEL_KEY] = value
    return value


def CONFIG_OPTION(command):
    """--config (a single-model mlcicd.yaml) and --model (one model of a many-model project), on every command."""
    command = click.option(
        "--model", "model_name", default=None, expose_value=False, callback=_remember_model, is_eager=True,
        help="The model (its folder under mlcicd/defs/models/); default: every model, or the only one.",
    )(command)
    return click.option(
        "--config", "config_path", default=None,
        help="A single-model mlcicd.yaml (default: $MLCICD_CONFIG, else ./mlcicd.yaml, else the models under mlcicd/defs/models/).",
    )(command)


def _projects(config_path: str | None) -> list[Project]:
    """The models the command works on: --model's, or every model of the project."""
    from mlcicd.models import load_projects, project_root, select, single_model_config

    try:
        projects = select(load_projects(config_path), click.get_current_context().meta.get(MODEL_KEY))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    here = Path.cwd().resolve()
    if single_model_config(config_path) is None and not here.is_relative_to(project_root()):
        click.echo(f"{here} is outside the project and has no mlcicd.yaml: using the project at {project_root()} "
                   "(its models under mlcicd/defs/models/)", err=True)
    return projects


def _project(config_path: str | None) -> Project:
    """The one model the command works on (--model when the project has several)."""
    projects = _projects(config_path)
    if len(projects) > 1:
        raise click.ClickException(f"this project has {len(projects)} models ({', '.join(p.name for p in projects)}): pass --model NAME")
    return projects[0]


def _job(projects: list[Project], job: str) -> str:
    """A job over the chosen models: one model's (fraud__training_job), or the project's over every model (training_job)."""
    from mlcicd.names import Names

    return Names(projects[0].name).job(job) if len(projects) == 1 else job


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mlcicd", prog_name="mlcicd", message="%(prog)s %(version)s")
def main() -> None:
    """mlcicd: CI/CD for machine learning. Every change to code, data or model passes explainable gates."""


@main.command()
@CONFIG_OPTION
def validate(config_path: str | None) -> None:
    """Check every model's settings and the data contract each names; exit non-zero with the file and the bad key if invalid."""
    from mlcicd.models import port_clashes

    projects = _projects(config_path)
    for project in projects:
        _validate(project)
    clashes = port_clashes(projects)
    if clashes:
        raise click.ClickException("; ".join(clashes))
    for line in port_clashes(projects, enabled_only=False):  # fine while serving is off; `mlcicd serve` of both would clash
        click.echo(f"note: {line.replace('would all serve', 'share an address')}", err=True)


def _validate(project: Project) -> None:
    from mlcicd.core.contract import unknown_columns

    try:
        contract = project.contract
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    spec = project.config.dataset
    problems = unknown_columns(contract, {
        "dataset.target": [spec.target], "dataset.id_column": [spec.id_column], "dataset.time_column": [spec.time_column],
        "dataset.categorical_columns": spec.categorical_columns, "dataset.slice_columns": spec.slice_columns,
        "dataset.drop_columns": spec.drop_columns,
    })
    if problems:
        raise click.ClickException(f"{project.config_path}:\n  " + "\n  ".join(problems))
    click.echo(f"{project.config_path} is valid ({project.name}); the contract {project.contract_path.name} has {len(contract.columns)} columns.")


@main.command()
@CONFIG_OPTION
@click.option("--scenario", type=click.Choice(["baseline", "covariate_drift", "concept_drift", "schema_break", "degraded_quality"]),
              default="baseline", show_default=True)
@click.option("--batches", type=click.IntRange(min=1), default=None, help="Number of daily batches (default: simulator.batches).")
@click.option("--rows", type=click.IntRange(min=1, max=10_000_000), default=None, help="Rows per batch (default: simulator.rows_per_batch).")
@click.option("--seed", type=int, default=None, help="Random seed (default: simulator.seed); same seed, same data.")
@click.option("--format", "file_format", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@click.option("--unlabeled", is_flag=True, help="Without the target column, into scoring.landing_dir (for scoring_job).")
def simulate(config_path, scenario, batches, rows, seed, file_format, unlabeled) -> None:
    """Write simulated batches (each model's simulator.dataset) into its landing folder (labeled) or its scoring folder
    (--unlabeled); every model, or --model's."""
    for project in _projects(config_path):
        _simulate(project, scenario, batches, rows, seed, file_format, unlabeled)


def _simulate(project: Project, scenario, batches, rows, seed, file_format, unlabeled) -> None:
    from mlcicd.core.simulate import next_batch_index, write_batches

    sim = project.config.simulator
    start = next_batch_index([project.data_dir, project.landing_dir, project.scoring_dir])
    total = batches or sim.batches
    folder = project.scoring_dir if unlabeled else project.landing_dir
    per_batch = rows or sim.rows_per_batch
    with click.progressbar(length=total * per_batch, label=f"{project.name}: simulating {scenario} (rows)", file=sys.stderr, show_pos=True) as bar:
        written = write_batches(
            folder,
            dataset=sim.dataset,
            batches=total,
            rows_per_batch=per_batch,
            scenario=scenario,
            seed=sim.seed if seed is None else seed,
            start_index=start,
            file_format=file_format,
            on_rows=bar.update,
            drop_columns=(project.config.dataset.target,) if unlabeled else (),
        )
    kind = "unlabeled " if unlabeled else ""
    click.echo(f"{project.name}: wrote {len(written)} {kind}{scenario} batch(es) of {per_batch:,} rows to {folder}")


def _yaml_list(values: list[str]) -> str:
    import json

    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def render_config(guess, *, target: str, landing_dir: str, contract: str, name: str, noise: dict | None = None) -> str:
    """mlcicd.yaml for a user's dataset: what was inferred, gate settings the data can support (each explained), and
    what to review."""
    from mlcicd.core.infer import fitted_gates, model_params

    fitted = fitted_gates(guess, measured=noise)
    optional = lambda v: "null" if v is None else v  # noqa: E731
    duplicates = (
        f"# init saw {guess.duplicate_rows:,} exact duplicate row(s), e.g. {json.dumps(guess.duplicate_examples[:1], default=str)[:300]}.\n"
        "  # Without an id column they count as different records that look alike: unique_ids reports them and does not refuse.\n"
        "  # Set id_column (or duplicates: refuse) if a repeated row means a broken export.\n  " if guess.duplicate_rows else ""
    )
    explained = "\n".join(f"  {line}" for line in fitted["lines"])
    index_note = " (a row index written by a data frame library)" if guess.drop_columns else ""
    holdout_note = f"the newest {fitted['holdout_fraction']:.0%} of rows are the holdout, about {fitted['holdout_rows']:,} rows at this size"
    if fitted["holdout_fraction"] > 0.2:
        holdout_note += " (grown so that the regression margin can stay within 0.05)"
    params_text = "{" + ", ".join(f"{k}: {v}" for k, v in model_params(guess.rows).items()) + "}"
    return f"""# mlcicd configuration written by `mlcicd init` from {guess.rows:,} rows ({len(guess.columns)} columns).
# Review it, then run `mlcicd schema freeze` to write the data contract, and commit both.
dataset:
  landing_dir: {landing_dir}           # new batches (.csv or .parquet) land here; ingested files move to data/archive/
  contract: {contract}
  target: {target}
  task: {guess.task}                     # binary | multiclass | regression (inferred from the target)
  id_column: {optional(guess.id_column)}                 # null: rows have no identity; identical rows may be different records
  time_column: {optional(guess.time_column)}               # null: rows are ordered by the arrival of their batch
  categorical_columns: {_yaml_list(guess.categorical_columns)}
  slice_columns: {_yaml_list(fitted["slices"])}   # group columns judged value by value (no_slice_regression)
  drop_columns: {_yaml_list(list(guess.drop_columns))}   # never used as features{index_note}
  {duplicates}duplicates: {"refuse" if guess.id_column else "allow"}
  window_batches: 30
  holdout_fraction: {fitted["holdout_fraction"]}               # {holdout_note}
  # holdout_batches: 2                # or: the newest K batches; grow it when a gate says the holdout is too small to decide

model:
  registered_name: {name}
  experiment: {name}
  num_boost_round: 400
  early_stopping_rounds: 30
  params: {params_text}   # smaller trees for small data

gates:                                # every gate is blocking; each setting below says why it has this value
{explained}
tiers:
  full: {{}}
  ci: {{sample_rows: null, num_boost_round: 100, model_name_suffix: "-ci", evaluation_report: false}}
"""


@main.command()
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, path_type=Path), help="A CSV or Parquet file, or a folder of them.")
@click.option("--target", required=True, help="The column to predict.")
@click.option("--task", type=click.Choice(list(TASKS)), default=None, help="Default: inferred from the target.")
@click.option("--id-column", default=None, help="Default: a unique column named id, *_id, uuid or key, if any.")
@click.option("--time-column", default=None, help="Default: a date/time column, if any; without one, batches are ordered by arrival.")
@click.option("--name", default=None, help="The model's name (default: the data folder's name); also its registered model and experiment.")
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="A single-model mlcicd.yaml to write; default: a new model mlcicd/defs/models/<name>/defs.yaml in this project "
                   "(or ./mlcicd.yaml where the project is a single mlcicd.yaml).")
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
def init(data_path: Path, target: str, task, id_column, time_column, name, output: Path | None, force: bool) -> None:
    """Add a model for your own CSV or Parquet data (task, columns and gates inferred, for you to review): a new
    component mlcicd/defs/models/<name>/defs.yaml, or a single-model mlcicd.yaml with --output."""
    import re

    from mlcicd.models import MODELS_DIR, single_model_config

    folder = data_path if data_path.is_dir() else data_path.parent
    name = name or folder.resolve().name.replace(" ", "-").lower() or "mlcicd-model"
    model = re.sub(r"[^a-z0-9_]", "_", name.lower()).lstrip("_0123456789") or "model"  # a Dagster name: fraud, own_model
    component = output is None and single_model_config() is None and MODELS_DIR.is_dir()
    if output is None:
        output = MODELS_DIR / model / "defs.yaml" if component else Path("mlcicd.yaml")
    if output.exists() and not force:
        raise click.ClickException(f"{output} exists; pass --force to overwrite it")
    try:
        text, guess = model_settings_yaml(data_path, target, task, id_column, time_column, name, model, output, component)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    click.echo(
        f"wrote {output}: {guess.task} task on '{target}', id {guess.id_column or 'none'}, time {guess.time_column or 'none (arrival order)'}, "
        f"{len(guess.categorical_columns)} categorical column(s)."
    )
    if guess.drop_columns:
        click.echo(f"  {', '.join(guess.drop_columns)}: a row index written by a data frame library; never used as a feature (dataset.drop_columns)")
    if guess.duplicate_rows:
        click.echo(
            f"  {guess.duplicate_rows:,} exact duplicate row(s), e.g. {json.dumps(guess.duplicate_examples[0], default=str)[:200]}: without an id "
            "column they count as different records (dataset.duplicates: allow); unique_ids reports them, it does not refuse"
        )
    select = f"--model {model}" if component else f"--config {output}"
    click.echo(f"next: review it, then `mlcicd schema freeze {select}`")


def model_settings_yaml(data_path: Path, target: str, task, id_column, time_column, name: str, model: str, output: Path,
                        component: bool):
    """A model's settings inferred from its data, as YAML for review: a component's defs.yaml, or a single mlcicd.yaml.
    Used by `mlcicd init` and by `dg scaffold defs mlcicd.components.ModelPipeline` (components/model_pipeline.py)."""
    from mlcicd.core.infer import infer_dataset, measure_noise, read_reference
    from mlcicd.models import project_root

    folder = data_path if data_path.is_dir() else data_path.parent
    frame = read_reference(data_path, max_rows=200_000)
    guess = infer_dataset(frame, target, task, id_column, time_column)
    base = project_root() if component else output.resolve().parent  # relative paths start at the project root
    landing = os.path.relpath(folder.resolve(), base)
    click.echo("measuring how precisely a holdout of this data tells two models apart (two quick models)...", err=True)
    noise = measure_noise(frame, guess, target)
    text = render_config(guess, target=target, landing_dir=landing, contract=f"contracts/{name}.yaml", name=name, noise=noise)
    if component:
        from mlcicd.models import COMPONENT_TYPE

        indented = "\n".join(("  " + line) if line.strip() else line for line in text.splitlines())
        return f"# The model {model}: a ModelPipeline component; its attributes are its settings.\ntype: {COMPONENT_TYPE}\nattributes:\n{indented}\n", guess
    return f"name: {model}                         # jobs {model}__training_job, ...; asset keys {model}/...\n" + text, guess


@main.group()
def schema() -> None:
    """The data contract: infer it from reference data (freeze), then review and version it like code."""


@schema.command()
@CONFIG_OPTION
@click.option("--data", "data_path", type=click.Path(exists=True, path_type=Path), default=None,
              help="Reference data (default: dataset.landing_dir, or the accepted store once everything there is ingested).")
@click.option("--accepted", "from_accepted", is_flag=True, help="Re-freeze from the accepted store (data/accepted/), the batches ingested so far.")
@click.option("--margin", type=click.FloatRange(0, 10), default=0.1, show_default=True,
              help="Expected ranges (soft) are widened by this share of the observed span.")
@click.option("--force", is_flag=True, help="Replace an existing contract (its version goes up by one; the changes are listed).")
def freeze(config_path, data_path, from_accepted: bool, margin: float, force: bool) -> None:
    """Infer the contract from reference data into dataset.contract: hard rules (columns, types, id, labels, times, physical
    bounds) that quarantine a batch, and soft expectations (observed ranges, categories, missing shares) reported as drift."""
    import yaml

    from mlcicd.core.infer import contract_changes, data_files, freeze_contract, read_reference, require_column
    from mlcicd.core.ingest import list_accepted

    project = _project(config_path)
    spec = project.config.dataset
    source = data_path or project.landing_dir
    accepted = [b.path for b in list_accepted(project.accepted_dir)]
    if from_accepted or (data_path is None and accepted and not _has_data_files(source)):
        if not accepted:
            raise click.ClickException(f"no accepted batches in {project.accepted_dir} to freeze from")
        source = project.accepted_dir
        click.echo(f"reading the {len(accepted)} accepted batch(es) in {source} (the landing folder has nothing new)", err=True)
    try:
        files = accepted if source == project.accepted_dir else data_files(source)
        with click.progressbar(length=len(files), label=f"reading {source}", file=sys.stderr) as bar:
            frame = read_reference(files, on_file=lambda _: bar.update(1))
        for column, key in ((spec.target, "target"), (spec.id_column, "id_column"), (spec.time_column, "time_column")):
            if column:
                require_column(frame, column, f"dataset.{key}")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    contract = freeze_contract(
        frame, target=spec.target, id_column=spec.id_column, time_column=spec.time_column, task=spec.task, margin=margin,
        ignored=tuple(spec.drop_columns),
    )
    path = project.contract_path
    changes = []
    if path.exists():
        if not force:
            raise click.ClickException(f"{path} exists; pass --force to replace it (the changes will be listed for review)")
        old = yaml.safe_load(path.read_text()) or {}
        contract["version"] = int(old.get("version", 1)) + 1
        changes = contract_changes(old, contract)
    header = (
        f"# Data contract frozen by `mlcicd schema freeze` from {len(frame):,} rows of {source} (margin {margin:g}).\n"
        "# Review it and commit it: a change here is a change to what production accepts.\n"
        "# Hard rules quarantine a batch: columns, dtype, nullable: false, allowed (labels), unique (id), not_in_future, min/max\n"
        "#   (physical bounds: a column never seen negative is declared non-negative; delete that min if it can be).\n"
        "# Soft expectations (expected: observed range, categories, missing share) never quarantine: a batch outside them is\n"
        "#   accepted and reported as drift by monitoring. Move a value into a hard rule when it is truly impossible.\n"
    )
    body = yaml.safe_dump(contract, sort_keys=False, default_flow_style=None, width=140)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + body)
    click.echo(f"wrote {path} (version {contract['version']}, {len(contract['columns'])} columns)")
    for line in changes:
        click.echo(f"  {line}")


def ensure_dagster_home(project: Project) -> None:
    """Without DAGSTER_HOME, a project uses its own Dagster instance: the project folder's (as `make` does) for the models
    under mlcicd/defs/models/, SQLite files under data/dagster/ for a single mlcicd.yaml (so two datasets in two folders
    never share runs or gate results). Said once on stderr."""
    if os.environ.get("DAGSTER_HOME"):
        return
    # a many-model project's instance is its root (where dagster.yaml is, as `make` uses); a single mlcicd.yaml's is its own
    home = project.root if project.is_component else project.data_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    click.echo(f"DAGSTER_HOME is not set: using {home} (this project's own Dagster instance)", err=True)


def _has_data_files(folder: Path) -> bool:
    from mlcicd.core.infer import data_files

    try:
        return bool(data_files(folder))
    except ValueError:
        return False


@main.group()
def audit() -> None:
    """The audit trail of promotion decisions (data/audit/promotions.jsonl): append-only and hash-chained."""


@audit.command("verify")
@CONFIG_OPTION
def verify_audit(config_path) -> None:
    """Check that every record holds the SHA-256 of the one before it: an edited, removed or inserted record shows."""
    from mlcicd.core.audit import read, verify

    project = _project(config_path)
    problems = verify(project.audit_log)
    if problems:
        raise click.ClickException(f"{project.audit_log} has been changed:\n  " + "\n  ".join(problems))
    click.echo(f"{project.audit_log}: {len(read(project.audit_log))} record(s), every one linked to the one before it")


@main.group()
def batches() -> None:
    """The accepted store: list its batches, take one out of training (remove) or put it back (restore); audited."""


@batches.command("list")
@CONFIG_OPTION
@click.option("--removed", is_flag=True, help="List the removed batches instead.")
def list_batches(config_path, removed: bool) -> None:
    """Accepted (or removed) batches in arrival order: id, source file, rows, when, and unusual findings."""
    from mlcicd.core.ingest import list_accepted

    project = _project(config_path)
    folder = project.removed_dir if removed else project.accepted_dir
    found = list_accepted(folder)
    if not found:
        click.echo(f"no batches in {folder}")
        return
    rows = [[b.batch_id, str(b.sequence), b.source, f"{b.rows:,}", b.ingested_at, "; ".join(u["sentence"] for u in b.unusual) or "-"] for b in found]
    click.echo(_table(rows, ["batch", "#", "source", "rows", "ingested (UTC)", "unusual"], width=160))


def _change_batch(config_path, batch_id: str, reason: str, action: str) -> None:
    from mlcicd.core import batches as store

    project = _project(config_path)
    try:
        change = getattr(store, action)(project.accepted_dir, project.removed_dir, project.batch_log, batch_id, reason)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    where = project.removed_dir if action == "remove" else project.accepted_dir
    click.echo(f"{change.action} batch {change.batch_id} ({change.source}, {change.rows:,} rows) by {change.by}; it is now in {where}. "
               "The next training_job sees the change.")


@batches.command("remove")
@CONFIG_OPTION
@click.argument("batch_id")
@click.option("--reason", required=True, help="Why (at least 10 characters); recorded in data/audit/batches.jsonl.")
def remove_batch(config_path, batch_id: str, reason: str) -> None:
    """Take an accepted batch out of training (moved to data/removed/, never deleted), e.g. one whose labels a gate named."""
    _change_batch(config_path, batch_id, reason, "remove")


@batches.command("restore")
@CONFIG_OPTION
@click.argument("batch_id")
@click.option("--reason", default="", help="Why; recorded in data/audit/batches.jsonl.")
def restore_batch(config_path, batch_id: str, reason: str) -> None:
    """Put a removed batch back into the accepted store, in its original place in the arrival order."""
    _change_batch(config_path, batch_id, reason, "restore")


def run_job_with_progress(job: str, projects: list[Project], run_config: dict | None = None) -> None:
    """Run a job as CI does (`dagster job execute`), showing the running step, then the result per model (terminal.py)."""
    from mlcicd import terminal

    if not projects[0].is_component:  # the job runs this config's project, whatever the current folder
        os.environ["MLCICD_CONFIG"] = str(projects[0].config_path)
    ensure_dagster_home(projects[0])
    terminal.run_job(job, projects, run_config)


def require_data(projects: list[Project]) -> None:
    """Before a training run: every model has data, accepted or landed; else say what to do."""
    from mlcicd.core.ingest import list_accepted

    empty = [p for p in projects if not list_accepted(p.accepted_dir) and not _has_data_files(p.landing_dir)]
    if empty:
        lines = [f"{p.name}: no data yet: run `mlcicd simulate{model_option(p)}` for simulated batches, or put CSV or Parquet "
                 f"files in {p.landing_dir}" for p in empty]
        raise click.ClickException("\n".join(lines))


def require_evaluation(projects: list[Project]) -> None:
    """Before a promotion: a candidate has been evaluated; else say what to do."""
    from mlcicd.terminal import stored_evaluation

    missing = [p for p in projects if stored_evaluation(p, "full") is None]
    if missing:
        raise click.ClickException("\n".join(
            f"{p.name}: no candidate has been evaluated yet: run `mlcicd train{model_option(p)}` first" for p in missing))


@main.command()
@CONFIG_OPTION
@click.option("--tier", type=click.Choice(["full", "ci"]), default="full", show_default=True,
              help="full: training_job; ci: ci_job (a sample, few rounds). For a pull request: `mlcicd ci`.")
def train(config_path, tier: str) -> None:
    """Ingest what has landed, train a candidate and run every gate, with progress; the same run as `make train`."""
    projects = _projects(config_path)
    require_data(projects)
    run_job_with_progress(_job(projects, "training_job" if tier == "full" else "ci_job"), projects)


@main.command("ci")
@CONFIG_OPTION
@click.option("--base", default=None, help="The base branch whose model stands in when production's registry has no champion "
              "(default: $MLCICD_BASE_REF, else origin/main, else main).")
def ci_command(config_path, base: str | None) -> None:
    """The pull-request tier (pr_job): train this branch's candidate as production's champion was trained (tiers.pr), judge
    it against that champion on the same holdout with every gate, write data/reports/ci/<model>.md; exits non-zero when a
    blocking gate fails. Never registers into production's model, never moves an alias."""
    projects = _projects(config_path)
    if base:
        os.environ["MLCICD_BASE_REF"] = base
    run_job_with_progress(_job(projects, "pr_job"), projects)


@main.command()
@CONFIG_OPTION
@click.option("--override", is_flag=True, help="Promote despite failed gates (needs --reason; recorded as an override).")
@click.option("--reason", default="", help="Why; required with --override, recorded in the audit trail either way.")
def promote(config_path, override: bool, reason: str) -> None:
    """Move `champion` to the evaluated candidate if every gate passed for it (promotion_job), with progress."""
    from mlcicd.names import names

    projects = _projects(config_path)
    if (override or reason) and len(projects) > 1:
        raise click.ClickException("an override or a reason is for one model: pass --model NAME")
    config = {"ops": {names(projects[0]).op("champion"): {"config": {"override": override, "reason": reason}}}} if override or reason else None
    require_evaluation(projects)
    run_job_with_progress(_job(projects, "promotion_job"), projects, config)


@main.command()
@CONFIG_OPTION
@click.option("--to", "to_version", default="", help="The version to go back to (default: the version the champion replaced).")
@click.option("--override", is_flag=True, help="Go back to a version that never passed its gates (needs --reason; recorded as an override).")
@click.option("--reason", default="", help="Why; required with --override, recorded in the audit trail either way.")
def rollback(config_path, to_version: str, override: bool, reason: str) -> None:
    """Move `champion` back (rollback_job), audited; its files must still match what was registered, override or not."""
    from mlcicd.names import names

    project = _project(config_path)
    config = {"to_version": to_version, "override": override, "reason": reason}
    run_job_with_progress(_job([project], "rollback_job"), [project], {"ops": {names(project).op("roll_back"): {"config": config}}})


@main.command()
@CONFIG_OPTION
def score(config_path) -> None:
    """Score every batch waiting in scoring.landing_dir with the champion (challenger in shadow), with progress."""
    project = _project(config_path)
    run_job_with_progress(_job([project], "scoring_job"), [project])


@main.command()
@CONFIG_OPTION
@click.option("--host", default=None, help="Default: serving.host (127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Default: serving.port.")
def serve(config_path, host, port) -> None:
    """Serve the champion over HTTP: GET /health, POST /predict (JSON records or CSV), blue-green admin endpoints."""
    from mlcicd.serving import ServingError
    from mlcicd.serving import serve as run

    project = _project(config_path)
    settings = project.config.serving
    host, port = host or settings.host, port or settings.port
    click.echo(f"serving {project.model_name('full')} on http://{host}:{port} (pid {os.getpid()})", err=True)
    try:
        run(project, host, port, on_start=lambda said: click.echo(said, err=True))
    except ServingError as exc:
        raise click.ClickException(str(exc)) from None


def latest_gates(project: Project) -> tuple[dict, str]:
    """The latest result of every gate of the model from the Dagster instance ($DAGSTER_HOME), and where they came from."""
    import os

    if not os.environ.get("DAGSTER_HOME"):
        return {}, "DAGSTER_HOME is not set, so the Dagster instance (and its gate results) cannot be read"
    import dagster as dg

    from mlcicd.names import names
    from mlcicd.pipeline.promotion.assets import gate_results

    with dg.DagsterInstance.get() as instance:
        results = gate_results(instance, names(project))
    home = os.environ["DAGSTER_HOME"]
    if all("never ran" in r["reason"] for r in results.values()):
        return {}, f"no gate has run yet in the Dagster instance in {home}: run `mlcicd train`"
    return results, f"the Dagster instance in {home}"


def status_report(project: Project) -> dict:
    from mlcicd.core.audit import decisions, unaudited
    from mlcicd.mlflow_registry import CHALLENGER, CHAMPION, version_by_alias

    name = project.model_name("full")
    primary = project.config.gates.primary_metric

    def describe(alias: str) -> dict | None:
        version = version_by_alias(project, name, alias)
        if version is None:
            return None
        tags = version.tags or {}
        return {
            "version": str(version.version),
            primary: float(tags[f"holdout_{primary}"]) if f"holdout_{primary}" in tags else None,
            "holdout_rows": int(tags["holdout_rows"]) if "holdout_rows" in tags else None,
            "gates_passed": {"true": True, "false": False}.get(tags.get("gates_passed", "")),
            "reason": tags.get("decision_reason") or tags.get("promotion_reason"),
            "dataset_hash": tags.get("dataset_hash"),
            "git_commit": tags.get("git_commit"),
        }

    history = [r for r in decisions(project.audit_log) if r["model_name"] == name and r["phase"] == "done"]
    champion = describe(CHAMPION)
    gates, gates_source = latest_gates(project)
    return {
        "model": project.name,
        "model_name": name,
        "tracking_uri": project.tracking_uri_shown,
        "primary_metric": primary,
        "promotion_mode": project.config.promotion.mode,
        "champion": champion,
        "challenger": describe(CHALLENGER),
        "gates": gates,
        "gates_source": gates_source,
        "last_decision": history[-1] if history else None,
        "champion_audit": unaudited(project.audit_log, name, champion["version"] if champion else None),
    }


@main.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts (champion.version, challenger.version, gates, ...).")
def status(config_path: str | None, as_json: bool) -> None:
    """Show each model's champion, challenger, latest gate results and last promotion decision."""
    projects = _projects(config_path)
    ensure_dagster_home(projects[0])
    reports = [status_report(project) for project in projects]
    if as_json:
        click.echo(json.dumps(reports[0] if len(reports) == 1 else {r["model"]: r for r in reports}, indent=2, default=str))
        return
    for index, report in enumerate(reports):
        if len(reports) > 1:
            click.echo(("\n" if index else "") + f"== {report['model']} ==")
        _show_status(report)
    if len(reports) > 1:
        click.echo("\n" + _champions_table(reports))


def _champions_table(reports: list[dict]) -> str:
    """One line per model: its champion, primary metric, last decision and why."""
    rows = []
    for report in reports:
        champion, last, metric = report["champion"], report["last_decision"] or {}, report["primary_metric"]
        score = f"{metric} {champion[metric]:.4f}" if champion and champion.get(metric) is not None else "-"
        rows.append([report["model"], champion["version"] if champion else "none", score, last.get("decision", "-"), last.get("reason", "-")])
    return _table(rows, ["model", "champion", "primary metric", "decision", "why"], width=160)


def _show_status(report: dict) -> None:
    primary = report["primary_metric"]
    champion = report["champion"]
    if champion is None:
        click.echo(f"champion: none yet for {report['model_name']}")
    else:
        score = f"{primary} {champion[primary]:.4f}" if champion[primary] is not None else f"{primary} unknown"
        rows = f" on {champion['holdout_rows']:,} holdout rows" if champion["holdout_rows"] else ""
        click.echo(f"champion: version {champion['version']} of {report['model_name']}, {score}{rows}, {champion['reason'] or ''}")
    if report["champion_audit"]:
        click.echo(f"WARNING: {report['champion_audit']}; scoring and serving refuse it (promotion.revert_unaudited moves it back)")
    challenger = report["challenger"]
    click.echo(f"challenger: {'version ' + challenger['version'] if challenger else 'none'}   (promotion mode: {report['promotion_mode']})")
    if report["gates"]:
        click.echo(f"\nlatest gate results, in pipeline order (from {report['gates_source']}):")
        verdicts = [["RUNNING" if r.get("running") else "PASS" if r["passed"] else "FAIL", gate, r["reason"]] for gate, r in report["gates"].items()]
        click.echo(_table(verdicts, ["", "gate", "verdict"]))
    else:
        click.echo(f"\nlatest gate results: none ({report['gates_source']})")
    last = report["last_decision"]
    if last:
        click.echo(f"\nlast decision: {last['decision']} at {last['at']} by {last['triggered_by']}: {last['reason']}")


@main.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the audit records as JSON.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Newest records to show.")
@click.option("--tier", type=click.Choice(["full", "ci"]), default="full", show_default=True)
def history(config_path: str | None, as_json: bool, limit: int, tier: str) -> None:
    """The audit trail: every promotion, refusal, override and rollback, newest last."""
    from mlcicd.core.audit import decisions

    project = _project(config_path)
    name = project.model_name(tier)
    records = [r for r in decisions(project.audit_log) if r["model_name"] == name][-limit:]
    if as_json:
        click.echo(json.dumps(records, indent=2, default=str))
        return
    if not records:
        click.echo(f"no decisions recorded yet for {name} ({project.audit_log})")
        return
    rows = [[r["at"], r["decision"], f"{r['from_version'] or '-'} -> {r['to_version'] or '-'}", r["triggered_by"], r["reason"]] for r in records]
    click.echo(_table(rows, ["when (UTC)", "decision", "versions", "started by", "why"], width=160))


if __name__ == "__main__":
    main()
