"""The training dataset: a window of accepted batches, identified by a content hash, split by time."""

from __future__ import annotations

import hashlib
from datetime import datetime
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mlcicd.core.ingest import AcceptedBatch
from mlcicd.core.tables import read_table


def window(batches: Sequence[AcceptedBatch], size: int) -> list[AcceptedBatch]:
    """The newest `size` accepted batches (by arrival), oldest first."""
    return list(batches)[-size:]


def newest_ingestion(batches: Sequence[AcceptedBatch]) -> datetime | None:
    """When the most recently ingested batch of the window was accepted (what data freshness measures)."""
    return max((datetime.fromisoformat(b.ingested_at) for b in batches), default=None)


def dataset_hash(batches: Sequence[AcceptedBatch], sample_rows: int | None) -> str:
    """Same batches and same sampling give the same hash, whatever order they were listed in."""
    digest = hashlib.sha256()
    for content_hash in sorted(b.content_hash for b in batches):
        digest.update(content_hash.encode())
    digest.update(f"sample={sample_rows}".encode())
    return digest.hexdigest()


def load_batches(batches: Sequence[AcceptedBatch], time_column: str | None, columns: list[str] | None = None) -> pd.DataFrame:
    """The batches' rows in time order, or in arrival order (batch by batch) without a time column."""
    if not batches:
        raise ValueError("there are no accepted batches to build a training dataset from")
    frames = [read_table(b.path, columns) for b in batches]
    categorical = {c for f in frames for c in f.columns if isinstance(f[c].dtype, pd.CategoricalDtype)}
    frame = pd.concat(frames, ignore_index=True)
    del frames
    # batches with different category sets concatenate to plain objects: make them categories again
    frame = frame.astype({c: "category" for c in categorical if not isinstance(frame[c].dtype, pd.CategoricalDtype)})
    return in_time_order(frame, time_column) if time_column else frame


def in_time_order(frame: pd.DataFrame, time_column: str) -> pd.DataFrame:
    """The rows sorted by time, stably (equal times keep their order), with a fresh index. Rows already in order are not
    sorted again: the check is one pass, a sort of 10M rows about a second, and the pipeline orders the same rows three
    times (the dataset, the split, the fit's validation cut)."""
    if frame[time_column].is_monotonic_increasing:
        return frame.reset_index(drop=True)
    return frame.sort_values(time_column, kind="stable", ignore_index=True)


def sample(frame: pd.DataFrame, rows: int | None, seed: int) -> pd.DataFrame:
    """A reproducible random sample that keeps time order (no-op when rows is None or large enough)."""
    if rows is None or len(frame) <= rows:
        return frame
    return frame.sample(n=rows, random_state=seed).sort_index().reset_index(drop=True)


def row_keys(frame: pd.DataFrame, id_column: str | None, ignore: Sequence[str] = ()) -> pd.Series:
    """What identifies a row: its id, or (without an id column) a hash of all its values but `ignore`."""
    if id_column:
        return frame[id_column]
    return pd.util.hash_pandas_object(frame.drop(columns=[c for c in ignore if c in frame.columns]), index=False)


def shared_keys(first: pd.Series, second: pd.Series) -> pd.Index:
    """The distinct keys (row_keys) found in both, for the leakage gate: by np.isin where both are whole numbers (ids,
    or row hashes; 8M train ids against 2M holdout ids: 0.06 s here), else by hashing (pandas' intersection: 1.25 s)."""
    a, b = first.to_numpy(), second.to_numpy()
    if a.dtype == b.dtype and a.dtype.kind in "iu":  # one type: signed against unsigned would compare as floats
        return pd.Index(np.unique(b[np.isin(b, a)]))
    return pd.Index(first).intersection(pd.Index(second))


def holdout_fraction_of_batches(batches: Sequence[AcceptedBatch], newest: int) -> float | None:
    """The share of the rows that the newest `newest` batches hold (None when there are not more batches than that)."""
    if len(batches) <= newest:
        return None
    total = sum(b.rows for b in batches)
    return sum(b.rows for b in batches[-newest:]) / total if total else None


def split_by_time(frame: pd.DataFrame, time_column: str | None, holdout_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Older rows train, the newest `holdout_fraction` of rows are held out (no row is in both).
    Without a time column the frame's order (batch arrival) decides what is newest."""
    ordered = in_time_order(frame, time_column) if time_column else frame.reset_index(drop=True)
    cut = int(round(len(ordered) * (1 - holdout_fraction)))
    if cut <= 0 or cut >= len(ordered):
        raise ValueError(f"cannot split {len(ordered)} rows into a train set and a holdout of {holdout_fraction:.0%}")
    return ordered.iloc[:cut].reset_index(drop=True), ordered.iloc[cut:].reset_index(drop=True)
