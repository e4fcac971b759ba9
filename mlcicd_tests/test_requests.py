"""The service's fast request check and pandera's batch check apply one contract: they must agree."""

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from mlcicd.core.contract import load_contract, validate
from mlcicd.core.requests import RequestError, as_utc_times, check_rows, parse_body
from mlcicd.core.simulate import simulate_batch

from .conftest import REPO

CONTRACT = load_contract(REPO / "contracts" / "transactions.yaml").without("is_fraud")
GOOD = simulate_batch(3, 20).drop(columns=["is_fraud"])

MUTATIONS = {
    "valid": lambda f: f,
    "missing required column": lambda f: f.drop(columns=["amount"]),
    "extra column": lambda f: f.assign(shoe_size=44),
    "text in a number": lambda f: f.assign(amount=f["amount"].astype(object).where(f.index != 0, "lots")),
    "below minimum": lambda f: f.assign(amount=f["amount"].where(f.index != 0, -1.0)),
    "above maximum": lambda f: f.assign(customer_age=f["customer_age"].where(f.index != 0, 500)),
    "unknown category": lambda f: f.assign(channel=f["channel"].astype(object).where(f.index != 0, "fax")),
    "null where not allowed": lambda f: f.assign(region=f["region"].astype(object).where(f.index != 0, None)),
    "null where allowed": lambda f: f.assign(device_risk_score=np.nan),
    "fraction in an int": lambda f: f.assign(customer_age=f["customer_age"].astype(float).where(f.index != 0, 40.5)),
    "not a time": lambda f: f.assign(event_time=f["event_time"].astype(str).where(f.index != 0, "soon")),
    "duplicate id": lambda f: f.assign(transaction_id=f["transaction_id"].where(f.index != 1, f["transaction_id"].iloc[0])),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_request_check_agrees_with_the_batch_contract(mutation):
    frame = MUTATIONS[mutation](GOOD.copy())
    batch_verdict = validate(frame, CONTRACT).passed
    try:
        check_rows(frame, CONTRACT)
        request_verdict = True
    except RequestError as error:
        request_verdict = False
        assert error.status == 422 and error.problems
    assert request_verdict == batch_verdict, mutation
    assert batch_verdict == (mutation in ("valid", "null where allowed"))


def test_a_csv_body_is_read_as_text_and_coerced_by_the_contract():
    frame = parse_body(GOOD.head(3).to_csv(index=False).encode(), "text/csv; charset=utf-8")
    checked = check_rows(frame, CONTRACT)
    assert len(checked["amount"]) == 3 and checked["amount"].dtype == "float64"
    assert pd.api.types.is_datetime64_any_dtype(checked["event_time"])


ISO_TEXT = st.builds(
    lambda day, clock, fraction, sep, offset, kind: day + ("" if kind == 0 else sep + clock[:5 if kind == 1 else 8] + (fraction if kind == 2 else ""))
    + (offset if kind else ""),
    st.dates(min_value=date(1600, 1, 1), max_value=date(2300, 12, 31)).map(date.isoformat),
    st.times().map(lambda t: t.strftime("%H:%M:%S")), st.sampled_from(["", ".1", ".12", ".123456", ".5"]), st.sampled_from(["T", " "]),
    st.sampled_from(["", "Z", "+05:30", "-08:00", "+00:00", "+14:00"]), st.integers(0, 2),
) | st.sampled_from(["2024-02-30", "2024-01-01T24:00", "2024-01-01T10:00:60", "2024-13-01", "0999-01-01"])


@settings(max_examples=300, deadline=None)
@given(st.lists(ISO_TEXT, min_size=1, max_size=4), st.lists(st.booleans(), min_size=4, max_size=4))
def test_times_read_as_iso_text_are_read_as_pandas_reads_them(values, present):
    """Plain ISO 8601 text is read by Python's parser (microseconds for a one-row request); pandas' parser reads the rest.
    Both must give the same instant (UTC, no zone) or the same refusal (NaT), including invalid dates and years beyond
    what datetime64[ns] holds."""
    raw, shown = np.array(values, dtype=object), np.array(present[:len(values)])
    expected = pd.to_datetime(pd.Series(np.where(shown, raw, None)), errors="coerce", format="mixed", utc=True).dt.tz_localize(None)
    np.testing.assert_array_equal(as_utc_times(raw, shown), expected.to_numpy(dtype="datetime64[ns]"))
