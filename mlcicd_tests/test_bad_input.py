"""The worst day upstream: a generated corpus of bad batches, each rejected with a clear reason and kept in
quarantine with a report, nothing lost, the sensor still running afterwards; and property-based tests of
the data contract (hypothesis)."""

import gzip
import hashlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcicd.core.contract import certainly_meets, load_contract, validate
from mlcicd.core.ingest import list_accepted
from mlcicd.core.requests import RequestError, check_rows
from mlcicd.core.simulate import simulate_batch

from .conftest import REPO

GOOD = simulate_batch(7, 400)


def first_row(frame: pd.DataFrame, column: str, value) -> pd.DataFrame:
    out = frame.copy()
    out[column] = out[column].astype(object)
    out.loc[out.index[0], column] = value
    return out


def parquet(frame):
    return lambda path: frame.to_parquet(path, index=False)


def csv(frame, **kwargs):
    return lambda path: frame.to_csv(path, index=False, **kwargs)


def raw(data: bytes):
    return lambda path: path.write_bytes(data)


def truncated(path):
    parquet(GOOD)(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# name -> (file name, how to write it, words the report must contain)
CORPUS = {
    "missing column": ("missing.parquet", parquet(GOOD.drop(columns=["amount"])), "column 'amount' is missing"),
    "extra column": ("extra.parquet", parquet(GOOD.assign(loyalty_tier="gold")), "column 'loyalty_tier' is not in the contract"),
    "renamed column": ("renamed.parquet", parquet(GOOD.rename(columns={"amount": "amount_eur"})), "renamed upstream?"),
    "column in other case": ("case.parquet", parquet(GOOD.rename(columns={"amount": "Amount"})), "column 'amount' is missing"),
    "text in a number column": ("text_number.parquet", parquet(GOOD.assign(customer_age=GOOD["customer_age"].astype(str).where(GOOD.index != 0, "forty"))), "customer_age"),
    "number in a text column": ("number_text.parquet", parquet(GOOD.assign(channel=5)), "channel"),
    "fraction in an int column": ("fraction.parquet", parquet(GOOD.assign(customer_age=GOOD["customer_age"] + 0.5)), "not whole numbers"),
    "NaN where none allowed": ("nan.parquet", parquet(first_row(GOOD, "amount", np.nan)), "missing value(s) where none are allowed"),
    "infinity": ("inf.parquet", parquet(GOOD.assign(amount=GOOD["amount"].where(GOOD.index != 0, np.inf))), "amount"),
    "minus infinity": ("minf.parquet", parquet(GOOD.assign(distance_from_home_km=GOOD["distance_from_home_km"].where(GOOD.index != 0, -np.inf))), "distance_from_home_km"),
    "empty table": ("empty.parquet", parquet(GOOD.iloc[:0]), "the batch has 0 row(s)"),
    "zero-byte file": ("zero.csv", raw(b""), "the file is empty (0 bytes)"),
    "truncated parquet": ("truncated.parquet", truncated, "cannot be read as parquet"),
    "text file named .parquet": ("fake.parquet", raw(b"id,amount\n1,2\n"), "cannot be read as parquet"),
    "binary garbage named .csv": ("garbage.csv", raw(bytes(range(256)) * 20), "cannot be read as csv"),
    "csv with the wrong delimiter": ("semicolon.csv", csv(GOOD, sep=";"), "separated by semicolons, not commas"),
    "csv in another encoding": ("utf16.csv", csv(GOOD, encoding="utf-16"), "it is UTF-16 encoded"),
    "gzip bytes named .csv": ("packed.csv", raw(gzip.compress(GOOD.to_csv(index=False).encode())), "it is gzip-compressed"),
    "numbers stored as text": ("text_amounts.parquet", parquet(GOOD.assign(amount=GOOD["amount"].astype(str))), "numbers stored as text"),
    "labels stored as decimals": ("float_labels.parquet", parquet(GOOD.assign(is_fraud=GOOD["is_fraud"].astype(float))), "stored as decimals"),
    "a missing whole number": ("no_age.csv", csv(first_row(GOOD, "customer_age", None)), "missing value(s) where whole-number values are required"),
    "csv with a duplicated header": ("dup_header.csv", raw(b"amount,amount\n1,2\n"), "is missing"),
    "duplicate ids": ("dup_ids.parquet", parquet(GOOD.assign(transaction_id=GOOD["transaction_id"].where(GOOD.index != 1, GOOD["transaction_id"].iloc[0]))), "duplicated value(s)"),
    "missing labels": ("no_labels.parquet", parquet(first_row(GOOD, "is_fraud", None)), "is_fraud"),
    "label column absent": ("unlabeled.parquet", parquet(GOOD.drop(columns=["is_fraud"])), "column 'is_fraud' is missing"),
    "one-class labels": ("one_class.parquet", parquet(GOOD.assign(is_fraud=0)), "one-class labels"),
    "label outside its classes": ("label_2.parquet", parquet(first_row(GOOD, "is_fraud", 2)), "is_fraud"),
    "out of range high": ("too_old.parquet", parquet(first_row(GOOD, "customer_age", 300)), "customer_age"),
    "out of range low": ("negative.parquet", parquet(first_row(GOOD, "amount", -10.0)), "amount"),
    "unknown category": ("category.parquet", parquet(first_row(GOOD, "channel", "carrier pigeon")), "channel"),
    "timestamps in the future": ("future.parquet", parquet(GOOD.assign(event_time=pd.Timestamp.now() + pd.Timedelta(days=30))), "in the future"),
    "unparseable timestamps": ("bad_time.csv", csv(first_row(GOOD, "event_time", "yesterday-ish")), "event_time"),
    "very wide file": ("wide.parquet", parquet(pd.concat([GOOD, pd.DataFrame(np.zeros((len(GOOD), 500)), columns=[f"x{i}" for i in range(500)])], axis=1)), "500 columns are not in the contract"),
    "very long file, bad at the end": ("long.parquet", parquet(first_row(simulate_batch(8, 300_000).iloc[::-1].reset_index(drop=True), "amount", -1.0)), "amount"),
    "unsupported file type": ("batch.xlsx", raw(b"PK\x03\x04 not really excel"), "unsupported file type"),
    "a pickle": ("batch.pkl", raw(b"\x80\x04\x95 cos\nsystem\n"), "unsupported file type"),
    "file name with spaces": ("my batch (final).parquet", parquet(GOOD.drop(columns=["region"])), "region"),
    "unicode file name": ("données-été-批次.parquet", parquet(GOOD.drop(columns=["card_type"])), "card_type"),
    "dots in the file name": ("batch../../2024..parquet".replace("/", "_"), parquet(GOOD.drop(columns=["channel"])), "channel"),
}


def test_the_corpus_has_at_least_30_kinds():
    assert len(CORPUS) >= 30


def test_every_bad_batch_is_quarantined_with_a_reason_and_nothing_is_lost(project, run_job, instance):
    from .support import settle, tick

    project.landing_dir.mkdir(parents=True)
    for name, write, _ in CORPUS.values():
        write(project.landing_dir / name)
    still_writing = project.landing_dir / "arriving.parquet.part"  # a file still being written
    parquet(GOOD)(still_writing)
    landed = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in project.landing_dir.iterdir()}

    result = run_job("fraud__ingestion_job")
    assert not result.success, "the data_contract gate fails and says so"
    assert list_accepted(project.accepted_dir) == [], "nothing was ingested, not even in part"
    assert [p.name for p in project.landing_dir.iterdir()] == [still_writing.name], "a file still being written is left alone"

    kept = {p.name: p for p in project.quarantine_dir.iterdir() if ".report." not in p.name}
    for kind, (name, _, words) in CORPUS.items():
        assert name in kept, f"{kind}: {name} is not in quarantine"
        assert hashlib.sha256(kept[name].read_bytes()).hexdigest() == landed[name], f"{kind}: the file changed"
        report = kept[name].with_name(kept[name].name + ".report.txt").read_text()
        assert words in report, f"{kind}: the report does not say {words!r}:\n{report}"
    assert all(p.resolve().parent == project.quarantine_dir.resolve() for p in project.quarantine_dir.iterdir()), "nothing left quarantine/"

    # the sensor still works after the bad day: the half-written file is not taken, a good one is
    parquet(GOOD)(project.landing_dir / "good.parquet")
    first = tick(instance)
    settle(project)
    ready = tick(instance, first.cursor)
    assert [r.run_config["ops"]["fraud__raw_batch"]["config"]["files"] for r in ready.run_requests] == [["good.parquet"]]


# ---- property-based: the contract -----------------------------------------------------------------

CONTRACT = load_contract(REPO / "contracts" / "transactions.yaml")


def valid_rows():
    """Rows that meet every rule of the shipped contract (both classes present, as the label rule requires)."""
    columns = CONTRACT.columns

    def value(name, rule):
        if rule.allowed is not None:
            return st.sampled_from(list(rule.allowed))
        if rule.dtype == "int":
            return st.integers(int(rule.min if rule.min is not None else -1000), int(rule.max if rule.max is not None else 1000))
        if rule.dtype == "float":
            strategy = st.floats(rule.min if rule.min is not None else -1e6, rule.max if rule.max is not None else 1e6, allow_nan=False)
            return st.one_of(st.none(), strategy) if rule.nullable else strategy
        if rule.dtype == "datetime":
            return st.datetimes(min_value=pd.Timestamp("2020-01-01").to_pydatetime(), max_value=pd.Timestamp("2026-01-01").to_pydatetime())
        return st.text(min_size=1, max_size=5)

    row = st.fixed_dictionaries({name: value(name, rule) for name, rule in columns.items() if name != "transaction_id"})
    return st.lists(row, min_size=2, max_size=30).map(
        lambda rows: pd.DataFrame(rows).assign(transaction_id=range(len(rows)), is_fraud=[i % 2 for i in range(len(rows))])
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_rows())
def test_rows_that_meet_every_rule_are_accepted_by_both_checks(frame):
    assert validate(frame, CONTRACT).passed, validate(frame, CONTRACT).problems
    check_rows(frame, CONTRACT)  # the service's check agrees


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_rows(), st.data())
def test_one_broken_value_is_refused_by_both_checks_and_named(frame, data):
    column = data.draw(st.sampled_from(["amount", "customer_age", "channel", "region", "account_age_days", "is_international"]))
    rule = CONTRACT.columns[column]
    if rule.allowed is not None:
        bad = data.draw(st.sampled_from(["???", 99, -3]).filter(lambda v: v not in rule.allowed))
    else:
        bad = data.draw(st.sampled_from([rule.min - 1 if rule.min is not None else None, rule.max + 1 if rule.max is not None else None]).filter(lambda v: v is not None))
    broken = first_row(frame, column, bad)
    result = validate(broken, CONTRACT)
    assert not result.passed and any(f"'{column}'" in p for p in result.problems), result.problems
    with pytest.raises(RequestError) as refused:
        check_rows(broken, CONTRACT)
    assert any(f"'{column}'" in p for p in refused.value.problems)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_rows(), st.data())
def test_the_fast_check_and_pandera_agree(frame, data):
    """validate() skips pandera when the vectorized check is certain a batch meets every rule: it must never be certain
    of a batch pandera refuses, and pandera must then return the batch unchanged."""
    change = data.draw(st.sampled_from(["none", "bad value", "missing value", "a number", "duplicate id", "shuffled ids", "one repeated id",
                                        "other type"]))
    column = data.draw(st.sampled_from(["amount", "customer_age", "channel", "region", "event_time", "is_fraud"]))
    if change == "bad value":
        rule = CONTRACT.columns[column]
        frame = first_row(frame, column, rule.min - 1 if rule.min is not None else "???")
    elif change == "missing value":
        frame = first_row(frame, column, None)
    elif change == "a number":  # in a text column, a number among the codes
        frame = first_row(frame, column, 5)
    elif change == "duplicate id":
        frame = frame.assign(transaction_id=[0] * len(frame))
    elif change in ("shuffled ids", "one repeated id"):  # ids out of order (the fast check sorts them), then one repeated
        ids = data.draw(st.permutations(list(frame["transaction_id"])))
        if change == "one repeated id":
            ids[data.draw(st.integers(1, len(ids) - 1))] = ids[0]
        frame = frame.assign(transaction_id=ids)
    elif change == "other type":
        frame = frame.astype({column: str})
    try:
        pandera = CONTRACT.schema().validate(frame, lazy=True)
    except Exception:
        pandera = None
    if certainly_meets(frame, CONTRACT):
        assert pandera is not None, f"the fast check passed a batch pandera refuses ({change} in {column})"
        pd.testing.assert_frame_equal(pandera, frame)
        assert validate(frame, CONTRACT).validated is frame
    elif change in ("none", "shuffled ids"):  # generated with the contract's own types: the fast check must take it
        assert pandera is not None, "a valid batch is refused by pandera"
        assert any(str(frame[c].dtype) != str(pandera[c].dtype) for c in frame), "a valid batch missed the fast path"


def test_the_fast_uniqueness_test_agrees_with_pandas_on_every_kind_of_column():
    """contract.all_distinct (by order, for numbers and times) gives pandas' is_unique (pandera's test) for ascending,
    shuffled and repeated values, equal values of another sign, and missing values."""
    from mlcicd.core.contract import all_distinct

    rng = np.random.default_rng(0)
    ints = rng.permutation(1000)
    cases = {
        "ascending": np.arange(1000), "shuffled": ints, "one repeated": np.r_[ints, ints[500]],
        "floats": ints / 7.0, "zero and minus zero": np.array([0.0, 1.0, -0.0]), "floats with a gap": np.r_[ints / 7.0, np.nan],
        "two missing": np.array([1.0, np.nan, np.nan]), "times": pd.to_datetime(ints, unit="s"),
        "times repeated": pd.to_datetime(np.r_[ints, ints[3]], unit="s"), "one value": np.array([5]), "none": np.array([], dtype=int),
        "text": np.array(["a", "b", "a"], dtype=object),
    }
    for name, values in cases.items():
        column = pd.Series(values)
        assert all_distinct(column) == column.is_unique, name
    assert not all_distinct(pd.Series(np.r_[ints, ints[500]])) and all_distinct(pd.Series(ints))
