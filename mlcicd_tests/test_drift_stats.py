"""The drift gate's own statistics (core/drift.py) agree with Evidently's, column by column and in the count of drifted
columns, on the simulator's scenarios, with Evidently's distances (more than 1,000 rows) and its tests (fewer)."""

import numpy as np
import pandas as pd
import pytest

from mlcicd.core import drift
from mlcicd.core.monitoring import drift_report, evidently_drift
from mlcicd.core.simulate import SCENARIOS, simulate_batch

NUMERIC = ["amount", "customer_age", "account_age_days", "txn_count_24h", "distance_from_home_km", "is_international", "device_risk_score"]
CATEGORICAL = ["merchant_category", "channel", "region", "card_type"]
REFERENCE = pd.concat([simulate_batch(i, 8000) for i in range(3)], ignore_index=True)


@pytest.mark.parametrize("rows", [600, 8000])
@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s != "schema_break"])
def test_the_gate_and_evidently_find_the_same_drift(scenario, rows):
    current = simulate_batch(10, 8000, scenario=scenario)
    ours = drift_report(REFERENCE, current, NUMERIC, CATEGORICAL, sample_rows=rows, seed=3)
    theirs = evidently_drift(REFERENCE, current, NUMERIC, CATEGORICAL, sample_rows=rows, seed=3, drift_share=0.3)
    for column, entry in ours["columns"].items():
        other = theirs["columns"][column]
        assert entry["method"] == other["method"] and entry["threshold"] == other["threshold"], (column, entry, other)
        assert entry["value"] == pytest.approx(other["value"], rel=1e-9, abs=1e-12), (column, entry, other)
    assert len(ours["drifted"]) == theirs["drifted_count"], (ours["drifted"], theirs["drifted_count"])
    if scenario == "covariate_drift":
        assert {"amount", "channel"} <= set(ours["drifted"])
    if scenario == "baseline" and rows > 1000:
        assert ours["drifted"] == []


def test_psi_and_the_edge_cases_say_what_they_measured():
    rng = np.random.default_rng(0)
    same = drift.column_drift(pd.Series(rng.normal(size=5000)), pd.Series(rng.normal(size=5000)), numeric=True)
    moved = drift.column_drift(pd.Series(rng.normal(size=5000)), pd.Series(rng.normal(1, 1, size=5000)), numeric=True)
    assert not same["drifted"] and same["psi"] < 0.02
    assert moved["drifted"] and moved["psi"] > 0.5 and moved["value"] == pytest.approx(1.0, abs=0.1)  # one std, normed
    empty = drift.column_drift(pd.Series([1.0, 2.0] * 600), pd.Series([np.nan, np.inf] * 600), numeric=True)
    assert empty["drifted"] and "current sample has no values" in empty["why"], "fails closed, saying why"

