"""The production profile's services: PostgreSQL for the Dagster instance and for MLflow's backend store.
Credentials come only from the environment (see deploy/production/dagster.yaml)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def ensure_database(url: str) -> str:
    """Create the database a postgresql:// URL names, if missing; returns what was done (no credentials)."""
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(url.replace("postgresql+psycopg2://", "postgresql://"))
    name = parts.path.lstrip("/")
    if not name:
        raise ValueError("the PostgreSQL URL names no database")
    admin = urlunsplit(parts._replace(path="/postgres"))
    connection = psycopg2.connect(admin)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone():
                return f"database {name} exists on {parts.hostname}:{parts.port or 5432}"
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return f"created database {name} on {parts.hostname}:{parts.port or 5432}"
    finally:
        connection.close()


def drop_database(url: str) -> None:
    """Drop a database (tests clean up their own); connections to it are ended first."""
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(url.replace("postgresql+psycopg2://", "postgresql://"))
    name = parts.path.lstrip("/")
    connection = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    finally:
        connection.close()


# ---- MLflow's tracking server with its basic-auth app: only the pipeline's account may move aliases ---------------

PIPELINE_USER = "mlcicd-pipeline"


def write_auth_ini(path, database_uri: str, cache_seconds: int = 30) -> None:
    """The auth app's config (MLFLOW_AUTH_CONFIG_PATH), readable by its owner only: every account may read
    (default_permission READ); only an account with EDIT or MANAGE on a registered model may set its aliases,
    and the pipeline's account gets MANAGE on its models by creating them (provision_pipeline)."""
    import os
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = {database_uri}\n"
        "admin_username = admin\n"  # its password: MLFLOW_AUTH_ADMIN_PASSWORD, read by MLflow at the first start
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # Each request's password is checked with PBKDF2, which made a training run through the server about 3x slower;
        # a successful check is remembered this long per worker (a password changed by hand, not through the API,
        # keeps working on the other workers for at most this long).
        f"auth_cache_ttl_seconds = {int(cache_seconds)}\n"
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def mlflow_api(base: str, method: str, path: str, body: dict | None = None, account: tuple[str, str] | None = None) -> tuple[int, dict]:
    """One call to the tracking server's REST API as `account` (user, password); (HTTP status, JSON answer)."""
    import base64
    import json
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if account:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{account[0]}:{account[1]}".encode()).decode()
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base.rstrip("/") + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw or b"{}")
        except ValueError:
            return error.code, {"message": raw.decode(errors="replace")[:300]}


def provision_pipeline(base: str, admin: tuple[str, str], pipeline: tuple[str, str], model_names: list[str]) -> list[str]:
    """Create the pipeline's account (if missing) and its registered models as that account, so that it holds MANAGE on
    them and every other account only READ. A model someone else created first gets MANAGE granted to the pipeline
    and is reported. Returns what was done, in words (no passwords)."""
    done = []
    status, _ = mlflow_api(base, "GET", f"/api/2.0/mlflow/users/get?username={pipeline[0]}", account=admin)
    if status == 404:
        status, answer = mlflow_api(base, "POST", "/api/2.0/mlflow/users/create", {"username": pipeline[0], "password": pipeline[1]}, admin)
        if status != 200:
            raise RuntimeError(f"could not create the account {pipeline[0]}: HTTP {status} {answer}")
        done.append(f"created the account {pipeline[0]}")
    elif status != 200:
        raise RuntimeError(f"the admin account cannot read accounts: HTTP {status} (is MLFLOW_AUTH_ADMIN_PASSWORD right?)")
    for name in model_names:
        status, answer = mlflow_api(base, "POST", "/api/2.0/mlflow/registered-models/create", {"name": name}, pipeline)
        if status == 200:
            done.append(f"{pipeline[0]} created the registered model {name} (and manages it)")
        elif answer.get("error_code") == "RESOURCE_ALREADY_EXISTS":
            grant = {"name": name, "username": pipeline[0], "permission": "MANAGE"}
            status, answer = mlflow_api(base, "POST", "/api/2.0/mlflow/registered-models/permissions/create", grant, admin)
            if status != 200 and answer.get("error_code") != "RESOURCE_ALREADY_EXISTS":
                raise RuntimeError(f"could not grant {pipeline[0]} MANAGE on {name}: HTTP {status} {answer}")
            done.append(f"the registered model {name} existed: {pipeline[0]} manages it (check who else was granted EDIT or MANAGE)")
        else:
            raise RuntimeError(f"{pipeline[0]} could not create the registered model {name}: HTTP {status} {answer}")
    return done
