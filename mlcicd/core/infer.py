"""Bring your own data: infer a dataset spec (`mlcicd init`) and a data contract (`mlcicd schema freeze`)
from reference rows. Both write files a person reviews and commits; nothing here is applied silently."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlcicd.core.ingest import READERS, read_batch

MAX_CLASSES = 20  # an integer or text target with at most this many values is a class label
MAX_CATEGORIES = 50  # a text column with at most this many values gets an allowed list in the contract
ID_NAMES = ("id", "uuid", "key")
TIME_NAMES = ("time", "date", "timestamp", "ts", "at")


def data_files(path: Path) -> list[Path]:
    """A CSV or Parquet file, or every such file in a folder (sorted, hidden files skipped)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ValueError(f"{path}: no such file or folder")
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in READERS)
    if not files:
        raise ValueError(f"{path}: no .csv or .parquet files in this folder")
    return files


def read_reference(path: Path, max_rows: int = 500_000, on_file=None) -> pd.DataFrame:
    """Rows from the file(s) at `path`, up to `max_rows`, in file order."""
    frames, rows = [], 0
    for file in data_files(path):
        frame = read_batch(file)
        frames.append(frame)
        rows += len(frame)
        if on_file:
            on_file(file)
        if rows >= max_rows:
            break
    return pd.concat(frames, ignore_index=True).iloc[:max_rows]


def closest(name: str, choices) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when none is close."""
    match = difflib.get_close_matches(name, [str(c) for c in choices], n=1, cutoff=0.5)
    if not match:  # a difference in case or separators only
        folded = {str(c).lower().replace(" ", "_").replace("-", "_"): str(c) for c in choices}
        key = name.lower().replace(" ", "_").replace("-", "_")
        match = [folded[key]] if key in folded else []
    return f" (did you mean '{match[0]}'?)" if match else ""


def require_column(frame: pd.DataFrame, column: str, role: str) -> None:
    if column not in frame.columns:
        raise ValueError(f"the data has no {role} column '{column}'{closest(column, frame.columns)}; columns: {', '.join(map(str, frame.columns))}")


def infer_task(target: pd.Series) -> str:
    values = target.dropna()
    distinct = values.nunique()
    if distinct <= 2:
        return "binary"
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    whole = numeric and bool((values == values.round()).all())
    if not numeric or (whole and distinct <= MAX_CLASSES):
        return "multiclass"
    return "regression"


def _looks_like_time(series: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(series):
        return True
    if series.dtype != object or not any(part in str(series.name).lower().split("_") for part in TIME_NAMES):
        return False
    parsed = pd.to_datetime(series.dropna().head(1000), errors="coerce", utc=True, format="mixed")
    return bool(len(parsed)) and parsed.notna().mean() > 0.99


def infer_id_column(frame: pd.DataFrame, exclude: set[str]) -> str | None:
    for column in frame.columns:
        name = str(column).lower()
        if column in exclude or not (name in ID_NAMES or name.endswith(tuple(f"_{n}" for n in ID_NAMES))):
            continue
        if frame[column].notna().all() and frame[column].is_unique:
            return str(column)
    return None


def infer_time_column(frame: pd.DataFrame, exclude: set[str]) -> str | None:
    return next((str(c) for c in frame.columns if c not in exclude and _looks_like_time(frame[c])), None)


def _is_text(series: pd.Series) -> bool:
    return series.dtype == object or isinstance(series.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(series) or pd.api.types.is_bool_dtype(series)


@dataclass(frozen=True)
class DatasetGuess:
    task: str
    id_column: str | None
    time_column: str | None
    categorical_columns: list[str]
    slice_columns: list[str]
    rows: int
    columns: list[str]
    positive_rate: float | None  # binary: the share of the positive class (the second in natural order)


def infer_dataset(frame: pd.DataFrame, target: str, task: str | None = None, id_column: str | None = None, time_column: str | None = None) -> DatasetGuess:
    require_column(frame, target, "target")
    for column, role in ((id_column, "id"), (time_column, "time")):
        if column:
            require_column(frame, column, role)
    task = task or infer_task(frame[target])
    special = {target}
    id_column = id_column or infer_id_column(frame, special)
    special |= {id_column} - {None}
    time_column = time_column or infer_time_column(frame, special)
    special |= {time_column} - {None}
    categorical = [str(c) for c in frame.columns if c not in special and _is_text(frame[c])]
    slices = [c for c in categorical if 2 <= frame[c].nunique() <= 10][:2]
    positive_rate = None
    if task == "binary":
        from mlcicd.core.features import target_classes

        classes = target_classes(frame[target], task)
        positive_rate = float((frame[target].dropna().astype(str) == classes[1]).mean())
    return DatasetGuess(task, id_column, time_column, categorical, slices, len(frame), [str(c) for c in frame.columns], positive_rate)


# ---- the contract ---------------------------------------------------------------------------------


def _number(value: float, as_int: bool):
    return int(value) if as_int else float(round(value, 6))


def column_rule(series: pd.Series, *, margin: float, unique: bool, categories: bool) -> dict:
    """One column's rule from what the reference rows show: type, range widened by `margin` of the span,
    allowed values for categories, nullability and uniqueness."""
    rule: dict = {}
    values = series.dropna()
    if pd.api.types.is_bool_dtype(series):
        rule["dtype"] = "bool"
    elif pd.api.types.is_datetime64_any_dtype(series) or (series.dtype == object and _looks_like_time(series)):
        rule["dtype"] = "datetime"
    elif pd.api.types.is_integer_dtype(series):
        rule["dtype"] = "int"
    elif pd.api.types.is_numeric_dtype(series):
        rule["dtype"] = "float"
    else:
        rule["dtype"] = "str"
    if rule["dtype"] in ("int", "float") and len(values):
        low, high = float(values.min()), float(values.max())
        if categories and values.nunique() <= MAX_CLASSES and rule["dtype"] == "int":
            rule["allowed"] = sorted(int(v) for v in values.unique())
        else:
            pad = (high - low) * margin
            as_int = rule["dtype"] == "int"
            floor, ceiling = low - pad, high + pad
            if low >= 0:  # a quantity that was never negative stays non-negative
                floor = max(0.0, floor)
            rule["min"] = _number(math.floor(floor) if as_int else floor, as_int)
            rule["max"] = _number(math.ceil(ceiling) if as_int else ceiling, as_int)
    if rule["dtype"] == "str" and not unique and (categories or values.nunique() <= MAX_CATEGORIES):
        rule["allowed"] = sorted(str(v) for v in values.unique())
    if rule["dtype"] == "datetime":
        rule["not_in_future"] = True
    if categories:  # a class label: a batch with a single class is a broken label feed
        rule["min_distinct"] = 2
    if series.isna().any():
        rule["nullable"] = True
    if unique:
        rule["unique"] = True
    return rule


def freeze_contract(frame: pd.DataFrame, *, target: str, id_column: str | None, time_column: str | None, task: str, margin: float = 0.1) -> dict:
    """The contract (as the YAML-ready mapping contracts/*.yaml hold) that these rows satisfy, with room to grow."""
    if time_column:
        frame = frame.assign(**{time_column: pd.to_datetime(frame[time_column], errors="coerce", format="mixed")})
    columns = {}
    for column in frame.columns:
        is_target = column == target
        columns[str(column)] = column_rule(
            frame[column], margin=margin, unique=column == id_column, categories=is_target and task != "regression"
        )
    return {"version": 1, "min_rows": 1, "columns": columns}


def contract_changes(old: dict, new: dict) -> list[str]:
    """What a re-freeze changes, in sentences for the reviewer."""
    before, after = old.get("columns", {}), new.get("columns", {})
    changes = [f"+ column '{c}': {after[c]}" for c in after if c not in before]
    changes += [f"- column '{c}' (was {before[c]})" for c in before if c not in after]
    for column in after:
        if column in before and before[column] != after[column]:
            keys = sorted(set(before[column]) | set(after[column]))
            diff = ", ".join(f"{k}: {before[column].get(k)} -> {after[column].get(k)}" for k in keys if before[column].get(k) != after[column].get(k))
            changes.append(f"~ column '{column}': {diff}")
    return changes
