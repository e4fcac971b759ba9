"""The one feature path. Training, evaluation, scoring and serving all call `feature_matrix` (training through
`featurize`, which names its columns) with a fitted FeatureState.

The state is plain data (column lists, category vocabularies, the task and its classes), stored with the
model, so a model scores exactly the way it was trained, in any process.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from mlcicd.config import DatasetSpec
from mlcicd.core.tasks import task_of, vocabulary_codes

TIME_FEATURES = ("hour_of_day", "day_of_week")


@dataclass(frozen=True)
class FeatureState:
    numeric: list[str]
    categorical: list[str]
    vocabularies: dict[str, list[str]]  # column -> values seen in training; code = position
    time_column: str | None
    task: str = "binary"
    classes: list[str] | None = None  # classification: the target's values as text; code = position (binary: [negative, positive])
    threshold: float = 0.5  # binary: the decision threshold, chosen on the validation split (core/operating_point.py)
    operating_point: dict | None = None  # how it was chosen and what it gave there (OperatingPoint.to_dict)

    @property
    def feature_names(self) -> list[str]:
        """The model's input columns, in order. Lists, not dict keys, carry the order: stores may sort keys."""
        time = list(TIME_FEATURES) if self.time_column else []
        return self.numeric + self.categorical + time

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> "FeatureState":
        return cls(
            numeric=list(raw["numeric"]),
            categorical=list(raw["categorical"]),
            vocabularies={k: list(v) for k, v in raw["vocabularies"].items()},
            time_column=raw.get("time_column"),
            task=raw.get("task", "binary"),
            classes=None if raw.get("classes") is None else [str(c) for c in raw["classes"]],
            threshold=float(raw.get("threshold", 0.5)),  # a model saved before operating points decided at 0.5
            operating_point=raw.get("operating_point"),
        )


def target_classes(values: pd.Series, task: str) -> list[str] | None:
    """The classes of a classification target in their natural order (binary: the second is the positive class)."""
    kind = task_of(task)
    if not kind.is_classifier:
        return None
    distinct = values.dropna().unique()
    try:
        distinct = sorted(distinct)
    except TypeError:  # mixed types: order by text
        distinct = sorted(distinct, key=str)
    classes = [str(v) for v in distinct]
    kind.check_classes(classes)
    return classes


def encode_target(values: pd.Series, state: FeatureState) -> np.ndarray:
    """Labels as the model sees them: 0/1 (binary), class codes with -1 for a class never seen (multiclass), values (regression)."""
    return task_of(state.task).encode(values, state.classes)


def fit_features(frame: pd.DataFrame, spec: DatasetSpec) -> FeatureState:
    """The feature state fitted on the rows in memory (the Dask engine fits it from the same summaries, computed where
    the rows are: core/distributed.py)."""
    numeric, categorical = feature_columns(frame.dtypes, spec)
    return state_from(numeric, categorical, {c: frame[c].dropna().unique() for c in categorical}, frame[spec.target], spec)


def feature_columns(dtypes: pd.Series, spec: DatasetSpec) -> tuple[list[str], list[str]]:
    """(numeric, categorical) model inputs, from the columns' types; a column that is neither is refused by name."""
    excluded = {spec.target, spec.id_column, spec.time_column, *spec.drop_columns} - {None}
    missing = [c for c in spec.categorical_columns if c not in dtypes.index]
    if missing:
        raise ValueError(f"categorical column(s) {missing} are not in the data (columns: {sorted(dtypes.index)})")
    categorical = [c for c in spec.categorical_columns if c not in excluded]
    numeric = [c for c in dtypes.index if c not in excluded and c not in categorical]
    non_numeric = [c for c in numeric if not pd.api.types.is_numeric_dtype(dtypes[c])]
    if non_numeric:
        raise ValueError(f"column(s) {non_numeric} are neither numeric nor listed in dataset.categorical_columns")
    return numeric, categorical


def state_from(numeric: list[str], categorical: list[str], distinct: dict, targets, spec: DatasetSpec) -> FeatureState:
    """The state from the distinct values of each categorical column (missing values dropped) and the target's values
    (all of them, or just the distinct ones)."""
    vocabularies = {c: sorted(str(v) for v in distinct[c]) for c in categorical}
    return FeatureState(
        numeric=numeric, categorical=categorical, vocabularies=vocabularies, time_column=spec.time_column,
        task=spec.task, classes=target_classes(pd.Series(targets), spec.task),
    )


def featurize(frame: pd.DataFrame, state: FeatureState) -> pd.DataFrame:
    """Model inputs as a table (what LightGBM trains on): feature_matrix with the feature names and the rows' index."""
    return pd.DataFrame(feature_matrix(frame, state), columns=state.feature_names, index=frame.index)


def feature_matrix(rows, state: FeatureState) -> np.ndarray:
    """Model inputs, one row per input row and one column per feature (state.feature_names): numbers as float,
    categories as their training codes (unseen or missing -> NaN), and the hour and weekday of the time column.
    `rows`: a DataFrame, or column name -> values (arrays), as the service holds a request, so that scoring one row
    builds no table."""
    missing = [c for c in state.numeric + state.categorical + ([state.time_column] if state.time_column else []) if c not in rows]
    if missing:
        raise ValueError(f"the data lacks feature column(s) {missing}")
    size = len(rows[state.numeric[0] if state.numeric else (state.categorical + [state.time_column])[0]])
    out = np.empty((size, len(state.feature_names)), dtype="float64", order="F")  # filled a column at a time
    for position, column in enumerate(state.numeric):
        values = rows[column]
        if isinstance(values.dtype, np.dtype) and values.dtype.kind in "biuf":  # numbers already (as a request's checked columns are)
            out[:, position] = values
        else:
            out[:, position] = pd.to_numeric(values, errors="coerce").astype("float64")
    for position, column in enumerate(state.categorical, start=len(state.numeric)):
        values = rows[column]
        if isinstance(values.dtype, pd.CategoricalDtype) and values.cat.categories.dtype == object:
            codes = values.cat.set_categories(state.vocabularies[column]).cat.codes.to_numpy()  # no strings built
        else:
            codes = vocabulary_codes(values, state.vocabularies[column])
        out[:, position] = np.where(codes < 0, np.nan, codes)
    if state.time_column:
        out[:, -2], out[:, -1] = hour_and_weekday(rows[state.time_column])
    return out


def same_inputs(a: FeatureState, b: FeatureState) -> bool:
    """Whether two states build the same feature matrix from the same rows (a retrained model whose categories did not
    change), so that it need be built only once."""
    return (a.numeric, a.categorical, a.vocabularies, a.time_column) == (b.numeric, b.categorical, b.vocabularies, b.time_column)


def hour_and_weekday(values) -> tuple[np.ndarray, np.ndarray]:
    """The hour of the day (0-23) and the day of the week (Monday = 0) of each time, NaN where it is missing; a time
    with a zone counts at its own clock."""
    if not pd.api.types.is_datetime64_any_dtype(values):  # (to_datetime on datetimes builds 10,000 Timestamps to decide on a cache)
        values = pd.to_datetime(values)
    if getattr(values.dtype, "tz", None) is not None:
        values = pd.Series(values).dt.tz_localize(None)
    stamps = np.asarray(values, dtype="datetime64[ns]")
    missing = np.isnat(stamps)
    stamps = np.where(missing, np.datetime64(0, "ns"), stamps)
    days = stamps.astype("datetime64[D]")
    hour = ((stamps - days) // np.timedelta64(1, "h")).astype("float64")
    weekday = ((days.astype("int64") + 3) % 7).astype("float64")  # 1970-01-01 was a Thursday
    hour[missing], weekday[missing] = np.nan, np.nan
    return hour, weekday
