"""`mlcicd serve`: the champion answering HTTP requests on 127.0.0.1, through the same feature code as
training and batch scoring (`mlcicd.core.train.predict` with the model's own FeatureState).

Slots: `live` answers traffic; `standby` is where a new version is loaded beside it for a blue-green
deployment (health, smoke and skew checks go to `?slot=standby`), then `/admin/switch` makes it live in one
assignment, so no request fails during a swap; `canary` (optional) answers `serving.canary_share` of the
requests. Every request is logged (slot, version, latency, status, a few predictions) to
data/serving/requests.jsonl, which serving_metrics reads.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from datetime import datetime, timezone
from typing import Any

import numpy as np

from mlcicd import faults
from mlcicd.core.tasks import task_of
from mlcicd.core.requests import RequestError, answer_records, check_rows, parse_body, read_json, row_count
from mlcicd.project import Project

SLOTS = ("live", "standby", "canary")
TOKEN_ENV = "MLCICD_SERVE_TOKEN"  # /admin/* always needs "Authorization: Bearer <token>": this one, else the project's token file


def token_path(project: Project) -> Path:
    return project.data_dir / "serving" / "admin.token"


def admin_token(project: Project, create: bool = False) -> tuple[str | None, bool]:
    """The admin endpoints' bearer token: $MLCICD_SERVE_TOKEN, else the project's token file (readable by its owner
    only), which `create` makes at the service's first start. Returns (token, whether it was just created)."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV], False
    path = token_path(project)
    if path.exists():
        return path.read_text().strip(), False
    if not create:
        return None, False
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    return token, True


DRAIN_FACTOR = 10  # an oversized body is read (and dropped) up to this multiple of serving.max_body_mb before the 413
INLINE_BODY_BYTES = 16 * 1024  # a /predict body up to this size (about 50 of the simulator's rows) is answered without a thread hop
LOGGED_PREDICTIONS = 20  # per request, for comparing prediction distributions
REQUEST_ID = re.compile(r"[0-9a-f]{32}")


def sticky_share(key) -> float:
    """Where a request key falls in [0, 1), the same in every process and release (A/B assignment)."""
    digest = hashlib.sha256(str(key).encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Slot:
    version: str
    booster: Any
    features: Any
    sha256: str
    loaded_at: float


class Metrics:
    """The service's Prometheus metrics (GET /metrics), in a registry of its own: requests, errors and a latency
    histogram per model version and slot, and the live version as a gauge."""

    LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

    def __init__(self, server: "ModelServer"):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        labels = ("model", "version", "slot")
        self.requests = Counter("mlcicd_requests", "Prediction requests answered, by HTTP status.", (*labels, "status"), registry=self.registry)
        self.errors = Counter("mlcicd_request_errors", "Prediction requests answered with an error: client (4xx) or server (5xx).",
                              (*labels, "kind"), registry=self.registry)
        self.rows = Counter("mlcicd_predicted_rows", "Rows scored.", labels, registry=self.registry)
        self.latency = Histogram("mlcicd_request_latency_seconds", "Time to answer a prediction request.", labels,
                                 buckets=self.LATENCY_BUCKETS, registry=self.registry)
        live = Gauge("mlcicd_live_version", "The registered version in the live slot (0: none).", ("model",), registry=self.registry)
        live.labels(server.model_name).set_function(lambda: float(server.slots["live"].version) if server.slots["live"] else 0.0)

    def observe(self, model: str, slot: str, version: str | None, rows: int, seconds: float, status: int) -> None:
        labels = (model, version or "none", slot)
        self.requests.labels(*labels, str(status)).inc()
        if status >= 400:
            self.errors.labels(*labels, "server" if status >= 500 else "client").inc()
        self.rows.labels(*labels).inc(rows)
        self.latency.labels(*labels).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class ModelServer:
    """The models a service holds and how a request is answered; the HTTP layer is `app()`."""

    def __init__(self, project: Project):
        self.project = project
        self.model_name = project.model_name("full")
        self.contract = project.contract.without(project.config.dataset.target)
        self.canary_share = project.config.serving.canary_share
        self.slots: dict[str, Slot | None] = dict.fromkeys(SLOTS)
        self.started = time.time()
        self.log_path = project.data_dir / "serving" / "requests.jsonl"
        self.feedback_path = project.data_dir / "serving" / "feedback.jsonl"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_lock = threading.Lock()
        self._admin_lock = threading.Lock()
        self.metrics = Metrics(self)

    # ---- models ---------------------------------------------------------------------------------

    def load(self, version: str, audited_sha256: str | None = None) -> Slot:
        from mlcicd.mlflow_registry import HASH_TAG, client, load_model

        booster, features = load_model(self.project, self.model_name, version, audited_sha256)  # refuses a tampered artifact
        sha = (client(self.project).get_model_version(self.model_name, version).tags or {})[HASH_TAG]
        return Slot(str(version), booster, features, sha, time.time())

    def load_champion(self, fallback: bool = False) -> str:
        """Load the champion into the live slot. When its files fail their check: with `fallback`, the newest earlier
        champion in the audit trail whose files still match (returned: what happened, in words); else ServingError."""
        from mlcicd.core.audit import audited_artifact, moves, unaudited
        from mlcicd.mlflow_registry import CHAMPION, version_by_alias

        champion = version_by_alias(self.project, self.model_name, CHAMPION)
        if champion is None:
            return f"no champion of {self.model_name} yet: /predict answers 503 until one is promoted"
        version = str(champion.version)
        moved_outside = unaudited(self.project.audit_log, self.model_name, version)
        if moved_outside:
            reason = f"champion version {version} cannot be served: {moved_outside}"
        else:
            try:
                self.slots["live"] = self.load(version, audited_artifact(self.project.audit_log, self.model_name, version))
                return f"serving champion version {version} of {self.model_name}"
            except Exception as exc:  # noqa: BLE001 - said in words, and the service never serves files that do not verify
                reason = f"champion version {version} of {self.model_name} cannot be served: {exc}"
        if not fallback:
            raise ServingError(reason + " (roll back with `make rollback`, or set serving.fallback_to_last_good: true)")
        earlier = [r["to_version"] for r in reversed(moves(self.project.audit_log, self.model_name)) if r["to_version"] != version]
        for candidate in dict.fromkeys(earlier):
            try:
                self.slots["live"] = self.load(str(candidate), audited_artifact(self.project.audit_log, self.model_name, str(candidate)))
            except Exception:  # noqa: BLE001, S112 - this one does not verify either: try the one before
                continue
            return f"{reason}; serving version {candidate} instead, the newest earlier champion whose files match (serving.fallback_to_last_good)"
        raise ServingError(reason + "; no earlier champion in the audit trail has files that match either")

    def stage(self, version: str) -> Slot:
        with self._admin_lock:
            self.slots["standby"] = self.load(version)
            return self.slots["standby"]

    def switch(self) -> tuple[str | None, str]:
        """standby becomes live in one assignment; the old live model keeps answering requests already in flight."""
        with self._admin_lock:
            standby = self.slots["standby"]
            if standby is None:
                raise RequestError(409, "nothing is staged: POST /admin/stage first")
            previous = self.slots["live"]
            self.slots["live"], self.slots["standby"] = standby, None
            return (previous.version if previous else None), standby.version

    def discard(self) -> None:
        with self._admin_lock:
            self.slots["standby"] = None

    def set_canary(self, version: str | None, share: float | None) -> None:
        with self._admin_lock:
            self.slots["canary"] = self.load(version) if version else None
            if share is not None:
                self.canary_share = share

    # ---- requests -------------------------------------------------------------------------------

    def choose(self, requested: str | None, columns=None) -> str:
        """The slot that answers: the one asked for; else, with a canary, `canary_share` of the requests, chosen at random or
        (A/B mode, serving.canary.ab.key_field) by a hash of the first row's key, so a caller always meets the same version."""
        if requested:
            if requested not in SLOTS:
                raise RequestError(400, f"unknown slot '{requested}'; slots: {', '.join(SLOTS)}")
            return requested
        if self.slots["canary"] is None or self.canary_share <= 0:
            return "live"
        key = self.project.config.serving.canary.ab.key_field
        if key and columns is not None and key in columns and len(columns[key]):
            return "canary" if sticky_share(columns[key][0]) < self.canary_share else "live"
        return "canary" if random.random() < self.canary_share else "live"

    def predict(self, body: bytes, content_type: str, requested_slot: str | None) -> dict:
        from mlcicd.core.scoring import decisions
        from mlcicd.core.train import predict

        start = time.perf_counter()
        request_id = uuid.uuid4().hex
        slot_name, slot, columns = "live", None, None
        status, rows, scores, disagreement, answered = 200, 0, [], None, None
        try:
            try:
                columns = parse_body(body, content_type)
            finally:
                slot_name = self.choose(requested_slot, columns)
                slot = self.slots[slot_name]
            if slot is None:
                raise RequestError(503, f"no model in the {slot_name} slot (is there a champion?)")
            rows = row_count(columns)
            checked = check_rows(columns, self.contract, ignore=(self.project.config.dataset.target,))
            predictions = predict(slot.booster, slot.features, checked)
            if slot_name == "standby" and faults.active("serve.standby_skew"):
                predictions = predictions * 0.99
            outputs = decisions(slot.features, predictions)
            kind = task_of(slot.features.task)
            scores = outputs[kind.score_key][:LOGGED_PREDICTIONS].tolist()
            records = answer_records(outputs)
            answered = time.perf_counter()
            live = self.slots["live"]
            if slot_name == "canary" and live is not None and rows:  # the champion's answer on the same rows, after timing
                theirs = decisions(live.features, predict(live.booster, live.features, checked))
                disagreement = float(np.mean(kind.disagree(theirs, outputs, theirs[kind.score_key], outputs[kind.score_key])))
            return {"model": self.model_name, "version": slot.version, "slot": slot_name, "request_id": request_id, "predictions": records}
        except RequestError as error:
            status = error.status
            raise
        except Exception:
            status = 500
            raise
        finally:
            seconds = (answered or time.perf_counter()) - start
            self.log(slot_name, slot.version if slot else None, rows, seconds * 1000, status, scores, request_id, disagreement)

    def log(self, slot: str, version: str | None, rows: int, latency_ms: float, status: int, scores: list, request_id: str | None = None,
            disagreement: float | None = None) -> None:
        self.metrics.observe(self.model_name, slot, version, rows, latency_ms / 1000, status)
        record = {
            "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "slot": slot, "version": version,
            "rows": rows, "latency_ms": round(latency_ms, 3), "status": status, "scores": [round(float(s), 6) for s in scores],
            "request_id": request_id, "disagreement": disagreement,
        }
        with self._log_lock, open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def feedback(self, body: bytes) -> dict:
        """A business outcome for an answered request (A/B mode): {"request_id": "...", "outcome": <number>}, appended to
        data/serving/feedback.jsonl, which serving_metrics joins to the request log."""
        args = read_json(body or b"{}")
        if not isinstance(args, dict):
            raise RequestError(400, 'expected a JSON object {"request_id": "<from /predict>", "outcome": <number>}')
        request_id, outcome = args.get("request_id"), args.get("outcome")
        if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
            raise RequestError(400, "request_id must be the request_id a /predict answer gave (32 hexadecimal characters)")
        if isinstance(outcome, bool) or not isinstance(outcome, int | float) or not math.isfinite(outcome):
            raise RequestError(400, "outcome must be a finite number (for example 1 for a conversion, 0 for none)")
        record = {"at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "request_id": request_id, "outcome": float(outcome)}
        with self._log_lock, open(self.feedback_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        return {"recorded": True, "request_id": request_id}

    def health(self, slot_name: str) -> dict:
        slot = self.slots.get(slot_name)
        if slot is None:
            raise RequestError(503, f"no model in the {slot_name} slot")
        canary = self.slots["canary"]
        return {
            "status": "ok", "slot": slot_name, "model": self.model_name, "version": slot.version,
            "artifact_sha256": slot.sha256, "task": slot.features.task, "uptime_seconds": round(time.time() - self.started, 3),
            "threshold": slot.features.threshold if task_of(slot.features.task).thresholded else None,
            "canary": {"version": canary.version, "share": self.canary_share} if canary else None,
        }


def app(server: ModelServer):
    """The HTTP layer (Starlette): JSON in, JSON out; a bad request is a 4xx naming the problem, never a 500."""
    import asyncio

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    token, _ = admin_token(server.project, create=True)
    settings = server.project.config.serving
    max_bytes = int(settings.max_body_mb * 1024 * 1024)

    class Answer(JSONResponse):
        """JSON with every non-ASCII character escaped: an answer that quotes the request can always be written."""

        def render(self, content) -> bytes:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")

    async def read_body(request: Request) -> bytes:
        """The body, kept no further than max_body_mb: a larger one is refused (413) before anything parses it. The rest of
        an oversized body is read and dropped (up to DRAIN_FACTOR times the limit) so that the client can read the answer
        instead of seeing its connection reset."""
        too_large = RequestError(413, f"the body is larger than {settings.max_body_mb:g} MB (serving.max_body_mb): send fewer rows per request")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                chunks.clear()
                if size > DRAIN_FACTOR * max_bytes:
                    break
            else:
                chunks.append(chunk)
        if size > max_bytes:
            raise too_large
        return b"".join(chunks)

    def guarded(handler, admin: bool = False, inline: bool = False):
        """`inline`: a body of at most INLINE_BODY_BYTES is answered on the event loop, where it takes a fraction of a
        millisecond; handing it to a worker thread would cost more than its work. Larger bodies, and every other endpoint,
        go to a worker thread under serving.request_timeout_seconds."""

        async def endpoint(request: Request):
            if admin and not secrets.compare_digest(request.headers.get("authorization", ""), f"Bearer {token}"):
                return Answer({"error": "admin endpoints need the bearer token (MLCICD_SERVE_TOKEN or data/serving/admin.token)"},
                              status_code=401)
            try:
                body = await read_body(request)
                if inline and len(body) <= INLINE_BODY_BYTES:
                    return Answer(handler(request, body))
                answer = await asyncio.wait_for(run_in_threadpool(handler, request, body), timeout=settings.request_timeout_seconds)
                return Answer(answer)
            except RequestError as error:
                return Answer(error.to_dict(), status_code=error.status)
            except TimeoutError:
                return Answer({"error": f"the request was not answered within {settings.request_timeout_seconds:g} s "
                                        "(serving.request_timeout_seconds): send fewer rows per request"}, status_code=503)

        return endpoint

    def admin_args(body: bytes) -> dict:
        args = read_json(body or b"{}")
        if not isinstance(args, dict):
            raise RequestError(400, "expected a JSON object")
        return args

    def stage(request, body):
        version = str(admin_args(body).get("version") or "")
        if not version:
            raise RequestError(400, 'expected {"version": "<registered version>"}')
        try:
            slot = server.stage(version)
        except Exception as exc:  # noqa: BLE001 - an unknown or tampered version is the caller's problem to see
            raise RequestError(409, f"version {version} cannot be staged: {type(exc).__name__}: {exc}") from None
        return {"staged": slot.version, "artifact_sha256": slot.sha256}

    def switch(request, body):
        previous, now = server.switch()
        return {"previous": previous, "live": now}

    def discard(request, body):
        server.discard()
        return {"standby": None}

    def canary(request, body):
        args = admin_args(body)
        share = args.get("share")
        if share is not None and not (isinstance(share, int | float) and 0 <= share <= 1):
            raise RequestError(400, "share must be a number between 0 and 1")
        try:
            server.set_canary(str(args["version"]) if args.get("version") else None, share)
        except Exception as exc:  # noqa: BLE001
            raise RequestError(409, f"canary cannot be set: {type(exc).__name__}: {exc}") from None
        return {"canary": server.slots["canary"].version if server.slots["canary"] else None, "share": server.canary_share}

    async def metrics(request: Request):
        body, content_type = server.metrics.exposition()
        return Response(body, media_type=content_type)

    routes = [
        Route("/metrics", metrics, methods=["GET"]),
        Route("/health", guarded(lambda request, body: server.health(request.query_params.get("slot", "live"))), methods=["GET"]),
        Route("/predict", guarded(lambda request, body: server.predict(body, request.headers.get("content-type", ""), request.query_params.get("slot")),
                                       inline=True), methods=["POST"]),
        Route("/feedback", guarded(lambda request, body: server.feedback(body)), methods=["POST"]),
        Route("/admin/stage", guarded(stage, admin=True), methods=["POST"]),
        Route("/admin/switch", guarded(switch, admin=True), methods=["POST"]),
        Route("/admin/discard", guarded(discard, admin=True), methods=["POST"]),
        Route("/admin/canary", guarded(canary, admin=True), methods=["POST"]),
    ]
    return Starlette(routes=routes)


class ServingError(RuntimeError):
    """The service cannot start as asked; the message says why and what to do."""


def serve(project: Project, host: str, port: int, on_start=print) -> None:
    import uvicorn

    server = ModelServer(project)
    on_start(server.load_champion(fallback=project.config.serving.fallback_to_last_good))
    _, created = admin_token(project, create=True)
    if created:
        on_start(f"the admin endpoints' token is in {token_path(project)} (readable by you only); set {TOKEN_ENV} to choose your own")
    pid_file = project.data_dir / "serving" / "server.pid"
    pid_file.write_text(str(os.getpid()))
    try:
        uvicorn.run(app(server), host=host, port=port, log_level="warning", access_log=False)
    finally:
        pid_file.unlink(missing_ok=True)
