"""Is the process that ran something still alive? For runs whose process died without a word (kill -9, the OOM
killer, a closed laptop): Dagster records their pid, but with the default run launcher, and for runs started from
the command line, nothing checks that it is still there."""

from __future__ import annotations

import psutil

CLOCK_SLACK_SECONDS = 2.0  # a process's start time is read from /proc in clock ticks; runs record theirs in seconds


def gone(pid: int, recorded_at: float) -> str | None:
    """Why the process `pid`, recorded as running at `recorded_at` (epoch seconds), is gone; None while it lives.
    A pid taken by a newer process (started after the record) counts as gone: pids are reused."""
    try:
        process = psutil.Process(pid)
        started, status = process.create_time(), process.status()
    except psutil.NoSuchProcess:
        return f"process {pid} no longer exists"
    except psutil.AccessDenied:
        return None  # someone else's process: alive, as far as this user can tell
    if started > recorded_at + CLOCK_SLACK_SECONDS:
        return f"process {pid} no longer exists (its number now belongs to a process started later)"
    if status == psutil.STATUS_ZOMBIE:
        return f"process {pid} has exited (a zombie waiting for its parent)"
    return None
