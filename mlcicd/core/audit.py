"""The audit trail: one JSON line per promotion decision (promoted, refused, unchanged), append-only.

A decision that moves the champion alias is written twice: an `intent` record before the alias moves and a `done`
record after it. A run that dies in between leaves an intent without a done; the next decision reconciles it (`done` if
the alias did move, `abandoned` if it did not), so the trail never says "promoted" for a move that never happened, and
a re-run never lists the same promotion twice. Decisions that move nothing are written once, as `done`."""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal
from uuid import uuid4


@dataclass(frozen=True)
class AuditRecord:
    decision: Literal["promoted", "overridden", "rolled_back", "refused", "unchanged"]
    model_name: str
    from_version: str | None
    to_version: str | None
    reason: str
    triggered_by: str
    dagster_run_id: str
    dataset_hash: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    gates: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    phase: Literal["intent", "done", "abandoned"] = "done"
    decision_id: str = field(default_factory=lambda: uuid4().hex)
    artifact_sha256: str | None = None  # the moved-to version's files, as verified at the move: the registry's tag may be rewritten
    changes: dict[str, list[str]] = field(default_factory=dict)  # what changed since the previous champion, per axis (core/changes.py)

    def as_phase(self, phase: str, reason: str | None = None) -> "AuditRecord":
        """The same decision, recorded again at a later phase."""
        from dataclasses import replace

        return replace(self, phase=phase, reason=reason or self.reason, at=datetime.now(timezone.utc).isoformat(timespec="seconds"))


GENESIS = "0" * 64


def _line_hash(line: str) -> str:
    import hashlib

    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def append(log: Path, record: AuditRecord) -> None:
    """Append one record, chained: it holds the SHA-256 of the line before it, so an edit anywhere shows (verify)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    previous = _line_hash(lines[-1]) if lines else GENESIS
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({**asdict(record), "prev_hash": previous}, default=str) + "\n")


def verify(log: Path) -> list[str]:
    """What is wrong with the chain (empty when every record holds the hash of the one before it). Records written
    before the trail was chained carry no link; one after a chained record must."""
    if not log.exists():
        return []
    problems, previous, chained = [], None, False
    for number, line in enumerate(log.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            recorded = json.loads(line).get("prev_hash")
        except (ValueError, AttributeError):
            problems.append(f"line {number} is not a JSON record")
        else:
            if recorded is None:
                if chained:
                    problems.append(f"line {number} is not linked to the record before it (inserted?)")
            else:
                chained = True
                if recorded != (previous or GENESIS):
                    problems.append(f"line {number} does not hold the SHA-256 of line {number - 1}: line {number - 1} was edited or "
                                    "removed, or this one was inserted")
        previous = _line_hash(line)
    return problems


def read(log: Path) -> list[dict]:
    """Every record, every phase (older records, written before phases existed, count as done)."""
    if not log.exists():
        return []
    return [{"phase": "done", **json.loads(line)} for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]


def decisions(log: Path) -> list[dict]:
    """What happened: done and abandoned records (an intent is not a decision until it is done)."""
    return [r for r in read(log) if r["phase"] != "intent"]


def unfinished(log: Path, model_name: str) -> list[dict]:
    """Intents of `model_name` with neither a done nor an abandoned record: a run died while moving the alias."""
    records = [r for r in read(log) if r["model_name"] == model_name]
    closed = {r.get("decision_id") for r in records if r["phase"] != "intent"}
    return [r for r in records if r["phase"] == "intent" and r.get("decision_id") not in closed]


MOVES = ("promoted", "overridden", "rolled_back")  # the decisions that move the champion alias


def moves(log: Path, model_name: str) -> list[dict]:
    """The completed decisions that moved `model_name`'s champion alias, oldest first."""
    return [r for r in read(log) if r["model_name"] == model_name and r["phase"] == "done" and r["decision"] in MOVES]


def audited_artifact(log: Path, model_name: str, version: str) -> str | None:
    """The SHA-256 of `version`'s files as verified when the trail last moved the alias to it (None: never recorded)."""
    hashes = [r["artifact_sha256"] for r in moves(log, model_name) if str(r["to_version"]) == str(version) and r.get("artifact_sha256")]
    return hashes[-1] if hashes else None


def audited_champion(log: Path, model_name: str) -> str | None:
    """The version the audit trail last moved `model_name`'s champion alias to (None: it never moved one)."""
    done = moves(log, model_name)
    return str(done[-1]["to_version"]) if done else None


def unaudited(log: Path, model_name: str, alias_version: str | None) -> str | None:
    """Why the champion alias cannot be trusted (it points where no audited decision moved it), or None."""
    if alias_version is None:
        return None
    audited = audited_champion(log, model_name)
    if audited == str(alias_version):
        return None
    where = f"the audit trail's last move was to version {audited}" if audited else "the audit trail records no move at all"
    return (f"the champion alias of {model_name} points at version {alias_version}, but {where}: it was moved outside the pipeline "
            "(no record says who or why)")


def actor(dagster_user: str | None = None) -> str:
    """A known identity for whoever acts: the Dagster UI's user, else CI's actor, else the operating system's user
    (never "unknown": a process always runs as some uid)."""
    if dagster_user:
        return f"Dagster user {dagster_user}"
    ci_actor = os.environ.get("GITHUB_ACTOR") or os.environ.get("GITLAB_USER_LOGIN") or os.environ.get("BUILDKITE_BUILD_CREATOR")
    if ci_actor:
        return f"CI actor {ci_actor}"
    if os.environ.get("CI"):
        return f"CI run {os.environ.get('GITHUB_RUN_ID') or os.environ.get('CI_PIPELINE_ID') or '(no id)'}"
    try:
        return f"OS user {getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a container)
        return f"OS uid {os.getuid()}"
