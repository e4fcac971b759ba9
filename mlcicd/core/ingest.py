"""Ingestion: a landed file is either accepted whole into the Parquet store or quarantined with a report.

Guarantees:
- nothing is deleted: an accepted file is moved to data/archive/, a rejected one to data/quarantine/
  next to a report (JSON for machines, text for people);
- nothing is half-ingested: the accepted Parquet file is written under a temporary name and renamed,
  and its JSON record (written the same way, last) is what makes it count;
- ingesting the same content again changes nothing: batches are named by the SHA-256 of the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import pandas as pd

from mlcicd.core.contract import Contract, ContractResult, validate
from mlcicd.core.locks import exclusive
from mlcicd.core.tables import remember
from mlcicd.faults import kill_point

READERS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


class BatchReadError(ValueError):
    """A landed file could not be read as a table; the message names the file and the cause."""


@dataclass(frozen=True)
class BatchVerdict:
    source: str
    content_hash: str
    status: Literal["accepted", "quarantined", "duplicate"]
    rows: int
    location: str
    problems: list[str] = field(default_factory=list)
    unusual: list[str] = field(default_factory=list)  # soft expectations the accepted batch breaks (reported as drift)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class AcceptedBatch:
    batch_id: str
    sequence: int
    source: str
    content_hash: str
    rows: int
    min_time: str | None
    max_time: str | None
    ingested_at: str
    path: Path
    unusual: list[dict] = field(default_factory=list)  # soft expectations broken (contract.unusual); monitoring reads them
    rows_hash: str | None = None  # the rows themselves (rows_hash): the same rows under another name or format are a duplicate

    def to_record(self) -> dict:
        record = asdict(self)
        record.pop("path")
        return record


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_in_progress(path: Path) -> bool:
    """A name a writer uses while it writes (hidden, or .part / .tmp): left alone until it is renamed, or abandoned."""
    return path.name.startswith(".") or path.suffix in (".part", ".tmp")


def is_ready(path: Path) -> bool:
    """A landed file to ingest: a regular file, or a symbolic link (quarantined, never followed); not a folder, not a
    file still being written."""
    return (path.is_symlink() or path.is_file()) and not is_in_progress(path)


def pending_files(landing_dir: Path) -> list[Path]:
    if not landing_dir.is_dir():
        return []
    return sorted(p for p in landing_dir.iterdir() if is_ready(p))


def abandoned_files(landing_dir: Path, now: float, older_than_seconds: float) -> list[Path]:
    """Files with a writer's name (hidden, .part, .tmp) that nobody has touched for `older_than_seconds`: abandoned
    partial writes, which would otherwise stay in the landing folder forever with no report."""
    if not landing_dir.is_dir():
        return []
    return sorted(
        p for p in landing_dir.iterdir()
        if is_in_progress(p) and (p.is_symlink() or p.is_file()) and now - p.lstat().st_mtime >= older_than_seconds
    )


def shown(name: str) -> str:
    """A file name as it may be printed (logs, reports): control characters escaped, so a newline in a name never
    writes a line of its own."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


def content_id(path: Path) -> str:
    """The SHA-256 of a file's bytes; of a symbolic link, of the link itself (what it points at is never read)."""
    if path.is_symlink():
        return hashlib.sha256(b"symlink:" + os.fsencode(os.readlink(path))).hexdigest()
    return file_sha256(path)


def read_batch(path: Path) -> pd.DataFrame:
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise BatchReadError(f"{shown(path.name)}: unsupported file type '{path.suffix}' (expected .parquet or .csv)")
    if path.stat().st_size == 0:
        raise BatchReadError(f"{shown(path.name)}: the file is empty (0 bytes)")
    try:
        frame = pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path)
    except Exception as exc:  # any reader failure is a property of the file, reported as such
        raise BatchReadError(f"{shown(path.name)}: cannot be read as {kind}{_looks_like(path)}: {type(exc).__name__}: {exc}") from None
    if kind == "csv" and len(frame.columns) == 1:
        header = str(frame.columns[0])
        for separator, word in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if separator in header:
                raise BatchReadError(f"{shown(path.name)}: its columns are separated by {word}, not commas (the header is "
                                     f"{shown(header[:80])!r}): save it as comma-separated CSV")
    return frame


def _looks_like(path: Path) -> str:
    """What a file that does not read seems to be, from its first bytes (said in the report)."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:2] == b"\x1f\x8b":
        return " (it is gzip-compressed: decompress it, or land it as .parquet)"
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return " (it is UTF-16 encoded: save it as UTF-8)"
    if head[:4] == b"PAR1" and path.suffix.lower() == ".csv":
        return " (it is a Parquet file: name it .parquet)"
    return ""


def atomic_write(path: Path, write) -> None:
    """`write(tmp)` to a hidden temporary name beside `path`, then rename: readers see all of it or nothing."""
    partial = path.with_name(f".{path.name}.partial")
    write(partial)
    kill_point("atomic_write.before_rename")
    os.replace(partial, path)


MAX_NAME_BYTES = 120  # room for ".report.json" and a writer's ".partial" within any file system's 255-byte limit


def destination(source: Path, folder: Path, content_hash: str) -> Path:
    """Where a file goes in a folder without overwriting anything already there: a bare name (a file is never placed
    outside `folder`), printable, and short enough for its report's name; a long name is cut and keeps a hash."""
    name = "".join(c if c.isprintable() and c not in "/\\" else "_" for c in Path(source.name).name).lstrip(".") or "unnamed"
    stem, suffix = Path(name).stem, Path(name).suffix[:16]
    if len(name.encode()) > MAX_NAME_BYTES:
        stem = stem.encode()[:60].decode(errors="ignore") + f"-{content_hash[:12]}"
    target = folder / f"{stem}{suffix}"
    if target.exists() or target.is_symlink():
        target = folder / f"{stem}-{content_hash[:8]}{suffix}"
    return target


def move_keeping_both(source: Path, folder: Path, content_hash: str, target: Path | None = None) -> Path:
    """Move a file into a folder without overwriting anything already there."""
    folder.mkdir(parents=True, exist_ok=True)
    target = target or destination(source, folder, content_hash)
    shutil.move(str(source), target)
    return target


def quarantine(path: Path, quarantine_dir: Path, content_hash: str, rows: int, problems: list[str]) -> BatchVerdict:
    """The report is written first, then the file is moved beside it: a crash in between leaves the file in
    the landing folder (it is quarantined again on the next run), never a quarantined file without a report."""
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    target = destination(path, quarantine_dir, content_hash)
    report = {
        "file": shown(path.name),
        "kept_as": target.name,
        "quarantined_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "content_sha256": content_hash,
        "rows": rows,
        "problems": problems,
    }
    lines = [f"{shown(path.name)} was rejected and kept here, unchanged, as {target.name}. {len(problems)} problem(s):"]
    lines += [f"  - {p}" for p in problems]
    lines += ["", "Fix the source and land a corrected file; nothing from this file was ingested."]
    atomic_write(target.with_name(target.name + ".report.json"), lambda p: p.write_text(json.dumps(report, indent=2)))
    atomic_write(target.with_name(target.name + ".report.txt"), lambda p: p.write_text("\n".join(lines) + "\n"))
    kill_point("quarantine.after_report")
    moved = move_keeping_both(path, quarantine_dir, content_hash, target)
    return BatchVerdict(shown(path.name), content_hash, "quarantined", rows, str(moved), problems)


def list_accepted(accepted_dir: Path) -> list[AcceptedBatch]:
    """Accepted batches in arrival order. A Parquet file without its JSON record does not count."""
    batches = []
    if accepted_dir.is_dir():
        for record_path in accepted_dir.glob("*.json"):
            record = json.loads(record_path.read_text())
            batches.append(AcceptedBatch(**record, path=record_path.with_suffix(".parquet")))
    return sorted(batches, key=lambda b: b.sequence)


def rows_hash(frame: pd.DataFrame, contract: Contract) -> str:
    """The SHA-256 of a validated batch's rows (the contract's columns, in the contract's order, as the contract typed
    them): the same rows give the same hash whatever the file's format, name or column order."""
    columns = [c for c in contract.columns if c in frame.columns]
    return hashlib.sha256(pd.util.hash_pandas_object(frame[columns], index=False).to_numpy().tobytes()).hexdigest()


SEQUENCE_FILE = ".last_sequence"  # arrival numbers are never reused, even after a batch is removed (mlcicd batches)


def next_sequence(accepted_dir: Path, batches: list[AcceptedBatch]) -> int:
    """The next arrival number: after the highest ever given (kept in a file) and after every batch in the store."""
    marker = accepted_dir / SEQUENCE_FILE
    given = int(marker.read_text()) if marker.exists() else 0
    return max([given, *(b.sequence for b in batches)]) + 1


def read_validated(path: Path, contract: Contract, quarantine_dir: Path, content_hash: str, ignore: tuple[str, ...] = ()) -> ContractResult | BatchVerdict:
    """The contract's verdict on the file's rows (with the coerced rows and the soft expectations they break); or,
    when it cannot be read or breaks a hard rule, the verdict of quarantining it with a report. Columns in `ignore`
    are dropped before validation."""
    try:
        frame = read_batch(path)
    except BatchReadError as exc:
        return quarantine(path, quarantine_dir, content_hash, 0, [str(exc)])
    result = validate(frame.drop(columns=list(ignore), errors="ignore"), contract)
    if not result.passed:
        return quarantine(path, quarantine_dir, content_hash, len(frame), result.problems)
    return result


def quarantine_abandoned(path: Path, quarantine_dir: Path, minutes: float) -> BatchVerdict:
    """A writer's file (hidden, .part, .tmp) nobody has touched for `minutes`: kept in quarantine with a report."""
    return quarantine(path, quarantine_dir, content_id(path), 0, [
        f"{shown(path.name)} has a name writers use while writing (hidden, .part or .tmp) and has not changed for over {minutes:g} "
        "minutes: an abandoned partial write? Land the complete file under its final name."])


def ingest_file(path: Path, contract: Contract, accepted_dir: Path, archive_dir: Path, quarantine_dir: Path) -> BatchVerdict:
    """One landed file, whole or not at all. Runs one at a time: two runs given the same file (two landing
    events, a sensor and a person) give one accepted batch and one "duplicate"."""
    with exclusive(accepted_dir / ".ingest.lock"):
        if not (path.exists() or path.is_symlink()):
            return BatchVerdict(shown(path.name), "", "duplicate", 0, "", ["already taken by another ingestion run"])
        return _ingest(path, contract, accepted_dir, archive_dir, quarantine_dir)


def _ingest(path: Path, contract: Contract, accepted_dir: Path, archive_dir: Path, quarantine_dir: Path) -> BatchVerdict:
    if path.is_symlink():  # never followed: what it points at (perhaps outside data/) is never read
        return quarantine(path, quarantine_dir, content_id(path), 0, [
            f"{shown(path.name)} is a symbolic link: links in the landing folder are never followed; land the file itself"])
    content_hash = file_sha256(path)
    batch_id = content_hash[:16]
    record_path = accepted_dir / f"{batch_id}.json"
    if record_path.exists():
        moved = move_keeping_both(path, archive_dir, content_hash)
        return BatchVerdict(shown(path.name), content_hash, "duplicate", 0, str(moved), [f"same content as accepted batch {batch_id}"])

    result = read_validated(path, contract, quarantine_dir, content_hash)
    if isinstance(result, BatchVerdict):
        return result
    # text columns are stored as categories (Parquet dictionaries): smaller files, less memory, faster features; and
    # hashing categories hashes each distinct value once (the same hash as the text: pandas hashes a category by its value)
    data = result.validated.astype({c: "category" for c, rule in contract.columns.items() if rule.dtype == "str" and c in result.validated})
    rows = rows_hash(data, contract)
    stored = list_accepted(accepted_dir)
    same = next((b for b in stored if b.rows_hash == rows), None)
    if same is not None:  # a re-save (CSV of a Parquet batch, another name): ingesting it would repeat every row
        moved = move_keeping_both(path, archive_dir, content_hash)
        return BatchVerdict(shown(path.name), content_hash, "duplicate", 0, str(moved),
                            [f"the same rows as accepted batch {same.batch_id} (landed as {same.source}), in another file"])

    accepted_dir.mkdir(parents=True, exist_ok=True)
    time_columns = [c for c, rule in contract.columns.items() if rule.dtype == "datetime"]
    times = data[time_columns[0]] if time_columns else None
    batch = AcceptedBatch(
        batch_id=batch_id,
        sequence=next_sequence(accepted_dir, stored),
        source=shown(path.name),
        content_hash=content_hash,
        rows=len(data),
        min_time=str(times.min()) if times is not None else None,
        max_time=str(times.max()) if times is not None else None,
        ingested_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        path=accepted_dir / f"{batch_id}.parquet",
        unusual=result.unusual,
        rows_hash=rows,
    )
    kill_point("ingest.before_write")
    atomic_write(batch.path, lambda p: (data.to_parquet(p, index=False), kill_point("ingest.partial_written")))
    remember(batch.path, data, writer="ingestion")  # training_dataset reads it next, in the same run
    kill_point("ingest.after_parquet")
    atomic_write(record_path, lambda p: p.write_text(json.dumps(batch.to_record(), indent=2)))
    atomic_write(accepted_dir / SEQUENCE_FILE, lambda p: p.write_text(str(batch.sequence)))
    kill_point("ingest.after_record")
    moved = move_keeping_both(path, archive_dir, content_hash)
    return BatchVerdict(shown(path.name), content_hash, "accepted", len(data), str(moved), unusual=[u["sentence"] for u in result.unusual])
