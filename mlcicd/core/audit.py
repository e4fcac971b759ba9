"""The audit trail: one JSON line per promotion decision (promoted, refused, unchanged), append-only."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True)
class AuditRecord:
    decision: Literal["promoted", "refused", "unchanged"]
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


def append(log: Path, record: AuditRecord) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(asdict(record), default=str) + "\n")


def read(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
