"""The simulator: deterministic, realistic difficulty, and scenarios that change what a model learns."""

from pathlib import Path
import pandas as pd
import pytest
from click.testing import CliRunner

from mlcicd.cli import main
from mlcicd.core.contract import validate
from mlcicd.core.dataset import split_by_time
from mlcicd.core.metrics import task_metrics
from mlcicd.core.simulate import simulate_batch
from mlcicd.core.train import train_model
from mlcicd_tests.support import shipped_config


def days(first: int, count: int, rows: int, scenario: str = "baseline", seed: int = 7) -> pd.DataFrame:
    return pd.concat([simulate_batch(i, rows, scenario, seed) for i in range(first, first + count)], ignore_index=True)


@pytest.fixture(scope="module")
def config():
    return shipped_config()


@pytest.fixture(scope="module")
def baseline_model(config):
    model = config.model.model_copy(update={"num_boost_round": 200})
    return train_model(days(0, 6, 10_000), config.dataset, model, model.num_boost_round)


def auc(model, frame) -> float:
    return task_metrics("binary", frame["is_fraud"], model.predict(frame))["roc_auc"]


def test_same_seed_same_data_other_seed_other_data():
    pd.testing.assert_frame_equal(simulate_batch(3, 2000, seed=11), simulate_batch(3, 2000, seed=11))
    assert not simulate_batch(3, 2000, seed=11).equals(simulate_batch(3, 2000, seed=12))
    assert not simulate_batch(3, 2000).equals(simulate_batch(4, 2000))


def test_batches_are_consecutive_days_with_unique_ids():
    frame = days(0, 3, 1000)
    assert frame["transaction_id"].is_unique
    assert frame["event_time"].dt.normalize().nunique() == 3
    assert frame["event_time"].is_monotonic_increasing


def test_baseline_meets_the_shipped_contract_and_is_realistically_hard(config, baseline_model):
    from mlcicd.core.contract import load_contract

    batch = simulate_batch(0, 5000)
    assert validate(batch, load_contract(Path(__file__).resolve().parents[1] / "contracts/transactions.yaml")).passed
    frame = days(6, 2, 10_000)
    assert 0.005 < frame["is_fraud"].mean() < 0.05, "fraud must be rare"
    assert 0.84 <= auc(baseline_model, frame) <= 0.94, "a good model should be good, not perfect"


def test_concept_drift_breaks_what_the_model_learned(baseline_model):
    before = auc(baseline_model, days(6, 2, 10_000))
    after = auc(baseline_model, days(6, 2, 10_000, "concept_drift"))
    assert after < before - 0.15


def test_covariate_drift_moves_the_inputs():
    base, drifted = days(6, 2, 10_000), days(6, 2, 10_000, "covariate_drift")
    assert (drifted["channel"] == "online").mean() > (base["channel"] == "online").mean() + 0.1
    assert drifted["amount"].median() > base["amount"].median() * 1.3
    assert drifted["customer_age"].mean() < base["customer_age"].mean() - 5


def test_degraded_quality_passes_the_contract_but_teaches_less(config, baseline_model):
    from mlcicd.core.contract import load_contract

    degraded = days(0, 6, 10_000, "degraded_quality")
    assert validate(degraded.head(5000), load_contract(Path(__file__).resolve().parents[1] / "contracts/transactions.yaml")).passed
    assert degraded["device_risk_score"].isna().mean() > base_null_share() + 0.1
    weak = train_model(degraded, config.dataset, config.model.model_copy(update={"num_boost_round": 200}), 200)
    clean_holdout = days(6, 2, 10_000)
    assert auc(weak, clean_holdout) < auc(baseline_model, clean_holdout) - 0.02


def base_null_share() -> float:
    return simulate_batch(0, 5000)["device_risk_score"].isna().mean()


def test_schema_break_breaks_the_contract():
    from mlcicd.core.contract import load_contract

    result = validate(simulate_batch(0, 500, "schema_break"), load_contract(Path(__file__).resolve().parents[1] / "contracts/transactions.yaml"))
    assert not result.passed
    text = " ".join(result.problems)
    assert "column 'amount' is missing" in text
    assert "column 'amount_usd' is not in the contract" in text
    assert "customer_age" in text


def test_split_keeps_the_newest_rows_for_the_holdout():
    train, holdout = split_by_time(days(0, 5, 1000).sample(frac=1, random_state=1), "event_time", 0.2)
    assert len(holdout) == 1000 and len(train) == 4000
    assert train["event_time"].max() <= holdout["event_time"].min()
    assert not set(train["transaction_id"]) & set(holdout["transaction_id"])


def test_cli_simulate_writes_numbered_batches_after_existing_ones(project):
    runner = CliRunner()
    first = runner.invoke(main, ["simulate", "--batches", "2", "--rows", "1000"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(main, ["simulate", "--batches", "1", "--rows", "1000", "--scenario", "concept_drift", "--format", "csv"])
    assert second.exit_code == 0, second.output
    names = sorted(p.name for p in project.landing_dir.iterdir())
    assert names == ["batch-00000-baseline.parquet", "batch-00001-baseline.parquet", "batch-00002-concept_drift.csv"]
    assert len(pd.read_csv(project.landing_dir / names[-1])) == 1000
