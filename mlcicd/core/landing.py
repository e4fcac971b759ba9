"""Which landed files are complete and new: the pure part of landing_sensor."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlcicd.core.ingest import content_id, pending_files


@dataclass(frozen=True)
class LandedFile:
    path: Path
    content_hash: str

    @property
    def run_key(self) -> str:
        """One ingestion per (name, content): the same file seen twice, or landed twice, is one run."""
        return f"{self.path.name}:{self.content_hash[:16]}"


def scan(landing_dir: Path, seen: dict[str, list], now: float, settle_seconds: float) -> tuple[list[LandedFile], dict[str, list]]:
    """Files that are complete: last written at least `settle_seconds` ago, and not grown since the last scan.

    `seen` maps file name -> [size, mtime, sha256 or None] from the previous scan (the sensor's cursor);
    the hash is computed once per (size, mtime), not on every tick.
    """
    ready, state = [], {}
    for path in pending_files(landing_dir):
        stat = path.lstat()  # a symbolic link is never followed (ingestion quarantines it)
        before = seen.get(path.name)
        digest = before[2] if before and before[0] == stat.st_size and before[1] == stat.st_mtime else None
        settled = now - stat.st_mtime >= settle_seconds and (before is None or before[0] == stat.st_size)
        if settled:
            digest = digest or content_id(path)
            ready.append(LandedFile(path, digest))
        state[path.name] = [stat.st_size, stat.st_mtime, digest]
    return ready, state
