"""The feature path: the fitted state survives any store, and a mismatch is refused, never scored."""

import json

import lightgbm
import numpy as np
import pandas as pd
import pytest
import yaml

from mlcicd.core.features import FeatureState, feature_matrix, featurize, fit_features
from mlcicd.core.requests import check_rows, parse_body
from mlcicd.core.simulate import simulate_batch
from mlcicd.core.train import predict
from mlcicd_tests.support import shipped_config

from .conftest import REPO


def contract():
    from mlcicd.core.contract import load_contract

    return load_contract(REPO / "contracts" / "transactions.yaml").without("is_fraud")


@pytest.fixture(scope="module")
def spec():
    return shipped_config().dataset


def test_state_keeps_column_order_through_a_store_that_sorts_keys(spec):
    state = fit_features(simulate_batch(0, 2000), spec)
    assert state.categorical == spec.categorical_columns  # not alphabetical
    stored = FeatureState.from_dict(yaml.safe_load(yaml.safe_dump(state.to_dict(), sort_keys=True)))
    assert stored.feature_names == state.feature_names


def test_unseen_and_missing_categories_become_missing_not_another_category(spec):
    train = simulate_batch(0, 2000)
    state = fit_features(train, spec)
    rows = simulate_batch(1, 3).assign(channel=["pos", "carrier_pigeon", None])
    out = featurize(rows, state)
    assert out["channel"].iloc[0] == state.vocabularies["channel"].index("pos")
    assert np.isnan(out["channel"].iloc[1]) and np.isnan(out["channel"].iloc[2])
    assert list(out.columns) == state.feature_names


def test_a_few_rows_get_the_same_category_codes_as_a_large_batch(spec):
    """A request's few rows of text are looked up one by one, a batch's hashed through pandas: the codes must agree, unseen
    and empty text included."""
    from mlcicd.core.tasks import FEW_VALUES

    state = fit_features(simulate_batch(0, 2000), spec)
    few = simulate_batch(1, 4).assign(channel=["pos", "carrier_pigeon", state.vocabularies["channel"][-1], ""])
    many = pd.concat([few] * (FEW_VALUES // 4 + 1), ignore_index=True)
    columns = {name: few[name].to_numpy(dtype=object) for name in few.columns}
    alone, together = feature_matrix(columns, state), featurize(many, state).to_numpy()[:4]
    np.testing.assert_array_equal(alone, together)
    channel = state.feature_names.index("channel")
    assert alone[0, channel] == state.vocabularies["channel"].index("pos") and np.isnan(alone[1, channel]) and np.isnan(alone[3, channel])


def test_scoring_with_features_in_another_order_is_refused(spec):
    train = simulate_batch(0, 3000)
    state = fit_features(train, spec)
    booster = lightgbm.train({"objective": "binary", "verbosity": -1}, lightgbm.Dataset(featurize(train, state), train["is_fraud"]), 3)
    shuffled = FeatureState(state.numeric, list(reversed(state.categorical)), state.vocabularies, state.time_column)
    with pytest.raises(ValueError, match="training/serving skew"):
        predict(booster, shuffled, train)


def test_missing_feature_column_is_named(spec):
    state = fit_features(simulate_batch(0, 500), spec)
    with pytest.raises(ValueError, match=r"lacks feature column\(s\) \['amount'\]"):
        featurize(simulate_batch(1, 5).drop(columns=["amount"]), state)


def test_a_row_gets_the_same_features_alone_as_inside_a_batch_whatever_its_types(spec):
    """Serving featurizes one row from JSON (text, plain Python values); training a batch read from Parquet (categoricals,
    numbers). The same row must come out the same, to the bit."""
    import pandas as pd

    state = fit_features(simulate_batch(0, 5000), spec)
    batch = simulate_batch(1, 400)
    together = featurize(batch, state)
    for i in (0, 17, 399):
        from_json = pd.DataFrame.from_records([{k: (v.isoformat() if hasattr(v, "isoformat") else v)
                                                for k, v in batch.iloc[i].to_dict().items()}])
        alone = featurize(from_json, state)
        np.testing.assert_array_equal(alone.to_numpy(), together.iloc[[i]].to_numpy())
        # and as the service holds it: the body's columns, checked against the contract, with no table built
        body = json.dumps({"records": from_json.to_dict(orient="records")}).encode()
        as_served = feature_matrix(check_rows(parse_body(body, "application/json"), contract(), ignore=("is_fraud",)), state)
        np.testing.assert_array_equal(as_served, together.iloc[[i]].to_numpy())


def test_a_comparison_scores_each_model_with_its_own_categories(spec):
    """Evaluation builds the holdout's features once when both models share their inputs; a champion that learned other
    categories must still be scored with its own codes."""
    from mlcicd.core.evaluate import evaluate_models
    from mlcicd.core.train import train_model

    config = shipped_config()
    older = train_model(simulate_batch(0, 4000), spec, config.model, 20)
    renamed = simulate_batch(1, 4000).assign(card_type=lambda frame: frame["card_type"].astype(str).replace("credit", "zz_credit"))
    newer = train_model(renamed, spec, config.model, 20)  # its codes: debit 0, prepaid 1; the older model's: credit 0, debit 1, ...
    assert older.booster.feature_importance()[older.features.feature_names.index("card_type")] > 0, "the older model uses the column"
    holdout = simulate_batch(2, 3000)
    out = evaluate_models((newer.booster, newer.features), (older.booster, older.features), holdout, target=spec.target,
                          slice_columns=spec.slice_columns, gates=config.gates, seed=0)
    (_, new_scores), (_, old_scores) = out["predictions"]  # each (labels, predictions)
    np.testing.assert_array_equal(new_scores, predict(newer.booster, newer.features, holdout))
    np.testing.assert_array_equal(old_scores, predict(older.booster, older.features, holdout))
