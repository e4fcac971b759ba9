"""A realistic card-transaction simulator with drift scenarios (the embedded default dataset).

Fraud is rare (about 2%) and depends on interactions (large online payments, night-time spending far
from home, new prepaid cards, bursts of activity, risky devices) plus an unobserved component, so a
good model reaches a ROC AUC near 0.9, not 0.99. Each batch is one day of transactions; batch ``i``
with seed ``s`` is always the same data, whatever was generated before it.

Scenarios:
    baseline          the reference behaviour
    covariate_drift   who pays and how changes (more online, larger amounts, younger customers, a region
                      mix shift), the fraud mechanism stays the same
    concept_drift     fraudsters change tactics: small "card testing" amounts, contactless instead of
                      online, device risk matters less; a model trained before the change loses accuracy
    schema_break      an upstream export renames `amount` to `amount_usd` and writes `customer_age` as text
    degraded_quality  late and missing fraud reports (labels flipped), a sensor that stops reporting
                      device risk, rounded amounts: the contract passes, the data teaches less
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlcicd.core.ingest import atomic_write

SCENARIOS = ("baseline", "covariate_drift", "concept_drift", "schema_break", "degraded_quality")
START = np.datetime64("2026-01-01T00:00:00", "s")

REGIONS = np.array(["north", "south", "east", "west", "central"], dtype=object)
CHANNELS = np.array(["pos", "online", "contactless", "atm"], dtype=object)
CATEGORIES = np.array(
    ["grocery", "fuel", "restaurants", "electronics", "travel", "online_retail", "gambling", "pharmacy"], dtype=object
)
CARD_TYPES = np.array(["debit", "credit", "prepaid"], dtype=object)
# log-amount mean per merchant category, in the order of CATEGORIES
CATEGORY_LOG_AMOUNT = np.array([3.3, 3.7, 3.4, 5.0, 5.5, 4.0, 4.2, 3.0])
CATEGORY_RISK = np.array([-0.5, -0.2, -0.3, 0.6, 0.3, 0.4, 0.9, -0.4])
REGION_RISK = np.array([0.0, 0.1, 0.35, -0.1, 0.0])


@dataclass(frozen=True)
class Mix:
    region: tuple = (0.30, 0.25, 0.20, 0.15, 0.10)
    channel: tuple = (0.45, 0.30, 0.20, 0.05)
    category: tuple = (0.25, 0.12, 0.15, 0.08, 0.05, 0.20, 0.05, 0.10)
    card: tuple = (0.55, 0.40, 0.05)
    amount_shift: float = 0.0
    age_mean: float = 45.0
    velocity: float = 2.5
    night_share: float = 0.08


BASELINE_MIX = Mix()
DRIFTED_MIX = Mix(
    region=(0.15, 0.20, 0.20, 0.25, 0.20),
    channel=(0.25, 0.50, 0.20, 0.05),
    category=(0.15, 0.08, 0.12, 0.15, 0.10, 0.28, 0.07, 0.05),
    card=(0.45, 0.40, 0.15),
    amount_shift=0.5,
    age_mean=34.0,
    velocity=3.5,
    night_share=0.15,
)


def _hours(rng: np.random.Generator, n: int, night_share: float) -> np.ndarray:
    """Seconds into the day: mostly daytime (8-22h), a share at night (0-6h)."""
    night = rng.random(n) < night_share
    day_seconds = rng.normal(15 * 3600, 3.5 * 3600, n).clip(6 * 3600, 24 * 3600 - 1)
    night_seconds = rng.uniform(0, 6 * 3600, n)
    return np.where(night, night_seconds, day_seconds).astype(np.int64)


def _features(rng: np.random.Generator, n: int, mix: Mix, batch_index: int, first_row: int = 0) -> pd.DataFrame:
    region = rng.choice(len(REGIONS), n, p=mix.region)
    channel = rng.choice(len(CHANNELS), n, p=mix.channel)
    category = rng.choice(len(CATEGORIES), n, p=mix.category)
    card = rng.choice(len(CARD_TYPES), n, p=mix.card)
    amount = np.exp(rng.normal(CATEGORY_LOG_AMOUNT[category] + mix.amount_shift, 0.9)).clip(0.5, 50_000).round(2)
    online = channel == 1  # CHANNELS[1] == "online"
    seconds = np.sort(_hours(rng, n, mix.night_share))
    device = np.where(online, rng.beta(2, 8, n), np.nan)
    travel = category == 4  # CATEGORIES[4] == "travel"
    # text columns as categoricals built from codes: no Python string per row (written as plain strings)
    return pd.DataFrame(
        {
            "transaction_id": np.int64(batch_index) * 10_000_000 + first_row + np.arange(n, dtype=np.int64),
            "event_time": (START + np.timedelta64(batch_index, "D") + seconds.astype("timedelta64[s]")).astype(
                "datetime64[ns]"
            ),
            "amount": amount,
            "merchant_category": pd.Categorical.from_codes(category, CATEGORIES),
            "channel": pd.Categorical.from_codes(channel, CHANNELS),
            "region": pd.Categorical.from_codes(region, REGIONS),
            "card_type": pd.Categorical.from_codes(card, CARD_TYPES),
            "customer_age": rng.normal(mix.age_mean, 14, n).clip(18, 95).astype(np.int64),
            "account_age_days": rng.exponential(900, n).clip(0, 20_000).astype(np.int64),
            "txn_count_24h": rng.poisson(mix.velocity, n).astype(np.int64),
            "distance_from_home_km": np.exp(rng.normal(1.5, 1.3, n)).clip(0, 15_000).round(1),
            "is_international": (rng.random(n) < 0.04 + 0.12 * travel).astype(np.int64),
            "device_risk_score": device.round(4),
        }
    )


def fraud_logit(df: pd.DataFrame, concept: str, rng: np.random.Generator) -> np.ndarray:
    """The hidden fraud mechanism: interactions, category and region effects, and unobserved noise."""
    log_amount = np.log1p(df["amount"].to_numpy())
    hour = df["event_time"].dt.hour.to_numpy()
    online = (df["channel"] == "online").to_numpy()
    contactless = (df["channel"] == "contactless").to_numpy()
    night = hour < 6
    far = df["distance_from_home_km"].to_numpy() > 50
    new_prepaid = (df["account_age_days"].to_numpy() < 60) & (df["card_type"] == "prepaid").to_numpy()
    velocity = np.minimum(df["txn_count_24h"].to_numpy() - 2.5, 6)
    device = np.nan_to_num(df["device_risk_score"].to_numpy() - 0.2, nan=0.0)
    category = pd.Categorical(df["merchant_category"], categories=CATEGORIES).codes  # no-op on simulated data
    region = pd.Categorical(df["region"], categories=REGIONS).codes

    if concept == "baseline":
        z = (
            -5.8
            + 0.45 * (log_amount - 4)
            + 1.0 * online
            + 1.8 * (online & (log_amount > 5.3))
            + 2.2 * (night & far)
            + 2.5 * new_prepaid
            + 0.45 * velocity
            + 5.0 * device
            + 1.2 * df["is_international"].to_numpy()
        )
    else:  # concept drift: card testing with small amounts, contactless skimming, device risk gone stale
        z = (
            -5.6
            - 0.55 * (log_amount - 4)
            + 0.2 * online
            + 1.5 * contactless
            + 1.2 * (contactless & (log_amount < 3.0))
            + 0.6 * (night & far)
            + 0.6 * new_prepaid
            + 0.45 * velocity
            + 0.6 * device
            + 1.2 * df["is_international"].to_numpy()
        )
    z = z + CATEGORY_RISK[category] + REGION_RISK[region]
    return z + rng.normal(0.0, 0.6, len(df))  # what no feature explains


CHUNK_ROWS = 1_000_000  # a bigger batch is made in chunks (bounded memory, visible progress)


def simulate_batch(batch_index: int, rows: int, scenario: str = "baseline", seed: int = 7, on_rows=None, dataset: str = "transactions") -> pd.DataFrame:
    """One day of labeled transactions; deterministic for (seed, batch_index, scenario, rows).
    `on_rows(n)` is told each time another n rows are made."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    if rows < 1:
        raise ValueError("rows must be at least 1")
    if rows > 10_000_000:
        raise ValueError("at most 10,000,000 rows per batch (transaction ids are unique per batch below that)")
    parts = []
    for chunk, first_row in enumerate(range(0, rows, CHUNK_ROWS)):
        parts.append(_simulate_chunk(batch_index, min(CHUNK_ROWS, rows - first_row), scenario, seed, chunk, first_row, dataset))
        if on_rows:
            on_rows(len(parts[-1]))
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)  # same categories: stays categorical


def _simulate_chunk(batch_index: int, rows: int, scenario: str, seed: int, chunk: int, first_row: int, dataset: str = "transactions") -> pd.DataFrame:
    key = [seed, batch_index, SCENARIOS.index(scenario)] + ([chunk] if chunk else [])  # chunk 0: as an unchunked batch
    rng = np.random.default_rng(key)
    mix = DRIFTED_MIX if scenario == "covariate_drift" else BASELINE_MIX
    df = _features(rng, rows, mix, batch_index, first_row)
    concept = "shifted" if scenario == "concept_drift" else "baseline"
    probability = 1.0 / (1.0 + np.exp(-fraud_logit(df, concept, rng)))
    df["is_fraud"] = (rng.random(rows) < probability).astype(np.int64)

    if scenario == "degraded_quality":
        missed = (df["is_fraud"].to_numpy() == 1) & (rng.random(rows) < 0.5)
        false_reports = rng.random(rows) < 0.01
        df["is_fraud"] = np.where(missed, 0, np.where(false_reports, 1, df["is_fraud"]))
        df["device_risk_score"] = df["device_risk_score"].mask(rng.random(rows) < 0.8)
        df["amount"] = df["amount"].round(-1).clip(lower=0.5)
    if dataset != "transactions":
        df = DATASETS[dataset](df, rng, scenario)
    if scenario == "schema_break":
        df = df.rename(columns={"amount": "amount_usd"})
        df["customer_age"] = df["customer_age"].astype(str) + " years"
    return df


# How much a basket holds, by merchant category (in the order of CATEGORIES): with the amount, what tells them apart.
CATEGORY_ITEMS = np.array([14.0, 1.0, 3.0, 1.5, 2.0, 3.5, 1.0, 4.0])
CATEGORY_NIGHT = np.array([0.0, 0.6, 0.8, -0.5, 0.3, 0.9, 1.5, -0.2])  # who sells at night, as a shift in hours


def merchants(df: pd.DataFrame, rng: np.random.Generator, scenario: str) -> pd.DataFrame:
    """The merchant category of a transaction (multiclass), from what the card network sees: amount, basket size,
    channel, time, card, region. Concept drift: categories' typical amounts move (electronics cheaper, fuel dearer);
    degraded quality: 30% of the categories recorded at random."""
    category = pd.Categorical(df["merchant_category"], categories=CATEGORIES).codes
    items = rng.poisson(CATEGORY_ITEMS[category])
    if scenario == "concept_drift":
        shift = np.array([0.0, 0.8, 0.0, -1.2, 0.0, 0.0, 0.0, 0.6])[category]
        df["amount"] = (df["amount"] * np.exp(shift)).clip(0.5, 50_000).round(2)
        items = rng.poisson(CATEGORY_ITEMS[::-1][category])
    hours = df["event_time"] + pd.to_timedelta(CATEGORY_NIGHT[category] * 3600 * 3, unit="s")
    out = df.drop(columns=["is_fraud", "device_risk_score"]).assign(items_in_basket=items.astype(np.int64), event_time=hours.dt.floor("s"))
    if scenario == "degraded_quality":
        noisy = rng.random(len(out)) < 0.3
        random_codes = rng.integers(0, len(CATEGORIES), len(out))
        out["merchant_category"] = pd.Categorical.from_codes(np.where(noisy, random_codes, category), CATEGORIES)
    return out.sort_values("event_time", kind="stable").reset_index(drop=True)


REASONS = np.array(["not_received", "fraud", "duplicate", "quality", "cancelled"], dtype=object)
REASON_HOURS = np.array([1.2, 1.6, -0.6, 0.9, 0.2])  # log-hours added by the dispute's reason


def disputes(df: pd.DataFrame, rng: np.random.Generator, scenario: str) -> pd.DataFrame:
    """Disputed transactions and the hours until each was resolved (regression). Large, international and
    fraud disputes take longer; evidence speeds them up. Concept drift: a new process makes evidence count less and
    fraud cases faster; degraded quality: resolution times rounded to days and 20% recorded as a default 72 h."""
    n = len(df)
    reason = rng.choice(len(REASONS), n, p=(0.3, 0.25, 0.15, 0.2, 0.1))
    evidence = rng.poisson(2.0, n)
    days_since = rng.integers(1, 90, n)
    log_amount = np.log1p(df["amount"].to_numpy())
    evidence_effect, reason_hours = (-0.25, REASON_HOURS) if scenario != "concept_drift" else (-0.05, REASON_HOURS * [1, 0.3, 1, 1, 1])
    log_hours = (
        2.2 + 0.35 * log_amount + reason_hours[reason] + evidence_effect * evidence + 0.006 * days_since
        + 0.7 * df["is_international"].to_numpy() + 0.3 * (df["channel"] == "online").to_numpy()
        + rng.normal(0, 0.35, n)
    )
    hours = np.exp(log_hours).clip(1, 24 * 120).round(1)
    out = df.drop(columns=["is_fraud", "device_risk_score"]).rename(columns={"transaction_id": "dispute_id"})
    out = out.assign(dispute_reason=pd.Categorical.from_codes(reason, REASONS), evidence_documents=evidence.astype(np.int64),
                     days_since_transaction=days_since.astype(np.int64), resolution_hours=hours)
    if scenario == "degraded_quality":
        default = rng.random(n) < 0.2
        out["resolution_hours"] = np.where(default, 72.0, (out["resolution_hours"] / 24).round() * 24).clip(1, None)
    return out


DATASETS = {"merchants": merchants, "disputes": disputes}


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Parquet with text columns as plain strings (as an upstream export would have them), cast in Arrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    schema = pa.schema(
        [field.with_type(pa.string()) if pa.types.is_dictionary(field.type) else field for field in table.schema]
    ).remove_metadata()
    pq.write_table(table.cast(schema), path)


def next_batch_index(folders: list[Path]) -> int:
    """The index after the highest `batch-NNNNN-*` file found in any of the folders (0 if none)."""
    highest = -1
    for folder in folders:
        if folder.is_dir():
            for path in folder.rglob("batch-*"):
                part = path.name.split("-")[1] if path.name.count("-") >= 2 else ""
                if part.isdigit():
                    highest = max(highest, int(part))
    return highest + 1


def write_batches(
    landing_dir: Path,
    *,
    batches: int,
    rows_per_batch: int,
    scenario: str = "baseline",
    seed: int = 7,
    start_index: int = 0,
    file_format: str = "parquet",
    on_rows=None,
    drop_columns: tuple[str, ...] = (),
    dataset: str = "transactions",
) -> list[Path]:
    """Write batches as `batch-NNNNN-<scenario>.<ext>`; each appears atomically (written, then renamed)."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(start_index, start_index + batches):
        df = simulate_batch(index, rows_per_batch, scenario, seed, on_rows, dataset).drop(columns=list(drop_columns))
        final = landing_dir / f"batch-{index:05d}-{scenario}.{file_format}"
        atomic_write(final, (lambda p: df.to_csv(p, index=False)) if file_format == "csv" else (lambda p: _write_parquet(df, p)))
        written.append(final)
    return written
