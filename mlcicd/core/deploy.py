"""Delivery to the scoring service: a blue-green deployment driven over HTTP, and the service's request log
turned into the numbers its budget and the canary are judged on."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class Step:
    name: str
    passed: bool
    detail: str


@dataclass
class DeployResult:
    version: str
    steps: list[Step] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(s.passed for s in self.steps)

    @property
    def reason(self) -> str:
        failed = [s for s in self.steps if not s.passed]
        if failed:
            return f"the deployment of version {self.version} failed at {failed[0].name}: {failed[0].detail}"
        return f"version {self.version} passed " + ", ".join(s.name for s in self.steps) + " and now answers live traffic"

    def to_dict(self) -> dict:
        return {"version": self.version, "passed": self.passed, "reason": self.reason, "steps": [asdict(s) for s in self.steps]}


def call(base_url: str, method: str, path: str, payload=None, timeout: float = 30.0, token: str | None = None) -> tuple[int, dict]:
    """One HTTP call to the service: (status, JSON body); a connection failure is status 0 with the reason. `token`: the
    admin endpoints' bearer token (serving.admin_token)."""
    data = None if payload is None else json.dumps(payload, default=str).encode()
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base_url.rstrip("/") + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"{}")
        except ValueError:
            return error.code, {"error": error.reason}
    except (urllib.error.URLError, OSError) as error:
        return 0, {"error": f"the service at {base_url} cannot be reached: {getattr(error, 'reason', error)}"}


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON records (times as ISO text, missing values as null)."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return json.loads(out.to_json(orient="records", date_format="iso"))


def score_of(prediction: dict) -> float:
    return float(prediction.get("prediction", prediction.get("probability")))


def blue_green(
    base_url: str, version: str, expected_sha256: str, sample: pd.DataFrame, expected: np.ndarray, tolerance: float, token: str | None = None,
) -> DeployResult:
    """Stage `version` beside the live one, then health, smoke and skew checks against the standby slot;
    switch only when all pass, otherwise discard it (the live version never stopped answering).
    `expected` holds batch scoring's predictions for `sample` (the score: probability or value)."""
    result = DeployResult(str(version))

    def step(name: str, passed: bool, detail: str) -> bool:
        result.steps.append(Step(name, passed, detail))
        return passed

    status, body = call(base_url, "POST", "/admin/stage", {"version": str(version)}, token=token)
    staged = f"loaded beside the live version (artifact {str(body.get('artifact_sha256'))[:12]})"
    ok = step("stage", status == 200, staged if status == 200 else f"HTTP {status}: {body.get('error')}")
    if ok:
        status, body = call(base_url, "GET", "/health?slot=standby")
        healthy = status == 200 and body.get("version") == str(version) and body.get("artifact_sha256") == expected_sha256
        if healthy:
            detail = f"version {body['version']}, artifact {body['artifact_sha256'][:12]}"
        elif status == 200:
            detail = (f"it reports version {body.get('version')} with artifact {str(body.get('artifact_sha256'))[:12]}, "
                      f"not version {version} with {expected_sha256[:12]}")
        else:
            detail = f"HTTP {status}: {body.get('error')}"
        ok = step("health", healthy, detail)
    rows = records(sample)
    if ok:
        status, body = call(base_url, "POST", "/predict?slot=standby", {"records": rows[:1]})
        answered = "answered one request" if status == 200 else f"HTTP {status}: {body.get('error')}"
        ok = step("smoke", status == 200 and len(body.get("predictions", [])) == 1, answered)
    if ok:
        status, body = call(base_url, "POST", "/predict?slot=standby", {"records": rows})
        if status != 200:
            ok = step("skew", False, f"HTTP {status}: {body.get('error')} {body.get('problems', '')}")
        else:
            served = np.array([score_of(p) for p in body["predictions"]])
            gap = float(np.max(np.abs(served - np.asarray(expected, dtype=float)))) if len(served) == len(expected) else float("inf")
            ok = step("skew", gap <= tolerance, f"largest difference from batch scoring on {len(rows)} rows: {gap:.3g} (allowed {tolerance:g})")
    if ok:
        status, body = call(base_url, "POST", "/admin/switch", {}, token=token)
        step("switch", status == 200, f"live: {body.get('previous')} -> {body.get('live')}" if status == 200 else f"HTTP {status}: {body.get('error')}")
    if not result.passed:
        call(base_url, "POST", "/admin/discard", {}, token=token)
    return result


# ---- the request log --------------------------------------------------------------------------------


def read_requests(log_path: Path, since: datetime) -> pd.DataFrame:
    columns = ["at", "slot", "version", "rows", "latency_ms", "status", "scores"]
    if not log_path.exists():
        return pd.DataFrame(columns=columns)
    frame = pd.read_json(log_path, lines=True, convert_dates=False)
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame[frame["at"] >= since].reset_index(drop=True)


def window_start(minutes: float, now: datetime | None = None) -> datetime:
    return (now or datetime.now(timezone.utc)) - timedelta(minutes=minutes)


def summarize(requests: pd.DataFrame) -> dict[str, dict]:
    """Per slot: requests, rows, server-error rate, client-error rate, latency percentiles, the version(s)
    and the predictions logged (for distribution comparisons)."""
    out = {}
    for slot, group in requests.groupby("slot"):
        latency = group["latency_ms"].astype(float).to_numpy()
        out[str(slot)] = {
            "requests": int(len(group)),
            "rows": int(group["rows"].sum()),
            "versions": sorted({str(v) for v in group["version"].dropna()}),
            "server_error_rate": float((group["status"] >= 500).mean()),
            "client_error_rate": float(((group["status"] >= 400) & (group["status"] < 500)).mean()),
            "p50_ms": float(np.percentile(latency, 50)),
            "p95_ms": float(np.percentile(latency, 95)),
            "p99_ms": float(np.percentile(latency, 99)),
            "scores": [s for scores in group["scores"] for s in scores],
        }
    return out
