"""Scoring requests: parse a JSON or CSV body into rows and check them against the data contract.

Batches are checked by pandera (core/contract.py), which reports everything but costs tens of ms per
call. A request must be answered in a few ms, so this module applies the same contract rules (columns,
types, nulls, ranges, allowed values) with plain vectorised pandas; a test holds both to the same verdicts.
Every problem names the field, and becomes a 4xx answer, never a 500.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlcicd.core.contract import Contract

MAX_ROWS = 100_000


@dataclass
class RequestError(Exception):
    status: int
    message: str
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"error": self.message, "problems": self.problems}


def parse_body(body: bytes, content_type: str) -> pd.DataFrame:
    """JSON (`{"records": [...]}`, a list of records, or one record) or CSV with a header row."""
    kind = (content_type or "application/json").split(";")[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        try:
            frame = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False, na_values=[""])
        except Exception as exc:  # noqa: BLE001 - any parser failure is the body's fault
            raise RequestError(400, f"the body is not CSV with a header row: {exc}") from None
    elif kind == "application/json":
        try:
            payload = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(400, f"the body is not valid JSON: {exc}") from None
        records = payload.get("records") if isinstance(payload, dict) and "records" in payload else payload
        if isinstance(records, dict):
            records = [records]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise RequestError(400, 'expected {"records": [{column: value, ...}, ...]}, a list of such records, or one record')
        frame = pd.DataFrame.from_records(records)
    else:
        raise RequestError(415, f"unsupported content type '{kind}': send application/json or text/csv")
    if frame.empty:
        raise RequestError(400, "the request holds no rows")
    if len(frame) > MAX_ROWS:
        raise RequestError(413, f"the request holds {len(frame):,} rows; at most {MAX_ROWS:,} per request")
    return frame


def _examples(values: pd.Series) -> str:
    return ", ".join(repr(v) for v in values.head(3).tolist())


def check_rows(frame: pd.DataFrame, contract: Contract, ignore: tuple[str, ...] = ()) -> pd.DataFrame:
    """The rows coerced to the contract's types, or RequestError(422) listing every broken field."""
    problems = []
    absent = [c for c in contract.columns if c not in frame.columns]
    missing = [c for c in absent if not contract.columns[c].nullable]  # a nullable field may be left out: null
    frame = frame.assign(**{c: None for c in absent if c not in missing})
    extra = [c for c in frame.columns if c not in contract.columns and c not in ignore]
    problems += [f"field '{c}' is missing" for c in missing]
    problems += [f"field '{c}' is not in the data contract" for c in extra]
    out = {}
    for name, rule in contract.columns.items():
        if name in missing:
            continue
        raw = frame[name]
        present = raw.notna() & (raw.astype("string").str.strip() != "")
        if rule.dtype in ("int", "float"):
            values = pd.to_numeric(raw.where(present), errors="coerce")
            bad = present & values.isna()
            if rule.dtype == "int":
                bad |= values.notna() & (values != values.round())
            if bad.any():
                problems.append(f"field '{name}': {int(bad.sum())} value(s) are not {'whole numbers' if rule.dtype == 'int' else 'numbers'}, e.g. {_examples(raw[bad])}")
                continue
            infinite = values.notna() & ~np.isfinite(values.astype(float))
            if infinite.any():
                problems.append(f"field '{name}': {int(infinite.sum())} value(s) are infinite")
                continue
        elif rule.dtype == "datetime":
            values = pd.to_datetime(raw.where(present), errors="coerce", format="mixed")
            bad = present & values.isna()
            if bad.any():
                problems.append(f"field '{name}': {int(bad.sum())} value(s) are not dates/times, e.g. {_examples(raw[bad])}")
                continue
        elif rule.dtype == "bool":
            mapped = raw.where(present).map(lambda v: {"true": True, "false": False, "1": True, "0": False}.get(str(v).lower(), v) if isinstance(v, str | int) else v)
            bad = present & ~mapped.isin([True, False])
            if bad.any():
                problems.append(f"field '{name}': {int(bad.sum())} value(s) are not true/false, e.g. {_examples(raw[bad])}")
                continue
            values = mapped
        else:
            values = raw.where(present).astype("object")
            bad = present & ~raw.map(lambda v: isinstance(v, str))
            if bad.any():
                problems.append(f"field '{name}': {int(bad.sum())} value(s) are not text, e.g. {_examples(raw[bad])}")
                continue
        if not rule.nullable and not present.all():
            problems.append(f"field '{name}': {int((~present).sum())} missing value(s) where none are allowed")
        checked = values[present]
        if rule.min is not None and (checked < rule.min).any():
            problems.append(f"field '{name}': value(s) below the minimum {rule.min:g}, e.g. {_examples(checked[checked < rule.min])}")
        if rule.max is not None and (checked > rule.max).any():
            problems.append(f"field '{name}': value(s) above the maximum {rule.max:g}, e.g. {_examples(checked[checked > rule.max])}")
        if rule.allowed is not None:
            unknown = ~checked.isin(list(rule.allowed))
            if unknown.any():
                problems.append(f"field '{name}': value(s) not allowed, e.g. {_examples(checked[unknown])}; allowed: {list(rule.allowed)}")
        if rule.unique and checked.duplicated().any():
            problems.append(f"field '{name}': duplicated value(s), e.g. {_examples(checked[checked.duplicated()])}")
        out[name] = values.astype("float64") if rule.dtype == "float" else values
    if problems:
        raise RequestError(422, f"{len(problems)} problem(s) with the request's fields", problems)
    return pd.DataFrame(out, index=frame.index)


def to_jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    return value
