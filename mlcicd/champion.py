"""The one place that moves the `champion` alias, and the one place that writes a decision's audit record.

Promotion (promotion_job), rollback (rollback_job, `mlcicd rollback`) and a failed deployment's revert all decide
elsewhere and call `record` here: a decision that moves the alias is written as an `intent`, the alias moves (with its
tags on the version), then `done`; a decision that does not move it is written once. `reconcile` closes the intent of a
run that died between the two, before the next decision.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from mlcicd.core.audit import AuditRecord, append, unfinished
from mlcicd.faults import kill_point
from mlcicd.project import Project


def one_decision_at_a_time(proj: Project) -> AbstractContextManager:
    """Held around every decision, whatever started it (a schedule and a sensor together, a person and CI): the second
    reads the registry only after the first has moved the alias and written its record."""
    from mlcicd.core.locks import exclusive

    return exclusive(proj.data_dir / ".promotion.lock")


def compare(proj: Project, before: dict | None, after: dict) -> dict[str, list[str]]:
    """What changed from one version's provenance to another's, per axis (data, code, settings), with the files git
    says differ between their commits."""
    from mlcicd.core.changes import what_changed
    from mlcicd.project import changed_files

    return what_changed(before, after, changed_files(proj.root, (before or {}).get("git_commit"), after.get("git_commit")))


def changes_between(proj: Project, model_name: str, from_version: str | None, to_version: str | None) -> dict[str, list[str]]:
    """What changed from the champion to the version that replaces it, per axis (data, code, settings)."""
    from mlcicd.core.changes import AXES
    from mlcicd.mlflow_registry import load_provenance

    if to_version is None or to_version == from_version:
        return {}
    if from_version is None:
        return {axis: ["the first champion: nothing to compare with"] for axis in AXES}
    after = load_provenance(proj, model_name, to_version)
    if after is None:
        return {axis: [f"version {to_version} has no recorded provenance (trained before it was kept)"] for axis in AXES}
    return compare(proj, load_provenance(proj, model_name, from_version), after)


def record(proj: Project, decision: AuditRecord, moves_alias: bool, tags: dict[str, str] | None = None) -> None:
    """Audit `decision`; when it moves the alias, move `champion` to `decision.to_version` between intent and done."""
    from mlcicd.mlflow_registry import move_champion

    if not moves_alias:
        append(proj.audit_log, decision)
        return
    append(proj.audit_log, decision.as_phase("intent"))
    kill_point("promotion.after_audit")
    move_champion(proj, decision.model_name, str(decision.to_version), tags=tags or {})
    append(proj.audit_log, decision.as_phase("done"))


def reconcile(proj: Project, name: str, current_version: str | None) -> None:
    """Close every intent a dead run left: done if the alias did move to its version, abandoned if it did not."""
    for intent in unfinished(proj.audit_log, name):
        decision = AuditRecord(**{k: v for k, v in intent.items() if k in AuditRecord.__dataclass_fields__})
        if current_version is not None and intent["to_version"] == current_version:
            append(proj.audit_log, decision.as_phase("done", intent["reason"] + " (its run stopped after the alias moved; completed on the next run)"))
        else:
            append(proj.audit_log, decision.as_phase(
                "abandoned", f"interrupted: the run stopped before the alias moved, so version {current_version or 'none'} stayed the champion "
                f"(it was to be version {intent['to_version']}: {intent['reason']})"))
