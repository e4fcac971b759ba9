"""What a person sees in the terminal when the CLI runs a job: the step that is running now, then the result in a few
lines (version, primary metric with its interval, the decision and why, where the report is, what to do next).
Dagster's full event log goes to a file under data/logs/ (and is in the UI), never onto the terminal."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import click

from mlcicd.project import Project

def log_folder(project: Project) -> Path:
    folder = project.root / "data" / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run_job(job: str, projects: list[Project], run_config: dict | None = None) -> None:
    """Run a job exactly as CI does (`dagster job execute`, same instance) with the running step on a progress bar,
    then print the result for each model. Exits non-zero, with each failed step and gate in words, on failure."""
    import tempfile

    import dagster as dg
    import yaml

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    log_path = log_folder(projects[0]) / f"{job}-{stamp}.log"
    command = [str(Path(sys.executable).with_name("dagster")), "job", "execute", "-m", "mlcicd.definitions", "-j", job]
    with tempfile.TemporaryDirectory() as tmp:
        if run_config:
            config_file = Path(tmp) / "run_config.yaml"
            config_file.write_text(yaml.safe_dump(run_config))
            command += ["-c", str(config_file)]
        started = datetime.now(timezone.utc)
        with dg.DagsterInstance.get() as instance, open(log_path, "w") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            run = follow(instance, process, job, started)
            ok = process.returncode == 0 and run is not None
            click.echo(f"{job}: {'succeeded' if ok else 'failed'}; full log: {log_path}" + (f" (run {run.run_id})" if run else ""), err=True)
            if run is not None:
                for project in projects:
                    for line in result_lines(job, project, instance):
                        click.echo(line)
            if not ok:
                click.echo(failure_summary(instance, run, log_path), err=True)
                raise SystemExit(process.returncode or 1)


def follow(instance, process: subprocess.Popen, job: str, started: datetime):
    """Show the steps as they start and finish until the process ends; returns the run (None if it never started)."""
    import dagster as dg

    run, total, started_steps, finished = None, 0, [], set()
    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE,
             dg.DagsterEventType.STEP_SKIPPED}

    def running(_) -> str:
        now = [step for step in started_steps if step not in finished]
        return f"running {', '.join(now)}" if now else ""

    with click.progressbar(length=1, label=job, file=sys.stderr, show_pos=True, item_show_func=running) as bar:
        while True:
            ended = process.poll() is not None
            if run is None:
                runs = instance.get_runs(dg.RunsFilter(job_name=job, created_after=started), limit=1)
                if runs:
                    run = runs[0]
                    total = len(instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id).steps)
                    bar.length = total
            if run is not None:
                for record in instance.get_records_for_run(run.run_id, of_type=kinds).records:
                    event, step = record.event_log_entry.dagster_event, record.event_log_entry.step_key
                    if event.event_type == dg.DagsterEventType.STEP_START:
                        if step not in started_steps:
                            started_steps.append(step)
                    elif step not in finished:
                        finished.add(step)
                        bar.update(1)
                bar.render_progress()
            if ended:
                break
            time.sleep(0.5)
    return run


def failure_summary(instance, run, log_path: Path) -> str:
    """The failed steps and gates of a run, in words (or the end of its log when the run never started)."""
    import dagster as dg

    if run is None:
        return "the run did not start:\n" + "\n".join(log_path.read_text().splitlines()[-15:])
    lines = [f"{run.job_name} failed (run {run.run_id}):"]
    for entry in instance.all_logs(run.run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            while error is not None and error.cause is not None and error.cls_name and error.cls_name.startswith("Dagster"):
                error = error.cause  # "Error occurred while executing op ..." wraps the cause that says what went wrong
            said = error.message.strip().splitlines()[0] if error else "failed"
            lines.append(wrapped(f"step {event.step_key}: {said}", indent="  "))
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION and not event.event_specific_data.passed:
            check = event.event_specific_data
            lines.append(wrapped(f"gate {check.check_name}: {check.description}", indent="  "))
    return "\n".join(lines)


def wrapped(text: str, indent: str = "", width: int | None = None) -> str:
    width = width or max(60, min(120, click.get_terminal_size()[0] if sys.stdout.isatty() else 110))
    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent + "    ", break_on_hyphens=False, break_long_words=False)


def result_lines(job: str, project: Project, instance) -> list[str]:
    """What a job produced for one model, in a few lines."""
    for tier, name in (("full", "training_job"), ("ci", "ci_job"), ("pr", "pr_job")):
        if job.endswith(name):
            return training_result(project, instance, tier=tier)
    if "promotion_job" in job or "rollback_job" in job:
        return decision_result(project)
    return []


def stored_evaluation(project: Project, tier: str) -> dict | None:
    """The latest candidate_evaluation a tier stored (as its IO manager wrote it), or None."""
    from mlcicd.project import tier_folder

    path = tier_folder(project.assets_dir, tier) / "candidate_evaluation.json"
    return json.loads(path.read_text()) if path.exists() else None


def interval(value: float, sd: float | None) -> str:
    if sd is None or not math.isfinite(sd):
        return f"{value:.4f}"
    return f"{value:.4f} (95% interval {value - 1.96 * sd:.4f} to {value + 1.96 * sd:.4f})"


def training_result(project: Project, instance, tier: str) -> list[str]:
    from mlcicd.names import names
    from mlcicd.pipeline.promotion.assets import gate_results

    evaluation = stored_evaluation(project, tier)
    if evaluation is None:
        return [f"{project.name}: no candidate was evaluated (see the failure below)"]
    metric, candidate = evaluation["primary_metric"], evaluation["candidate"]
    champion = evaluation.get("champion")
    lines = [f"{project.name}: version {candidate['version']} of {evaluation['model_name']}"
             + (" (unchanged: the champion itself)" if evaluation.get("unchanged") else ""),
             f"  {metric} {interval(candidate['metrics'][metric], candidate.get('metric_sd'))} on {evaluation['holdout_rows']:,} holdout rows"]
    if champion and champion.get("metrics"):
        comparison = evaluation.get("comparison") or {}
        lines.append(f"  champion version {champion['version']}: {metric} {champion['metrics'][metric]:.4f}; "
                     f"better by {comparison.get('delta', float('nan')):+.4f} (lower bound {comparison.get('lower', float('nan')):+.4f})")
    gates = gate_results(instance, names(project), tier)
    failed = [name for name, result in gates.items() if not result["passed"]]
    if failed:
        # the pull-request tier's verdicts are in its report; `mlcicd status` shows production's (the full tier)
        why = (f"{project.pr_report} says why" if tier == "pr" else f"`mlcicd status{model_option(project)}` says why")
        lines.append(wrapped(f"decision: would not be promoted: {len(failed)} gate(s) failed: {', '.join(failed)} ({why})", indent="  "))
    elif tier == "full":
        lines.append(f"  decision: every gate passed; next: `mlcicd promote{model_option(project)}`")
    elif tier == "pr":
        lines.append(wrapped(f"decision: every gate passed against {(evaluation.get('reference') or {}).get('why', 'no reference')}", indent="  "))
    else:
        lines.append("  decision: every gate passed (the CI tier's own model; production's is untouched)")
    if tier == "pr":
        lines.append(f"  pull-request report: {project.pr_report}")
        return lines
    report = project.evaluation_report(evaluation["model_name"], candidate["version"])
    lines.append(f"  report: {report}" if report.exists() else f"  report: not written (the {tier} tier skips it: tiers.{tier}.evaluation_report)")
    return lines


def decision_result(project: Project) -> list[str]:
    from mlcicd.core.audit import decisions

    name = project.model_name("full")
    records = [r for r in decisions(project.audit_log) if r["model_name"] == name]
    if not records:
        return [f"{project.name}: no decision recorded"]
    last = records[-1]
    versions = f"{last.get('from_version') or 'none'} -> {last.get('to_version') or 'none'}"
    return [wrapped(f"{project.name}: {last['decision']} ({versions}): {last['reason']}")]


def model_option(project: Project) -> str:
    return f" --model {project.name}" if project.is_component else ""


def table(rows: list[list], header: list[str], width: int = 110) -> str:
    """A plain-text table; the last column wraps (never cut) so whole verdicts stay readable."""
    cells = [header, *[[str(c) for c in row] for row in rows]]
    sizes = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    lines = []
    for row in cells:
        head = "  ".join(c.ljust(n) for c, n in zip(row, sizes))
        room = max(30, width - len(head) - 2)
        parts = textwrap.wrap(row[-1], width=room, break_on_hyphens=False, break_long_words=False) or [""]
        lines.append(f"{head}  {parts[0]}".rstrip())
        lines.extend(" " * (len(head) + 2) + part for part in parts[1:])
    return "\n".join(lines)
