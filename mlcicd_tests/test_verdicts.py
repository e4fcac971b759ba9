"""Verdicts that are right on real data, piece by piece: the contract's two layers, `init`'s data-fitted settings, and
gates that decide only on evidence (and say how much data they need when they cannot)."""

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from mlcicd.cli import main
from mlcicd.core import gates
from mlcicd.core.contract import parse_contract, validate
from mlcicd.core.infer import freeze_contract, infer_dataset
from mlcicd.core.stats import adjust


def frozen(frame: pd.DataFrame, **kwargs) -> dict:
    return freeze_contract(frame, **{"target": "label", "id_column": None, "time_column": None, "task": "binary", **kwargs})


@pytest.fixture
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame({
        "loan_id": np.arange(1000, 1000 + n),
        "applied_at": pd.date_range("2026-01-01", periods=n, freq="h"),
        "amount": rng.uniform(500, 17_500, n).round(2),
        "age": rng.integers(18, 80, n),
        "region": rng.choice(["north", "south", "east"], n),
        "label": rng.integers(0, 2, n),
    })


def test_freeze_writes_hard_rules_and_soft_expectations(reference):
    contract = frozen(reference, id_column="loan_id", time_column="applied_at")["columns"]
    assert contract["loan_id"] == {"dtype": "int", "unique": True}, "no range on an id: the next batch's ids are larger"
    assert contract["applied_at"] == {"dtype": "datetime", "not_in_future": True}, "no range on a time"
    assert contract["amount"]["min"] == 0 and "max" not in contract["amount"], "a physical bound, not the observed maximum"
    assert contract["amount"]["expected"]["max"] >= reference["amount"].max()
    assert contract["region"]["expected"]["values"] == ["east", "north", "south"] and "allowed" not in contract["region"]
    assert contract["label"] == {"dtype": "int", "allowed": [0, 1], "min_distinct": 2}


def test_an_unusual_batch_is_accepted_and_reported_an_impossible_one_is_not(reference):
    contract = parse_contract(frozen(reference, id_column="loan_id", time_column="applied_at"), "test")
    usual = reference.iloc[:100].assign(loan_id=np.arange(5000, 5100))  # new, larger ids: nothing unusual
    result = validate(usual, contract)
    assert result.passed and result.unusual == []

    unusual = usual.copy()
    unusual.loc[unusual.index[:30], "amount"] = 18_424.0 * 2  # well above the usual maximum
    unusual.loc[unusual.index[:5], "region"] = "west"  # a category never seen
    unusual.loc[unusual.index[:3], "age"] = np.nan  # a missing age: features may be missing
    result = validate(unusual, contract)
    assert result.passed, result.problems
    kinds = {(f["column"], f["kind"]) for f in result.unusual}
    assert {("amount", "above_expected"), ("region", "unseen_category"), ("age", "more_missing")} <= kinds
    assert any("never seen before, e.g. 'west'" in f["sentence"] for f in result.unusual)

    impossible = usual.copy()
    impossible.loc[impossible.index[0], "amount"] = -3.0
    impossible.loc[impossible.index[1], "label"] = 7
    result = validate(impossible, contract)
    assert not result.passed
    assert any("'amount'" in p and "below the minimum 0" in p for p in result.problems)
    assert any("'label'" in p and "not among the allowed values" in p for p in result.problems)


def test_every_failing_rule_of_a_column_is_listed():
    contract = parse_contract({"columns": {"age": {"dtype": "int", "min": 0, "max": 120}}}, "test")
    result = validate(pd.DataFrame({"age": [30.5, 40.0, -1.0, 500.0, 700.0]}), contract)
    assert not result.passed
    joined = " | ".join(result.problems)
    assert "not whole numbers" in joined and "below the minimum 0" in joined and "2 value(s) above the maximum 120" in joined, joined


def test_unseen_category_goes_to_the_models_unknown_branch(reference):
    from mlcicd.config import DatasetSpec
    from mlcicd.core.features import featurize, fit_features

    spec = DatasetSpec(contract="c.yaml", target="label", categorical_columns=["region"], id_column="loan_id", time_column="applied_at")
    state = fit_features(reference, spec)
    codes = featurize(reference.iloc[:3].assign(region=["north", "west", None]), state)["region"]
    assert codes.iloc[0] == state.vocabularies["region"].index("north") and codes.iloc[1:].isna().all()


def test_without_an_id_identical_rows_are_different_records_unless_refused():
    allowed = gates.unique_ids_gate(3, None, [{"age": 30, "fare": 7.25}], policy="allow")
    assert allowed.passed and "{'age': 30, 'fare': 7.25}" in allowed.reason and "duplicates: refuse" in allowed.reason
    refused = gates.unique_ids_gate(3, None, [{"age": 30}], policy="refuse")
    assert not refused.passed
    leak = gates.leakage_gate(4, None, None, identical_rows_allowed=True)
    assert leak.passed and "look exactly like train rows" in leak.reason
    assert not gates.leakage_gate(4, None, None).passed


def test_init_drops_a_written_index_proposes_group_slices_and_reports_duplicates(tmp_path):
    rng = np.random.default_rng(1)
    n = 600
    frame = pd.DataFrame({
        "fare": rng.choice([7.25, 8.05, 13.0], n), "pclass": rng.choice(["1st", "2nd", "3rd"], n),
        "embarked": rng.choice(list("CQSXYZ"), n), "sex": rng.choice(["female", "male"], n), "survived": rng.integers(0, 2, n),
    })
    frame.to_csv(tmp_path / "passengers.csv")  # with the data frame's index: an "Unnamed: 0" column
    guess = infer_dataset(pd.read_csv(tmp_path / "passengers.csv"), "survived")
    assert guess.drop_columns == ["Unnamed: 0"] and guess.id_column is None
    assert guess.slice_columns[0] == "sex", "a group column first"
    assert guess.duplicate_rows > 0 and set(guess.duplicate_examples[0]) == {"fare", "pclass", "embarked", "sex", "survived"}

    result = CliRunner().invoke(main, ["init", "--data", str(tmp_path / "passengers.csv"), "--target", "survived", "--output", str(tmp_path / "m.yaml")])
    assert result.exit_code == 0, result.output
    assert "exact duplicate row(s), e.g. {" in result.output and "Unnamed: 0: a row index" in result.output
    text = (tmp_path / "m.yaml").read_text()
    config = yaml.safe_load(text)
    assert config["dataset"]["drop_columns"] == ["Unnamed: 0"] and config["dataset"]["duplicates"] == "allow"
    for key in ("max_regression", "max_calibration_error", "slice_min_rows", "min_metrics"):
        line = next(line for line in text.splitlines() if line.strip().startswith(f"{key}:"))
        assert "#" in line, f"{key} is explained in a comment"
    # 600 rows: a holdout of ~120 cannot resolve the shipped 0.02 margin or 0.02 calibration tolerance
    assert config["gates"]["max_regression"] > 0.02 and config["gates"]["max_calibration_error"] > 0.02


def test_calibration_is_refused_on_evidence_and_says_how_much_data_it_needs():
    noisy = gates.calibration_gate(0.06, 0.02, "binary", noise=0.09, rows=154)
    assert noisy.passed and "On 154 holdout rows" in noisy.reason and "needs about 3," in noisy.reason
    assert not gates.calibration_gate(0.12, 0.02, "binary", noise=0.09, rows=154).passed
    assert not gates.calibration_gate(0.05, 0.02, "binary", noise=0.01, rows=20_000).passed


def test_an_undecided_comparison_says_so_and_how_many_rows_it_needs():
    verdict = gates.no_regression_gate(
        "roc_auc", 0.80, 0.80, champion_version="1", tolerance=0.02, bootstrap={"delta": 0.0, "lower": -0.05, "sd": 0.03}, rows=154,
    )
    assert not verdict.passed and "Undecided rather than worse" in verdict.reason and "has 154 rows" in verdict.reason
    assert verdict.numbers["rows_needed"] > 154
    worse = gates.no_regression_gate(
        "roc_auc", 0.70, 0.80, champion_version="1", tolerance=0.02, bootstrap={"delta": -0.1, "lower": -0.13, "sd": 0.02}, rows=5000,
    )
    assert not worse.passed and "it is worse than the champion" in worse.reason


def test_holm_and_benjamini_hochberg():
    p = {"a": 0.01, "b": 0.02, "c": 0.03, "d": 0.5}
    assert adjust(p, "holm") == pytest.approx({"a": 0.04, "b": 0.06, "c": 0.06, "d": 0.5})
    assert adjust(p, "benjamini_hochberg") == pytest.approx({"a": 0.04, "b": 0.04, "c": 0.04, "d": 0.5})


def test_slices_refuse_a_real_fall_not_noise_and_catch_a_slice_broken_in_the_newest_data():
    def slices(**rows):
        return {"region": {name: {"rows": n, "roc_auc": auc, "judged": True, "sd": sd} for name, (n, auc, sd) in rows.items()}}

    noise = gates.slice_gate(
        "roc_auc", slices(north=(16, 0.70, 0.12), south=(900, 0.88, 0.01)),
        {"region=north": {"delta": -0.15, "sd": 0.12, "champion": 0.85}, "region=south": {"delta": 0.0, "sd": 0.01, "champion": 0.88}},
        champion_version="1", tolerance=0.05,
    )
    assert noise.passed, "a fall of 0.15 on 16 rows is noise"
    real = gates.slice_gate(
        "roc_auc", slices(north=(800, 0.70, 0.015), south=(900, 0.88, 0.01)),
        {"region=north": {"delta": -0.15, "sd": 0.015, "champion": 0.85}, "region=south": {"delta": 0.0, "sd": 0.01, "champion": 0.88}},
        champion_version="1", tolerance=0.05,
    )
    assert not real.passed and "region=north" in real.reason and "region=south" not in real.reason
    # both models judged on the same broken labels agree; the slice is still caught against the champion's promotion
    broken = gates.slice_gate(
        "roc_auc", slices(north=(800, 0.45, 0.02), south=(900, 0.88, 0.01)),
        {"region=north": {"delta": 0.0, "sd": 0.01, "champion": 0.45}, "region=south": {"delta": 0.0, "sd": 0.01, "champion": 0.88}},
        champion_version="1", tolerance=0.05, at_promotion={"slices": {"region=north": [0.86, 0.02, 700], "region=south": [0.88, 0.01, 800]}},
    )
    assert not broken.passed and "when champion version 1 was promoted" in broken.reason and "broken" in broken.reason


def test_label_quality_names_a_label_problem_and_leaves_normal_noise_alone():
    promoted = {"metric": 0.93, "sd": 0.01, "rows": 1600}
    collapse = gates.label_quality_gate("roc_auc", 0.59, 0.02, 2000, champion_version="2", at_promotion=promoted, tolerance=0.1)
    assert not collapse.passed and "label corruption or concept drift" in collapse.reason
    normal = gates.label_quality_gate("roc_auc", 0.91, 0.01, 2000, champion_version="2", at_promotion=promoted, tolerance=0.1)
    assert normal.passed
    assert not gates.label_quality_gate("roc_auc", 0.9, 0.01, 10, champion_version="2", at_promotion=None, tolerance=0.1).passed


def test_promotion_names_the_label_problem_before_the_model_gates():
    from mlcicd.core.promotion import problems_from

    problems = problems_from({
        "meets_thresholds": {"passed": False, "reason": "roc_auc is 0.58"}, "label_quality": {"passed": False, "reason": "labels disagree"},
        "identity": {"passed": True, "reason": ""},
    })
    assert problems[0].startswith("gate label_quality") and "judged on the data that label_quality flagged" in problems[1]


@pytest.fixture
def cpu_hog():
    """Two busy processes (one per core) for at most 60 s: the machine a latency gate must not be fooled by."""
    import subprocess
    import sys

    code = "import time\nend = time.time() + 60\nwhile time.time() < end:\n    pass\n"
    hogs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    yield
    for hog in hogs:
        hog.kill()
        hog.wait()


def test_latency_is_judged_against_the_champion_measured_beside_it_on_a_busy_machine(cpu_hog):
    from mlcicd.config import DatasetSpec, GateSpec, ModelSpec
    from mlcicd.core.evaluate import measure_latency
    from mlcicd.core.simulate import simulate_batch
    from mlcicd.core.train import train_model

    frame = simulate_batch(0, 3000)
    spec = DatasetSpec(contract="c.yaml", target="is_fraud", id_column="transaction_id", time_column="event_time",
                       categorical_columns=["merchant_category", "channel", "region", "card_type"])
    budget = GateSpec().latency  # the shipped ratio: over a budget on a busy machine, at most 1.5x the champion
    tiny = {"one_row_p95_ms": 0.01, "batch_1000_p95_ms": 0.01}  # budgets no model meets: the machine is "busy" for both

    def model(rounds: int, leaves: int, seed: int, rate: float = 0.05):
        params = {"num_leaves": leaves, "learning_rate": rate, "min_data_in_leaf": 5}
        trained = train_model(frame, spec, ModelSpec(num_threads=1, seed=seed, early_stopping_rounds=10_000, params=params), rounds)
        return trained.booster, trained.features

    # the slow one learns so slowly that it keeps every one of its 1,500 trees
    champion, alike, slow = model(60, 15, 1), model(60, 15, 2), model(1500, 63, 3, rate=0.001)
    assert slow[0].best_iteration > 1000
    for candidate, should_pass in ((alike, True), (slow, False)):
        mine, theirs = measure_latency([candidate, champion], frame, repeats=30, blocks=3)
        if should_pass:  # a model like the champion stays within the shipped budgets even under the hog (the 1,500-tree
            # one need not: 276 ms against 250 for 1,000 rows was seen on a slow day; the ratio below is what judges it)
            shipped = gates.budget_gate(mine, 100_000, budget.budgets_ms, 50.0, max_ratio=budget.max_ratio, champion_latency=theirs)
            assert shipped.passed, f"within the shipped budgets even under the hog: {shipped.reason}"
        busy = gates.budget_gate(mine, 100_000, tiny, 50.0, max_ratio=budget.max_ratio, champion_latency=theirs)
        assert busy.passed is should_pass, busy.reason
    assert "the champion's time measured together" in busy.reason
    alone = gates.budget_gate(mine, 100_000, tiny, 50.0, champion_latency={"one_row_p95_ms": 0.001, "batch_1000_p95_ms": 0.001})
    assert not alone.passed and "over the budget of 0.01 ms" in alone.reason, "the champion within the budget: the model is slow"


def test_a_candidate_as_fast_as_the_champion_at_the_edge_of_a_budget_is_not_called_slow():
    """Seen on ISLR Caravan in CI on a slow machine: 53.65 ms against a 50 ms budget, the champion at 48 ms beside it. A
    model as fast as the champion is not refused for the machine's noise; a clearly slower one, or one far over, still is."""
    budgets = {"one_row_p95_ms": 50.0}
    champion = {"one_row_p95_ms": 48.0}

    def judged(value: float, ratio: float):
        return gates.budget_gate({"one_row_p95_ms": value, "one_row_ratio": ratio}, 100_000, budgets, 50.0, champion_latency=champion)

    edge = judged(53.65, 1.08)
    assert edge.passed and "this machine cannot tell the two apart" in edge.reason and "over the budget of 50 ms by 7%" in edge.reason
    assert not judged(53.65, 1.3).passed, "30% slower than the champion beside it: slow on its own"
    assert not judged(61.0, 1.1).passed, "more than 20% over the budget: over it, whatever the champion does"
