"""mlcicd.yaml: the dataset spec, the model settings, the gate thresholds and the tiers.

The file is validated on load. Any unknown key, missing key or bad value raises ConfigError with the
dotted path of the key (for example ``gates.min_roc_auc``) and what was expected.
"""

from __future__ import annotations

import difflib
import functools
import os
from pathlib import Path
from typing import Any, Literal

from mlcicd.core.tasks import TASKS

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CONFIG_ENV_VAR = "MLCICD_CONFIG"
DEFAULT_CONFIG_NAME = "mlcicd.yaml"


class ConfigError(ValueError):
    """mlcicd.yaml is missing, unreadable or invalid; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSpec(_Strict):
    """What the data is and how to read it."""

    landing_dir: str | None = Field(None, description="Where new batches land, relative to the project root; default: the model's data/landing.")
    contract: str = Field(description="Path of the data contract (columns, types, ranges), relative to mlcicd.yaml.")
    target: str
    task: str = Field(
        "binary", description="binary or multiclass classification, or regression (core/tasks.py); it picks the objective, the metrics and the gates."
    )
    id_column: str | None = Field(None, description="A column that identifies a row; without one, whole rows are compared for duplicates and leakage.")
    time_column: str | None = Field(None, description="When a row happened; without one, rows are ordered by the arrival of their batch.")
    categorical_columns: list[str] = []
    slice_columns: list[str] = []

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: str) -> str:
        if value not in TASKS:
            raise ValueError(f"'{value}' is not a task; tasks: {', '.join(TASKS)}")
        return value
    drop_columns: list[str] = Field([], description="Columns that are never used as features.")
    window_batches: int = Field(30, ge=1, description="How many of the newest accepted batches form the training dataset.")
    holdout_fraction: float = Field(0.2, gt=0.0, lt=0.5, description="Newest share of rows (by time, else by arrival) kept for evaluation.")
    holdout_batches: int | None = Field(
        None, ge=1,
        description="When set, the holdout is the newest K accepted batches instead of holdout_fraction (grow it when a gate says "
        "the holdout is too small to decide); with K or fewer batches in the window, holdout_fraction applies.",
    )
    duplicates: Literal["allow", "refuse"] | None = Field(
        None,
        description="Rows that appear twice: refuse (unique_ids fails) or allow. Default: refuse when id_column is set (an id "
        "seen twice is a duplicate), allow without one (identical rows can be different records, e.g. two people alike).",
    )

    @property
    def duplicate_policy(self) -> str:
        return self.duplicates or ("refuse" if self.id_column else "allow")

    @model_validator(mode="after")
    def _columns_are_distinct(self) -> "DatasetSpec":
        special = {k: v for k, v in {"target": self.target, "id_column": self.id_column, "time_column": self.time_column}.items() if v}
        if len(set(special.values())) != len(special):
            raise ValueError(f"target, id_column and time_column must be different columns, got {special}")
        for name in ("categorical_columns", "slice_columns"):
            clash = set(getattr(self, name)) & set(special.values())
            if clash:
                raise ValueError(f"{name} must not contain the target, id or time column: {sorted(clash)}")
        return self


class DaskSpec(_Strict):
    scheduler: str | None = Field(None, description="A dask.distributed scheduler address (tcp://host:8786); null: a LocalCluster on this machine.")
    workers: int = Field(2, ge=1, description="LocalCluster only: worker processes (one thread each).")
    max_holdout_rows: int = Field(
        500_000, ge=1_000, description="The holdout comes to the driver for evaluation; above this many rows, a sample of this "
        "many does (drawn on the workers; the sample is recorded on holdout_set).",
    )


class Costs(_Strict):
    false_positive: float = Field(1.0, ge=0, description="The cost of one false alarm (a negative decided positive).")
    false_negative: float = Field(1.0, ge=0, description="The cost of one miss (a positive decided negative).")


class OperatingPointSpec(_Strict):
    """binary: how the decision threshold is chosen, on the validation split (never the holdout); it is stored with the
    model and used by evaluation, batch scoring and serving."""

    rule: Literal["max_f1", "target_precision", "target_recall", "min_cost", "fixed"] = Field(
        "max_f1", description="max_f1; target_precision / target_recall (the most of the other with at least `target`); min_cost "
        "(`costs`); fixed (`threshold`).",
    )
    target: float = Field(0.8, gt=0, le=1, description="target_precision / target_recall: the precision or recall to reach.")
    costs: Costs = Costs()
    threshold: float = Field(0.5, gt=0, lt=1, description="fixed: a probability at or above this is a positive decision.")


class ModelSpec(_Strict):
    # names end up in file names (reports, model cards): letters, digits, '.', '_' and '-' only, so none escapes data/
    registered_name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100, description="The MLflow registered model; default mlcicd-<name>."
    )
    experiment: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100, description="Default: mlcicd-<name>.")
    num_boost_round: int = Field(400, ge=1)
    early_stopping_rounds: int = Field(30, ge=1)
    validation_fraction: float = Field(0.15, gt=0.0, lt=0.5, description="Newest share of the train set used for early stopping.")
    params: dict[str, Any] = Field(default_factory=dict, description="Extra LightGBM parameters (learning_rate, num_leaves, ...).")
    seed: int = 42
    num_threads: int = Field(2, ge=1)
    operating_point: OperatingPointSpec = OperatingPointSpec()
    engine: Literal["local", "dask"] = Field("local", description="local: LightGBM in the step's process; dask: lightgbm.dask on a dask.distributed cluster.")
    dask: DaskSpec = DaskSpec()


class LatencyBudget(_Strict):
    one_row_p95_ms: float = Field(50.0, gt=0, description="p95 time to score 1 row through the shared feature path.")
    batch_1000_p95_ms: float = Field(250.0, gt=0, description="p95 time to score 1,000 rows.")
    repeats: int = Field(30, ge=5, description="Timed repetitions of each model (after one warm-up), split into `blocks` of at least 5.")
    blocks: int = Field(3, ge=1, le=50, description="Blocks of repetitions, candidate and champion interleaved; the fastest block's p95 is "
                        "judged against the budgets (a busy spell slows some blocks, not the model).")
    max_ratio: float = Field(1.5, ge=1.0, description="Over a budget on a busy machine (the champion, measured beside it, is over it too), "
                             "the candidate may take at most this many times the champion's time (median of paired timings).")

    @property
    def budgets_ms(self) -> dict[str, float]:
        """The budgets alone (what latency_and_size judges), keyed like the measured latencies."""
        return {"one_row_p95_ms": self.one_row_p95_ms, "batch_1000_p95_ms": self.batch_1000_p95_ms}


# Per task: the primary metric, default floors, and how calibration is bounded (see core/metrics.py)
TASK_GATE_DEFAULTS = {name: task.gate_defaults for name, task in TASKS.items()}  # from the task table (core/tasks.py)


class GateSpec(_Strict):
    """Every threshold the gates apply. Each gate is a blocking asset check of severity ERROR.

    primary_metric, min_metrics and max_calibration_error default by dataset.task (TASK_GATE_DEFAULTS)."""

    primary_metric: str = Field(
        "roc_auc", description="The metric the regression and slice gates compare (binary: roc_auc, multiclass: macro_f1, regression: r2)."
    )
    min_metrics: dict[str, float] = Field(
        default_factory=lambda: {"roc_auc": 0.70}, description="Absolute floors on the holdout (for metrics where higher is better)."
    )
    max_metrics: dict[str, float] = Field(
        default_factory=dict, description="Absolute ceilings on the holdout (for metrics where lower is better: log_loss, brier, rmse, mae)."
    )
    max_regression: float = Field(
        0.02, ge=0.0,
        description="Promote only if the lower confidence bound of how much better the candidate is than the champion, on the primary "
        "metric, is above -max_regression.",
    )
    regression_confidence: float = Field(0.95, ge=0.5, lt=1.0, description="One-sided confidence of that lower bound.")
    bootstrap_rounds: int = Field(200, ge=50, le=5000)
    bootstrap_max_rows: int = Field(
        20_000, ge=1_000,
        description="The bootstrap resamples at most this many rows of the holdout (or of a slice): above it, a random subsample, its "
        "spread rescaled to all the rows (raised so the rarest class keeps 500 rows). Its cost no longer grows with the holdout.",
    )
    slice_min_rows: int = Field(500, ge=10, description="A slice value with fewer holdout rows (or whose metric is undefined there) is not judged.")
    max_slice_regression: float = Field(0.05, ge=0.0, description="How far any judged slice may fall below the champion.")
    slice_correction: Literal["holm", "benjamini_hochberg"] = Field(
        "holm", description="How the slice gate corrects for judging many slices at once: holm (family-wise error) or benjamini_hochberg "
        "(false discovery rate, more power with many slices)."
    )
    max_operating_point_drop: float = Field(
        0.05, ge=0.0, le=1.0,
        description="binary: how far the candidate's precision or recall at its own threshold may fall below the champion's at the "
        "champion's threshold (the fall must also be beyond noise: paired bootstrap).",
    )
    max_negative_flip_rate: float = Field(
        0.1, ge=0.0, le=1.0,
        description="negative_flips: the share of holdout rows (overall, and in any judged slice) the champion got right and the "
        "candidate gets wrong may be at most this (refused only when above it beyond noise). The default guards against a break; "
        "on rare positives a threshold re-chosen on a small validation split alone flips several percent of the rows (ISLR "
        "Caravan: 7.8%), so set the share your users can absorb.",
    )
    regression_flip_tolerance: float = Field(
        0.25, ge=0.0, description="regression: a row flips when its absolute error grows by more than this many standard deviations of the target.",
    )
    max_champion_drop: float = Field(
        0.1, ge=0.0,
        description="label_quality: how far the champion's primary metric on the newest labeled rows may fall below its value at "
        "promotion before the newest labels are suspect (label corruption or concept drift); the fall must also be beyond noise (95%).",
    )
    max_calibration_error: float = Field(
        0.02, gt=0.0,
        description="binary: expected calibration error (10 equal-frequency bins); multiclass: the same for the top-class confidence; "
        "regression: |mean residual| / standard deviation of the target.",
    )
    latency: LatencyBudget = LatencyBudget()
    max_model_size_mb: float = Field(50.0, gt=0)
    max_data_age_hours: float = Field(48.0, gt=0, description="The newest accepted batch must have been ingested this recently.")
    min_rows: int = Field(5_000, ge=1, description="Rows the training dataset needs at least.")
    positive_rate: tuple[float, float] = Field((0.002, 0.3), description="binary: bounds on the training dataset's positive rate.")
    min_class_share: float = Field(0.01, ge=0.0, lt=1.0, description="multiclass: every class needs at least this share of the training rows.")

    @model_validator(mode="after")
    def _sane(self) -> "GateSpec":
        low, high = self.positive_rate
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"positive_rate must be [low, high] with 0 <= low < high <= 1, got {list(self.positive_rate)}")
        return self


class PromotionSpec(_Strict):
    mode: Literal["auto", "manual"] = Field(
        "manual",
        description="auto: sensors and schedules may promote when every gate passes; manual: only a person (UI, CLI or CI) runs promotion_job.",
    )
    min_override_reason_chars: int = Field(20, ge=1, description="An override needs a written reason at least this long.")
    require_canary: bool = Field(False, description="Promote only a candidate whose canary window passed (serving.canary).")
    revert_unaudited: bool = Field(
        False, description="When the champion alias points where no audited decision moved it: false, alert and refuse to score or serve "
        "it; true, also move it back to the audited version (an audited rollback).",
    )


class TierSpec(_Strict):
    sample_rows: int | None = Field(None, ge=100, description="Rows sampled from the training dataset; null means all rows.")
    num_boost_round: int | None = Field(None, ge=1, description="Overrides model.num_boost_round for this tier.")
    model_name_suffix: str = Field("", pattern=r"^[A-Za-z0-9._-]*$", description="Appended to model.registered_name so a tier never moves another's champion.")
    evaluation_report: bool = Field(
        True, description="Write the HTML evaluation report (Evidently + plots) for each candidate; the markdown summary is always made."
    )


class Tiers(_Strict):
    full: TierSpec = TierSpec()
    ci: TierSpec = TierSpec(sample_rows=40_000, num_boost_round=100, model_name_suffix="-ci", evaluation_report=False)
    # the pull-request tier (pr_job, `mlcicd ci`): judged against production's champion, so trained like it (the whole
    # window, every round: a smaller budget would lose to the champion with no change at all); never moves an alias
    pr: TierSpec = TierSpec(model_name_suffix="-pr", evaluation_report=False)


class AutomationSpec(_Strict):
    """The loop that runs by itself (sensors and schedules, all RUNNING by default under the daemon)."""

    landing_interval_seconds: int = Field(15, ge=1, description="How often landing_sensor looks for new files.")
    settle_seconds: float = Field(2.0, ge=0, description="A file counts as complete when its size is unchanged for this long.")
    retrain_cron: str = Field("0 2 * * *", description="Nightly retraining (training_job), in cron syntax, UTC.")
    abandoned_minutes: float = Field(
        60.0, gt=0, description="A file with a writer's name (hidden, .part, .tmp) untouched this long is an abandoned partial write: "
        "ingestion quarantines it with a report instead of leaving it in the landing folder forever.",
    )
    dead_run_check_seconds: int = Field(
        30, ge=0, description="How often dead_run_sweeper looks for STARTED runs whose process has died (killed, out of memory) and marks "
        "them failed, so the run queue moves on; 0 turns it off (for runs on other machines, where Dagster's run monitoring does this).",
    )


class MonitoringSpec(_Strict):
    """monitoring_job: drift of the newest batches against the champion's training reference, and decay."""

    window_batches: int = Field(1, ge=1, description="The newest accepted batches that form one monitoring window.")
    sample_rows: int = Field(100_000, ge=1_000, description="Rows sampled from each side for the drift report.")
    reference_rows: int = Field(50_000, ge=1_000, description="Rows of the training data kept with each model as its reference.")
    max_drift_share: float = Field(
        0.3, gt=0, le=1, description="Data drift: more than this share of the feature columns drifted, or drifted columns carry more than this "
        "share of the champion's feature importance (gain).",
    )
    max_decay: float = Field(0.05, ge=0, le=1, description="How far the champion's primary metric may fall below its holdout value.")
    consecutive_windows: int = Field(2, ge=1, description="Windows in a row with drift or decay before retraining starts (K).")
    cooldown_hours: float = Field(6.0, ge=0, description="No drift-triggered retraining within this long of the previous one.")
    cron: str = Field("0 * * * *", description="hourly_monitoring, in cron syntax, UTC.")


class ScoringSpec(_Strict):
    landing_dir: str | None = Field(None, description="Unlabeled batches to score land here; default: the model's data/to_score.")


class ABSpec(_Strict):
    """A/B mode: sticky assignment by a request field, and a business outcome posted later to `POST /feedback`."""

    key_field: str | None = Field(
        None, description="The request field whose value (hashed) assigns a caller to the canary or the champion for good (a customer "
        "id); null: each request is assigned at random.",
    )
    higher_is_better: bool = Field(True, description="Whether a higher outcome (POST /feedback) is better (a conversion: yes; a loss: no).")
    max_outcome_drop: float = Field(0.0, ge=0, description="How far the canary's mean outcome may fall below the champion's.")
    min_feedback: int = Field(30, ge=1, description="Outcomes each version needs before the outcome is judged at all.")


class CanarySpec(_Strict):
    """How the canary (the challenger on a share of live traffic) is judged against the champion: an anytime-valid
    sequential test (core/sequential.py), so the window may be watched after every request and stopped early."""

    min_requests: int = Field(50, ge=1, description="Requests the canary must have answered before it can be judged.")
    false_alarm_rate: float = Field(0.05, gt=0, lt=0.5, description="The chance, over the whole canary however often it is looked at, "
                                    "that a canary as good as the champion is called worse (or a worse one within limits).")
    tight_at_requests: int = Field(500, ge=10, description="The request count at which the sequential interval is tightest.")
    max_error_rate_increase: float = Field(0.01, ge=0, le=1, description="The canary's server-error rate may exceed the champion's by at most this.")
    max_latency_ratio: float = Field(1.5, ge=1, description="The canary's typical (geometric mean) latency may be at most this multiple of the champion's.")
    max_disagreement: float = Field(
        0.1, ge=0, le=1, description="Share of the canary's rows on which its decision differs from the champion's on the same rows (the "
        "service scores each canary request with the champion too).",
    )
    ab: ABSpec = ABSpec()


class ServingSpec(_Strict):
    """`mlcicd serve` and the `deployment` asset (blue-green, canary, post-deployment budget)."""

    enabled: bool = Field(False, description="Deploy every promoted champion to the service at host:port (promotion_job and rollback_job).")
    host: str = Field("127.0.0.1", description="Where the service listens; loopback unless you decide otherwise.")
    port: int = Field(8000, ge=1, le=65535)
    canary_share: float = Field(0.0, ge=0, le=1, description="Share of requests answered by the canary (the challenger), when one is set.")
    sample_rows: int = Field(200, ge=1, description="Rows of the model's training reference used for the deployment's skew check.")
    skew_tolerance: float = Field(1e-6, ge=0, description="Largest allowed difference between the service's and batch scoring's predictions.")
    window_minutes: float = Field(15.0, gt=0, description="serving_metrics looks at the requests of this last window.")
    min_requests: int = Field(20, ge=1, description="Requests the live version needs in the window before its budget is judged.")
    max_error_rate: float = Field(0.01, ge=0, le=1, description="Budget: share of requests answered with a server error (5xx).")
    p95_latency_ms: float = Field(100.0, gt=0, description="Budget: p95 request latency of the live version.")
    canary: CanarySpec = CanarySpec()
    max_body_mb: float = Field(10.0, gt=0, description="Largest request body; a larger one is answered 413 while it is read, before parsing.")
    request_timeout_seconds: float = Field(
        10.0, gt=0, description="A request not answered in this time is answered 503 (the work is dropped; the service keeps serving). "
        "A /predict body of at most 16 KiB is answered on the event loop without this limit: it takes well under a millisecond.",
    )
    fallback_to_last_good: bool = Field(
        False, description="When the champion's files fail their check at start, serve the newest earlier champion (from the audit "
        "trail) whose files still match, and say so; false: refuse to start, with the reason.",
    )


class SimulatorSpec(_Strict):
    dataset: Literal["transactions", "merchants", "disputes"] = Field(
        "transactions", description="Which simulated table this model learns from (core/simulate.py): card transactions (fraud), "
        "their merchant category (multiclass), or disputes and their resolution time (regression).",
    )
    seed: int = 7
    batches: int = Field(4, ge=1)
    rows_per_batch: int = Field(25_000, ge=100)
    ci_rows: int = Field(40_000, ge=1_000, description="Rows simulated by ci_job when no data has landed yet.")


MODEL_NAME = r"^[a-z][a-z0-9_]*$"  # a Dagster key prefix, group and job-name part: lower case, digits and '_'


class CardSpec(_Strict):
    """Who owns the model and what it is for: the model card, and the owners of its assets in the Dagster UI."""

    owner: str = Field(
        "team:ml", pattern=r"^(team:[A-Za-z0-9_.-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$",
        description="The model's owner, as Dagster takes owners: an e-mail address or team:<name>.",
    )
    intended_use: str = Field("Not stated yet (card.intended_use).", description="What the model's predictions are for, and for whom.")
    limitations: str = Field(
        "Not stated yet (card.limitations).", description="Where it must not be used, and what it is known to get wrong.",
    )


class Config(_Strict):
    name: str | None = Field(
        None, pattern=MODEL_NAME, max_length=40,
        description="The model's name: its asset key prefix, group and job names (fraud__training_job). A model under "
        "mlcicd/defs/models/<name>/ defaults to its folder's name; a single mlcicd.yaml to 'model'.",
    )
    dataset: DatasetSpec
    model: ModelSpec = ModelSpec()
    gates: GateSpec = GateSpec()
    promotion: PromotionSpec = PromotionSpec()
    automation: AutomationSpec = AutomationSpec()
    monitoring: MonitoringSpec = MonitoringSpec()
    scoring: ScoringSpec = ScoringSpec()
    serving: ServingSpec = ServingSpec()
    tiers: Tiers = Tiers()
    simulator: SimulatorSpec = SimulatorSpec()
    card: CardSpec = CardSpec()

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, raw: Any) -> Any:
        """Gate settings left out of mlcicd.yaml take the defaults of the dataset's task."""
        if not isinstance(raw, dict) or not isinstance(raw.get("dataset"), dict):
            return raw
        defaults = TASK_GATE_DEFAULTS.get(raw["dataset"].get("task", "binary"))
        gates = raw.get("gates", {})
        if defaults is None or not isinstance(gates, dict):
            return raw
        return {**raw, "gates": {**defaults, **gates}}

    @model_validator(mode="after")
    def _metrics_fit_the_task(self) -> "Config":
        from mlcicd.core.metrics import HIGHER_IS_BETTER, TASK_METRICS

        task = self.dataset.task
        known = TASK_METRICS[task]
        named = {"gates.primary_metric": [self.gates.primary_metric], "gates.min_metrics": list(self.gates.min_metrics),
                 "gates.max_metrics": list(self.gates.max_metrics)}
        for key, metrics in named.items():
            for metric in metrics:
                if metric not in known:
                    close = difflib.get_close_matches(metric, known, n=1)
                    hint = f" (did you mean '{close[0]}'?)" if close else ""
                    raise ValueError(f"{key}: '{metric}' is not a {task} metric{hint}; {task} metrics are {', '.join(known)}")
        wrong_way = [m for m in self.gates.min_metrics if m not in HIGHER_IS_BETTER] + [m for m in self.gates.max_metrics if m in HIGHER_IS_BETTER]
        if wrong_way:
            raise ValueError(f"gates: {wrong_way} point the wrong way: floors (min_metrics) are for higher-is-better metrics, "
                             "ceilings (max_metrics) for lower-is-better ones")
        return self

    @model_validator(mode="after")
    def _tiers_use_distinct_models(self) -> "Config":
        if self.tiers.full.model_name_suffix == self.tiers.ci.model_name_suffix:
            raise ValueError("tiers.full and tiers.ci need different model_name_suffix values, so CI never moves the production champion")
        return self


def _field_names(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys allowed at a location, to suggest the closest one for a typo."""
    current: Any = model
    for part in loc[:-1]:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        annotation = fields[part].annotation
        current = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return list(getattr(current, "model_fields", {}) or {})


def _describe(error: dict, source: Path) -> str:
    loc = tuple(error["loc"])
    key = ".".join(str(p) for p in loc if p != "[key]") or "(top level)"
    if "[key]" in loc:
        return f"{source}: bad key '{key}': {error['msg']}"
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), _field_names(Config, loc), n=1)
        hint = f" (did you mean '{'.'.join(str(p) for p in loc[:-1] + (close[0],))}'?)" if close else ""
        return f"{source}: unknown key '{key}'{hint}"
    if error["type"] == "missing":
        return f"{source}: missing required key '{key}'"
    if error["type"] == "value_error":  # our own validators: the message already names the keys involved
        where = f" in '{key}'" if loc else ""
        return f"{source}: invalid{where}: {error['msg'].removeprefix('Value error, ')}"
    return f"{source}: bad value for '{key}': {error['msg']} (got {error.get('input')!r})"


def parse_config(raw: Any, source: Path) -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level, got {type(raw).__name__}")
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("\n".join(_describe(e, source) for e in exc.errors())) from None


def find_config_path(explicit: str | os.PathLike | None = None) -> Path:
    """The config file: an explicit path, else $MLCICD_CONFIG, else ./mlcicd.yaml."""
    path = Path(explicit or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_NAME)
    return path.expanduser().resolve()


def load_config(path: str | os.PathLike | None = None) -> tuple[Config, Path]:
    """The validated config. The file is read every time (an edit counts at once); parsing and validating it
    again is skipped while its text is unchanged (the config is frozen, so sharing it is safe)."""
    source = find_config_path(path)
    try:
        text = source.read_text()
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the config file ({exc.strerror})") from None
    return _parsed(text, source), source


@functools.lru_cache(maxsize=64)
def _parsed(text: str, source: Path) -> Config:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    return parse_config(raw, source)
