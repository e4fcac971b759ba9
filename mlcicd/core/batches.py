"""Taking an accepted batch out of the store, and putting it back: moved, never deleted, and audited.

When a gate names a batch as the problem (label_quality: "the newest labels disagree with the champion"; a slice broken
in the newest data), the batch has already been accepted: its rows passed the contract. `mlcicd batches remove` moves
it to data/removed/ with a record of who removed it and why; training no longer sees it (its dataset hash changes, so
the next candidate is evaluated without it). `mlcicd batches restore` moves it back.

Order of moves (a crash in between never leaves half a batch counting): the JSON record makes a batch count, so
removal moves the record first and restoring moves it last.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mlcicd.core.audit import actor
from mlcicd.core.ingest import AcceptedBatch, list_accepted
from mlcicd.core.locks import exclusive


class BatchNotFound(ValueError):
    """No batch (or more than one) matches the id given; the message lists what there is."""


@dataclass(frozen=True)
class BatchChange:
    action: str  # removed | restored
    batch_id: str
    source: str
    rows: int
    reason: str
    by: str
    at: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def find(batches: list[AcceptedBatch], batch_id: str, where: str) -> AcceptedBatch:
    """The one batch whose id starts with `batch_id` (or whose source file name is `batch_id`)."""
    matches = [b for b in batches if b.batch_id.startswith(batch_id) or b.source == batch_id] if batch_id else []
    if len(matches) != 1:
        known = ", ".join(f"{b.batch_id} ({b.source})" for b in batches[-10:]) or "none"
        count = "no batch" if not matches else f"{len(matches)} batches"
        raise BatchNotFound(f"{count} in {where} match '{batch_id}'; the newest there: {known}")
    return matches[0]


def _move(batch: AcceptedBatch, source_dir: Path, target_dir: Path, record_first: bool) -> None:
    target_dir.mkdir(parents=True, exist_ok=True)
    files = [f"{batch.batch_id}.json", f"{batch.batch_id}.parquet"]
    for name in files if record_first else reversed(files):
        shutil.move(str(source_dir / name), str(target_dir / name))


def _log(audit_log: Path, change: BatchChange) -> None:
    audit_log.parent.mkdir(parents=True, exist_ok=True)
    with open(audit_log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(change.to_dict()) + "\n")


def remove(accepted_dir: Path, removed_dir: Path, audit_log: Path, batch_id: str, reason: str) -> BatchChange:
    """Move an accepted batch to `removed_dir`; training stops seeing it. Needs a reason (it is audited)."""
    if len(reason.strip()) < 10:
        raise ValueError("say why the batch is removed (at least 10 characters); it goes into the audit trail")
    return _change("removed", accepted_dir, removed_dir, accepted_dir, audit_log, batch_id, reason)


def restore(accepted_dir: Path, removed_dir: Path, audit_log: Path, batch_id: str, reason: str = "") -> BatchChange:
    """Move a removed batch back into the accepted store, in its original place in the arrival order."""
    return _change("restored", removed_dir, accepted_dir, accepted_dir, audit_log, batch_id, reason)


def _change(action: str, source: Path, target: Path, accepted_dir: Path, audit_log: Path, batch_id: str, reason: str) -> BatchChange:
    """One batch from `source` to `target` under the ingestion lock, audited. Leaving the accepted store, the record
    moves first (the batch stops counting); entering it, the record moves last (the batch counts once whole)."""
    with exclusive(accepted_dir / ".ingest.lock"):
        batch = find(list_accepted(source), batch_id, str(source))
        _move(batch, source, target, record_first=source == accepted_dir)
        change = BatchChange(action, batch.batch_id, batch.source, batch.rows, reason.strip(), actor(), _now())
        _log(audit_log, change)
    return change


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
