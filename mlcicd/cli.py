"""The `mlcicd` command: simulate data, validate the config, show the champion and the audit trail."""

from __future__ import annotations

import json
import sys

import click

from mlcicd.config import ConfigError
from mlcicd.project import Project

CONFIG_OPTION = click.option(
    "--config", "config_path", default=None, help="Path of mlcicd.yaml (default: $MLCICD_CONFIG, else ./mlcicd.yaml)."
)


def _project(config_path: str | None) -> Project:
    try:
        return Project.load(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """mlcicd: CI/CD for machine learning. Every change to code, data or model passes explainable gates."""


@main.command()
@CONFIG_OPTION
def validate(config_path: str | None) -> None:
    """Check mlcicd.yaml and the data contract it names; exit non-zero with the bad key if invalid."""
    project = _project(config_path)
    try:
        contract = project.contract
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{project.config_path} is valid; the contract {project.contract_path.name} has {len(contract.columns)} columns.")


@main.command()
@CONFIG_OPTION
@click.option("--scenario", type=click.Choice(["baseline", "covariate_drift", "concept_drift", "schema_break", "degraded_quality"]), default="baseline", show_default=True)
@click.option("--batches", type=click.IntRange(min=1), default=None, help="Number of daily batches (default: simulator.batches).")
@click.option("--rows", type=click.IntRange(min=1), default=None, help="Rows per batch (default: simulator.rows_per_batch).")
@click.option("--seed", type=int, default=None, help="Random seed (default: simulator.seed); same seed, same data.")
@click.option("--format", "file_format", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@click.option("--unlabeled", is_flag=True, help="Without the target column, into scoring.landing_dir (for scoring_job).")
def simulate(config_path, scenario, batches, rows, seed, file_format, unlabeled) -> None:
    """Write simulated card-transaction batches into the landing folder (labeled) or the scoring folder (--unlabeled)."""
    from mlcicd.core.simulate import next_batch_index, write_batches

    project = _project(config_path)
    sim = project.config.simulator
    start = next_batch_index([project.data_dir, project.landing_dir, project.scoring_dir])
    total = batches or sim.batches
    folder = project.scoring_dir if unlabeled else project.landing_dir
    with click.progressbar(length=total, label=f"simulating {scenario}", file=sys.stderr) as bar:
        written = write_batches(
            folder,
            batches=total,
            rows_per_batch=rows or sim.rows_per_batch,
            scenario=scenario,
            seed=sim.seed if seed is None else seed,
            start_index=start,
            file_format=file_format,
            on_batch=lambda path, n: bar.update(1),
            drop_columns=(project.config.dataset.target,) if unlabeled else (),
        )
    kind = "unlabeled " if unlabeled else ""
    click.echo(f"wrote {len(written)} {kind}{scenario} batch(es) of {rows or sim.rows_per_batch:,} rows to {folder}")


def latest_gates() -> tuple[dict, str]:
    """The latest result of every gate from the Dagster instance ($DAGSTER_HOME), and where they came from."""
    import os

    if not os.environ.get("DAGSTER_HOME"):
        return {}, "DAGSTER_HOME is not set, so the Dagster instance (and its gate results) cannot be read"
    import dagster as dg

    from mlcicd.defs.promotion.assets import gate_results

    with dg.DagsterInstance.get() as instance:
        return gate_results(instance), f"the Dagster instance in {os.environ['DAGSTER_HOME']}"


def status_report(project: Project) -> dict:
    from mlcicd.core.audit import read
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

    history = [r for r in read(project.audit_log) if r["model_name"] == name]
    gates, gates_source = latest_gates()
    return {
        "model_name": name,
        "tracking_uri": project.tracking_uri,
        "primary_metric": primary,
        "promotion_mode": project.config.promotion.mode,
        "champion": describe(CHAMPION),
        "challenger": describe(CHALLENGER),
        "gates": gates,
        "gates_source": gates_source,
        "last_decision": history[-1] if history else None,
    }


@main.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts (champion.version, challenger.version, gates, ...).")
def status(config_path: str | None, as_json: bool) -> None:
    """Show the champion, the challenger, the latest gate results and the last promotion decision."""
    report = status_report(_project(config_path))
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    primary = report["primary_metric"]
    champion = report["champion"]
    if champion is None:
        click.echo(f"champion: none yet for {report['model_name']}")
    else:
        score = f"{primary} {champion[primary]:.4f}" if champion[primary] is not None else f"{primary} unknown"
        rows = f" on {champion['holdout_rows']:,} holdout rows" if champion["holdout_rows"] else ""
        click.echo(f"champion: version {champion['version']} of {report['model_name']}, {score}{rows}, {champion['reason'] or ''}")
    challenger = report["challenger"]
    click.echo(f"challenger: {'version ' + challenger['version'] if challenger else 'none'}   (promotion mode: {report['promotion_mode']})")
    if report["gates"]:
        click.echo("\nlatest gate results:")
        click.echo(_table([[("PASS" if r["passed"] else "FAIL"), gate, r["reason"]] for gate, r in report["gates"].items()], ["", "gate", "verdict"]))
    last = report["last_decision"]
    if last:
        click.echo(f"\nlast decision: {last['decision']} at {last['at']} by {last['triggered_by']}: {last['reason']}")


def _table(rows: list[list], header: list[str], width: int = 110) -> str:
    """A plain-text table; the last column is cut to keep lines readable."""
    cells = [header, *[[str(c) for c in row] for row in rows]]
    sizes = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    lines = []
    for row in cells:
        head = "  ".join(c.ljust(n) for c, n in zip(row, sizes))
        room = max(20, width - len(head) - 2)
        last = row[-1] if len(row[-1]) <= room else row[-1][: room - 1] + "…"
        lines.append(f"{head}  {last}".rstrip())
    return "\n".join(lines)


@main.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the audit records as JSON.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Newest records to show.")
@click.option("--tier", type=click.Choice(["full", "ci"]), default="full", show_default=True)
def history(config_path: str | None, as_json: bool, limit: int, tier: str) -> None:
    """The audit trail: every promotion, refusal, override and rollback, newest last."""
    from mlcicd.core.audit import read

    project = _project(config_path)
    name = project.model_name(tier)
    records = [r for r in read(project.audit_log) if r["model_name"] == name][-limit:]
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
