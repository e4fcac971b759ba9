"""Bring your own data: infer a dataset spec (`mlcicd init`) and a data contract (`mlcicd schema freeze`)
from reference rows. Both write files a person reviews and commits; nothing here is applied silently."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mlcicd.core.ingest import READERS, read_batch
from mlcicd.core.stats import Z_95, Z_99
from mlcicd.core.tasks import infer_task, task_of

MAX_CATEGORIES = 50  # a text column with at most this many values gets an allowed list in the contract
ID_NAMES = ("id", "uuid", "key")
TIME_NAMES = ("time", "date", "timestamp", "ts", "at")
INDEX_NAMES = ("", "index", "rownames", "row_names", "level_0")  # and "Unnamed: 0": a data frame's row index written to a file
# Words that name a group of people or places: the usual slices (fairness and coverage), proposed first
GROUP_WORDS = ("sex", "gender", "race", "ethnic", "ethnicity", "region", "country", "state", "age_group", "agegroup", "segment",
               "channel", "jobclass", "class", "group", "student", "marital", "maritl", "education")
MAX_SLICE_VALUES = 10


def data_files(path: Path) -> list[Path]:
    """A CSV or Parquet file, or every such file in a folder (sorted, hidden files skipped)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ValueError(f"{path}: no such file or folder")
    # symbolic links are never followed (a quarantined link may point anywhere)
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.is_symlink() and not p.name.startswith(".") and p.suffix.lower() in READERS)
    if not files:
        raise ValueError(f"{path}: no .csv or .parquet files in this folder")
    return files


def read_reference(path: Path | list[Path], max_rows: int = 500_000, on_file=None) -> pd.DataFrame:
    """Rows from the file(s) at `path` (a file, a folder, or a list of files), up to `max_rows`, in file order."""
    frames, rows = [], 0
    for file in path if isinstance(path, list) else data_files(path):
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


def _looks_like_time(series: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(series):
        return True
    if series.dtype != object or not any(part in str(series.name).lower().split("_") for part in TIME_NAMES):
        return False
    parsed = pd.to_datetime(series.dropna().head(1000), errors="coerce", utc=True, format="mixed")
    return bool(len(parsed)) and parsed.notna().mean() > 0.99


def index_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that are a row index written by a data frame library (`Unnamed: 0`, `rownames`, ...): never a feature,
    and no identifier either (they restart in every file)."""
    return [str(c) for c in frame.columns if str(c).strip().lower() in INDEX_NAMES or str(c).startswith("Unnamed: ")]


def slice_candidates(frame: pd.DataFrame, categorical: list[str], limit: int = 3) -> list[str]:
    """Group columns to judge per value: low-cardinality text columns, those named like a group of people or places
    (sex, race, region, ...) first, then the fewest values first."""
    small = [c for c in categorical if 2 <= frame[c].nunique() <= MAX_SLICE_VALUES]
    named = lambda c: any(word in str(c).lower().replace("-", "_").split("_") or str(c).lower().startswith(word) for word in GROUP_WORDS)  # noqa: E731
    return sorted(small, key=lambda c: (not named(c), frame[c].nunique()))[:limit]


def duplicate_rows(frame: pd.DataFrame, limit: int = 3) -> tuple[int, list[dict]]:
    """Exact duplicate rows (every value equal to an earlier row's) and a few of them, as rows."""
    repeated = frame.duplicated(keep="first")
    examples = frame[repeated].head(limit)
    return int(repeated.sum()), [{str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for _, row in examples.iterrows()]


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
    drop_columns: list[str] = ()  # row indexes written by a data frame library
    duplicate_rows: int = 0
    duplicate_examples: list[dict] = ()
    smallest_class_share: float | None = None  # classification: the rarest class's share
    classes: int | None = None  # classification: how many classes
    largest_share: dict = field(default_factory=dict)  # slice column -> the share of its most common value


def infer_dataset(frame: pd.DataFrame, target: str, task: str | None = None, id_column: str | None = None, time_column: str | None = None) -> DatasetGuess:
    require_column(frame, target, "target")
    for column, role in ((id_column, "id"), (time_column, "time")):
        if column:
            require_column(frame, column, role)
    task = task or infer_task(frame[target])
    drop = [c for c in index_columns(frame) if c not in (target, id_column, time_column)]
    special = {target, *drop}
    id_column = id_column or infer_id_column(frame, special)
    special |= {id_column} - {None}
    time_column = time_column or infer_time_column(frame, special)
    special |= {time_column} - {None}
    categorical = [str(c) for c in frame.columns if c not in special and _is_text(frame[c])]
    positive_rate, smallest, classes = None, None, None
    kind = task_of(task)
    if kind.is_classifier:
        from mlcicd.core.features import target_classes

        shares = frame[target].dropna().astype(str).value_counts(normalize=True)
        smallest, classes = float(shares.min()), len(shares)
        positive = kind.positive_class(target_classes(frame[target], task))
        if positive is not None:
            positive_rate = float((frame[target].dropna().astype(str) == positive).mean())
    duplicated, examples = duplicate_rows(frame.drop(columns=drop)) if not id_column else (0, [])
    slices = slice_candidates(frame, categorical)
    largest = {c: float(frame[c].value_counts(normalize=True).max()) for c in slices}
    return DatasetGuess(
        task, id_column, time_column, categorical, slices, len(frame), [str(c) for c in frame.columns],
        positive_rate, drop, duplicated, examples, smallest, classes, largest,
    )


# ---- the contract ---------------------------------------------------------------------------------


def _number(value: float, as_int: bool):
    return int(value) if as_int else float(round(value, 6))


def _dtype(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(series) or (series.dtype == object and _looks_like_time(series)):
        return "datetime"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_numeric_dtype(series):
        return "float"
    return "str"


def column_rule(series: pd.Series, *, role: str, margin: float) -> dict:
    """One column's rule from what the reference rows show, in the contract's two layers.

    role: "id" (hard: type, unique, never missing; no range), "time" (hard: type, not in the future; no range),
    "label" (classification target; hard: type, allowed classes, two classes per batch), "target" (regression target),
    or "feature". Hard bounds are only the physical one a reference can show (never negative -> min 0); the observed
    range, category set and missing share become soft expectations (`expected`), reported as drift, never quarantined.
    """
    values = series.dropna()
    rule: dict = {"dtype": _dtype(series)}
    if role == "id":
        return {**rule, "unique": True}
    if role == "time":
        return {**rule, "not_in_future": True}
    if role == "ignored":  # dataset.drop_columns (a row index, ...): present, typed, nothing more
        return {**rule, "nullable": True}
    if role == "label":
        kind = int if rule["dtype"] == "int" else str
        return {**rule, "allowed": sorted(kind(v) for v in values.unique()), "min_distinct": 2, **({"nullable": True} if series.isna().any() else {})}
    expected: dict = {}
    if rule["dtype"] in ("int", "float") and len(values):
        low, high = float(values.min()), float(values.max())
        as_int = rule["dtype"] == "int"
        if low >= 0:  # a quantity never seen negative is declared non-negative (delete the line if it can be)
            rule["min"] = 0
        pad = (high - low) * margin
        expected["min"] = _number(math.floor(low - pad) if as_int else low - pad, as_int)
        expected["max"] = _number(math.ceil(high + pad) if as_int else high + pad, as_int)
        if rule.get("min") == 0:
            expected["min"] = max(expected["min"], 0)
    if rule["dtype"] == "str" and values.nunique() <= MAX_CATEGORIES:
        expected["values"] = sorted(str(v) for v in values.unique())
    if role == "feature":  # a feature may be missing (the model handles it); how often is an expectation
        rule["nullable"] = True
        expected["max_null_share"] = round(min(1.0, float(series.isna().mean()) + 0.01), 4)
    elif series.isna().any():
        rule["nullable"] = True
    if expected:
        rule["expected"] = expected
    return rule


def freeze_contract(
    frame: pd.DataFrame, *, target: str, id_column: str | None, time_column: str | None, task: str, margin: float = 0.1, ignored: tuple = ()
) -> dict:
    """The contract (as the YAML-ready mapping contracts/*.yaml hold) that these rows satisfy: hard rules for what a
    batch must be, soft expectations (with `margin` of the observed span around the observed range) for the rest."""
    if time_column:
        frame = frame.assign(**{time_column: pd.to_datetime(frame[time_column], errors="coerce", format="mixed")})
    columns = {}
    for column in frame.columns:
        if column == target:
            role = "label" if task_of(task).is_classifier else "target"
        else:
            role = {id_column: "id", time_column: "time"}.get(column, "ignored" if column in ignored else "feature")
        columns[str(column)] = column_rule(frame[column], role=role, margin=margin)
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


# ---- gate settings the data can support ------------------------------------------------------------


MAX_MARGIN = 0.05  # a fall of more than this on the primary metric matters for any use: init grows the holdout instead
MAX_HOLDOUT_FRACTION = 0.4


def _round_up(value: float, step: float = 0.01) -> float:
    return round(math.ceil(value / step - 1e-9) * step, 4)


def model_params(rows: int) -> dict:
    """The LightGBM settings `mlcicd init` writes: smaller trees for small data."""
    return {"learning_rate": 0.05, "num_leaves": 7 if rows < 2000 else 31, "min_data_in_leaf": max(5, min(50, rows // 50))}


def measure_noise(frame: pd.DataFrame, guess: DatasetGuess, target: str, holdout_fraction: float = 0.2, seed: int = 0) -> dict | None:
    """How precisely a holdout of this data tells two models apart, measured rather than guessed: a "champion" trained
    on the older part of the train rows and a "candidate" on all of them (what a retrain on one more batch looks like),
    both scored on the newest `holdout_fraction` of the rows; the paired bootstrap's standard deviation of their
    difference in the primary metric. None when the data is too small to try (under 200 rows)."""
    from mlcicd.config import TASK_GATE_DEFAULTS, DatasetSpec, ModelSpec
    from mlcicd.core.dataset import split_by_time
    from mlcicd.core.evaluate import paired_bootstrap
    from mlcicd.core.features import encode_target
    from mlcicd.core.train import predict, train_model

    if len(frame) < 200:
        return None
    spec = DatasetSpec(
        contract="(init)", target=target, task=guess.task, id_column=guess.id_column, time_column=guess.time_column,
        categorical_columns=guess.categorical_columns, drop_columns=list(guess.drop_columns),
    )
    data = frame.dropna(subset=[target])
    if guess.time_column:
        data = data.assign(**{guess.time_column: pd.to_datetime(data[guess.time_column], errors="coerce", format="mixed")})
    train, holdout = split_by_time(data, guess.time_column, holdout_fraction)
    model = ModelSpec(num_threads=2, seed=seed, params=model_params(len(frame)))  # the settings init writes
    try:
        older = train_model(train.iloc[: int(len(train) * 0.7)], spec, model, model.num_boost_round)
        newer = train_model(train, spec, model, model.num_boost_round)
        metric = TASK_GATE_DEFAULTS[guess.task]["primary_metric"]
        pairs = [(encode_target(holdout[target], m.features), predict(m.booster, m.features, holdout)) for m in (newer, older)]
    except ValueError:  # a class missing from a part, say: fall back to the formulas
        return None
    comparison = paired_bootstrap(metric, pairs[0], pairs[1], rounds=200, confidence=0.95, seed=seed)
    return {"metric": metric, "holdout_rows": len(holdout), "difference_sd": comparison["sd"], "metric_sd": comparison["candidate_sd"],
            "candidate": comparison["candidate"], "champion": comparison["champion"]}


def fitted_gates(guess: DatasetGuess, holdout_fraction: float = 0.2, measured: dict | None = None) -> dict:
    """Gate settings for `mlcicd init` that the data can meet, each with a comment saying why: a floor that a useful
    model clears, a regression margin and a calibration tolerance no finer than the expected holdout can resolve,
    and a minimum slice size with enough rows (and, for a classifier, enough of the rarer class) to measure a metric.
    The gates are interval-based and say when they lack data; these settings keep the defaults reachable."""
    kind = task_of(guess.task)
    holdout = max(1, int(guess.rows * holdout_fraction))
    primary = kind.primary
    lines = [f"primary_metric: {primary}"]
    rare = kind.rare_share(guess)
    expected = kind.init_noise(guess, holdout, rare)
    sd, floor, floor_why, noise = expected["sd"], expected["floor"], expected["floor_why"], expected["noise"]
    slice_rows, slice_why = expected["slice_rows"], expected["slice_why"]
    default_margin = 0.02
    if measured is not None and math.isfinite(measured.get("difference_sd") or math.nan):
        # a candidate exactly as good as the champion passes the one-sided 95% bound 99% of the time with a margin of
        # (z_95 + z_99) standard deviations of the difference: 1.645 for the bound, 2.326 for the power (one quick pair of
        # models measures the noise only roughly, so the power is set high)
        # one quick pair can agree by luck (their difference varied from 0.25 to 0.85 of the metric's own standard deviation
        # across the real datasets of mlcicd_tests/real_data.py): at least 0.75 of it is assumed
        sd_difference = max(measured["difference_sd"], 0.75 * (measured.get("metric_sd") or 0.0))
        needed = (Z_95 + Z_99) * sd_difference
        if needed > MAX_MARGIN:  # grow the holdout (noise shrinks with the square root of its rows) rather than widen the margin
            holdout_fraction = min(MAX_HOLDOUT_FRACTION, holdout_fraction * (needed / MAX_MARGIN) ** 2)
            sd_difference *= math.sqrt(measured["holdout_rows"] / max(1, int(guess.rows * holdout_fraction)))
            holdout = max(1, int(guess.rows * holdout_fraction))
        margin = max(default_margin, _round_up((Z_95 + Z_99) * sd_difference))
        if needed > MAX_MARGIN and holdout_fraction < MAX_HOLDOUT_FRACTION:
            margin = MAX_MARGIN  # the holdout was grown for exactly this margin
        margin_why = (f"init trained two quick models on this data: on ~{holdout:,} holdout rows their {primary} differs by "
                      f"±{sd_difference:.3f} from noise alone; a finer margin would refuse models as good as the champion")
    else:
        margin = max(default_margin, _round_up(1.5 * sd))
        margin_why = f"the holdout (~{holdout:,} rows) measures {primary} to about ±{sd:.3f}: a finer margin would refuse models as good as the champion"
    tolerance = max(kind.gate_defaults["max_calibration_error"], kind.init_min_calibration_tolerance, _round_up(noise))
    slices = [c for c in guess.slice_columns if slice_rows <= holdout * guess.largest_share.get(c, 1.0)]
    lines += [
        f"min_metrics: {{{primary}: {floor}}}   # a sanity floor ({floor_why}); raise it to what your use needs",
        f"max_regression: {margin}               # {margin_why}",
        f"max_calibration_error: {tolerance}        # a calibrated model shows ~{noise:.3f} on ~{holdout:,} rows by chance; the gate also "
        "allows for that noise",
        f"slice_min_rows: {slice_rows}             # {slice_why}; smaller slices are reported, not judged",
        f"max_slice_regression: {max(0.05, round(2 * margin, 2))}        # a slice holds a fraction of the holdout, so its {primary} moves "
        "more by chance: twice the overall margin (a slice must also be worse beyond noise to refuse)",
        f"min_rows: {max(50, min(5000, guess.rows // 2))}                     # half of what init saw: fewer rows than that is a broken feed",
    ]
    lines += kind.init_label_lines(guess, rare)
    return {"lines": lines, "slices": slices, "holdout_rows": holdout, "holdout_fraction": round(holdout_fraction, 2)}
