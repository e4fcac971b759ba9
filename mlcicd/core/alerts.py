"""Alerts: every notice goes to a local log (data/alerts/alerts.jsonl) and, where MLCICD_ALERT_WEBHOOK_URL
is set, is also posted there as JSON. A failed post is written to the log; it never raises."""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

WEBHOOK_ENV_VAR = "MLCICD_ALERT_WEBHOOK_URL"


def notify(log: Path, kind: str, message: str, **details) -> dict:
    """Record an alert; return it, with `webhook` saying what happened to the post ("not configured", "sent", or the error)."""
    alert = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "kind": kind, "message": message, **details}
    url = os.environ.get(WEBHOOK_ENV_VAR)
    if not url:
        alert["webhook"] = "not configured"
    else:
        try:
            request = urllib.request.Request(url, data=json.dumps(alert).encode(), headers={"Content-Type": "application/json"}, method="POST")
            with urllib.request.urlopen(request, timeout=5) as response:
                alert["webhook"] = f"sent ({response.status})"
        except Exception as exc:  # an unreachable webhook must not take the sensor down
            alert["webhook"] = f"failed: {type(exc).__name__}: {exc}"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(alert, default=str) + "\n")
    return alert
