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
