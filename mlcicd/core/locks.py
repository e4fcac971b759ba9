"""Advisory file locks: one holder at a time across threads and processes on one machine (ingestion of a
file, a promotion decision). Across machines the run queue's lanes do the same (dagster.yaml)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(lock_file: Path):
    """One holder at a time, across threads and processes (an advisory lock on `lock_file`)."""
    import fcntl

    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
