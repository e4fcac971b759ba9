"""Tables this process has just written, handed to the next reader without reading the file back.

In one run, ingestion writes each accepted batch and training_dataset reads them all again; each step's output
table is read by the next step. `remember` keeps the latest writer's tables in memory, and `read_table` returns
the kept table while its file is the one that was written (same modification time and size), else reads the
file. Tables of other writers are forgotten at the next `remember`, so at most one writer's tables are held
(they are the ones the next step reads anyway). Readers must not change the table in place: they get the
same object the writer wrote.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

_KEPT: dict[Path, tuple[tuple[int, int], str, pd.DataFrame]] = {}  # path -> (file signature, writer, table)


def _signature(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def remember(path: Path, table: pd.DataFrame, writer: str) -> None:
    """`table` was just written to `path` by `writer` (an ingestion, a step): keep it for the next reader."""
    path = Path(path)
    for stale in [p for p, (_, kept_by, _) in _KEPT.items() if kept_by != writer]:
        del _KEPT[stale]
    _KEPT[path] = (_signature(path), writer, table)


def read_table(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """The Parquet table at `path` (only `columns`, if given): the kept one if the file is unchanged."""
    path = Path(path)
    kept = _KEPT.get(path)
    if kept is not None and kept[0] == _signature(path):
        return kept[2] if columns is None else kept[2][columns]
    return pd.read_parquet(path, columns=columns)
