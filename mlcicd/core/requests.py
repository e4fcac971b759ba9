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
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from mlcicd.core.contract import Contract

MAX_ROWS = 100_000
LARGEST_INT = 2**63 - 1  # JSON allows any integer; a column holds 64 bits
SHOWN_CHARS = 60  # a field name or value quoted in an answer is cut to this many characters


@dataclass
class RequestError(Exception):
    status: int
    message: str
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"error": self.message, "problems": self.problems}


Columns = dict[str, np.ndarray]  # a request's rows: field name -> one value per row


def parse_body(body: bytes, content_type: str) -> Columns:
    """JSON (`{"records": [...]}`, a list of records, or one record) or CSV with a header row, as columns of values (no
    table is built: a one-row request costs microseconds here)."""
    kind = (content_type or "application/json").split(";")[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        try:
            frame = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False, na_values=[""])
        except Exception as exc:  # noqa: BLE001 - any parser failure is the body's fault
            raise RequestError(400, f"the body is not CSV with a header row: {exc}") from None
        columns = {str(name): frame[name].to_numpy(dtype=object) for name in frame.columns}
        rows = len(frame)
    elif kind == "application/json":
        payload = read_json(body)
        records = payload.get("records") if isinstance(payload, dict) and "records" in payload else payload
        if isinstance(records, dict):
            records = [records]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise RequestError(400, 'expected {"records": [{column: value, ...}, ...]}, a list of such records, or one record')
        names = dict.fromkeys(name for record in records for name in record)  # in order of first appearance
        columns = {name: _object_array([record.get(name) for record in records]) for name in names}
        _check_flat(records, columns)
        rows = len(records)
    else:
        raise RequestError(415, f"unsupported content type '{kind}': send application/json or text/csv")
    if rows == 0 or not columns:
        raise RequestError(400, "the request holds no rows")
    if rows > MAX_ROWS:
        raise RequestError(413, f"the request holds {rows:,} rows; at most {MAX_ROWS:,} per request")
    return columns


def row_count(columns: Columns) -> int:
    return len(next(iter(columns.values()))) if columns else 0


def _object_array(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def read_json(body: bytes):
    """The body's JSON, or RequestError(400) saying what is wrong with it."""
    try:
        return json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        if "integer string conversion" in str(exc):
            raise RequestError(400, "the body holds a number of more than 4,300 digits") from None
        raise RequestError(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError(400, "the body's JSON is nested too deeply to be a request") from None


def _check_flat(records: list[dict], columns: Columns) -> None:
    """Every field of every record holds one JSON scalar, and every text is valid Unicode (JSON can carry a lone
    surrogate, which no encoder can write back): else 400/422 naming the field, before any column is checked. Each
    column is looked at as a whole first (the types it holds); only a column that might break a rule sends the check
    record by record, so the first problem is named as before."""
    if all(_is_unicode(name) for name in columns) and all(_plain(values) for values in columns.values()):
        return
    checked_keys: set[str] = set()  # a field name is checked once, not once per record
    for number, record in enumerate(records, start=1):
        for key, value in record.items():
            if key not in checked_keys:
                if not _is_unicode(key):
                    raise RequestError(400, f"record {number}: a field name is not valid Unicode text (it holds a lone surrogate)")
                checked_keys.add(key)
            if isinstance(value, dict | list):
                raise RequestError(422, f"record {number}: field {_shown(key)} holds a JSON {'object' if isinstance(value, dict) else 'list'}; "
                                        "expected one value (text, number, true/false or null)")
            if isinstance(value, int) and not -LARGEST_INT <= value <= LARGEST_INT:
                raise RequestError(422, f"record {number}: field {_shown(key)} holds a whole number of {len(str(abs(value)))} digits, "
                                        "beyond what any column can store (64 bits)")
            if isinstance(value, str) and not value.isascii() and not _is_unicode(value):
                raise RequestError(400, f"record {number}: field {_shown(key)} is not valid Unicode text (it holds a lone surrogate)")


def _plain(values: np.ndarray) -> bool:
    """True when no value of a column can break _check_flat's rules: only text, numbers, booleans and nulls, whole numbers
    within 64 bits, text that is valid Unicode."""
    kinds = set(map(type, values))
    if kinds - {str, int, float, bool, type(None)}:
        return False
    if int in kinds:
        whole = [v for v in values if type(v) is int]
        if max(whole) > LARGEST_INT or min(whole) < -LARGEST_INT:
            return False
    return str not in kinds or all(v.isascii() or _is_unicode(v) for v in values if type(v) is str)


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(value) -> str:
    """A value quoted in an answer: repr, cut to SHOWN_CHARS characters so a huge field cannot fill the answer."""
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + f"... ({len(text):,} characters)"


def _examples(values) -> str:
    return ", ".join(_shown(v) for v in list(values)[:3])


def _is_present(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return not (isinstance(value, str) and not value.strip())


def _as_number(value) -> float | None:
    """A JSON number or numeric text as float; None when it is neither (booleans are not numbers)."""
    if isinstance(value, bool | np.bool_):
        return None
    try:
        if isinstance(value, int | float | np.number | str):
            return float(value)
    except (ValueError, OverflowError):  # "lots", or an integer of 400 digits: not a number this model can take
        return None
    return None


NS_YEARS = range(1678, 2262)  # the years datetime64[ns] holds
# a date, an optional time ("T" or a space between), an optional zone: what _iso_times reads without pandas
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:(?P<sep>[T ])\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?(?P<zone>Z|[+-]\d{2}:\d{2})?")


def as_utc_times(raw: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Times as UTC without a zone (datetime64[ns]; NaT where absent or not a time). A time with an offset ("+05:00",
    "Z") is taken to UTC, like the stored batches; one without is read as UTC; rows with and without may be mixed."""
    fast = _iso_times(raw, present)
    if fast is not None:
        return fast
    parsed = pd.to_datetime(pd.Series(np.where(present, raw, None)), errors="coerce", format="mixed", utc=True)
    return parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def _iso_times(raw: np.ndarray, present: np.ndarray) -> np.ndarray | None:
    """as_utc_times for plain ISO 8601 text (what a JSON client sends), read by Python's own parser at a few
    microseconds a value, as pandas reads it; None when any value is something else (not text, not that form, not a
    valid date, or beyond what datetime64[ns] holds), for pandas' parser to decide."""
    texts = raw[present]
    matches = [ISO_TIME.fullmatch(v) if isinstance(v, str) else None for v in texts]
    if not all(matches):
        return None
    out = np.full(len(raw), np.datetime64("NaT"), dtype="datetime64[ns]")
    # no zone and "T" (or no time): numpy reads them at once
    if all(m["zone"] is None and m["sep"] != " " and int(m.string[:4]) in NS_YEARS for m in matches):
        try:
            out[present] = np.array(list(texts), dtype="datetime64[ns]")
        except ValueError:  # not a valid date: pandas decides
            return None
        return out
    for position in np.flatnonzero(present):
        try:
            stamp = datetime.fromisoformat(raw[position].replace("Z", "+00:00"))
            if stamp.tzinfo is not None:
                stamp = stamp.astimezone(timezone.utc).replace(tzinfo=None)
        except (ValueError, OverflowError):
            return None
        if stamp.year not in NS_YEARS:
            return None
        out[position] = np.datetime64(stamp, "ns")
    return out


BOOLEANS = {"true": True, "false": False, "1": True, "0": False}


def check_rows(rows: Columns | pd.DataFrame, contract: Contract, ignore: tuple[str, ...] = ()) -> Columns:
    """The rows (columns from parse_body, or a table) coerced to the contract's types, as columns, or RequestError(422)
    listing every broken field. Plain Python and numpy per column: a one-row request costs well under a millisecond per
    field."""
    if isinstance(rows, pd.DataFrame):
        rows = {name: rows[name].to_numpy(dtype=object) for name in rows.columns}
    problems = []
    absent = [c for c in contract.columns if c not in rows]
    missing = [c for c in absent if not contract.columns[c].nullable]  # a nullable field may be left out: null
    extra = [c for c in rows if c not in contract.columns and c not in ignore]
    problems += [f"field '{c}' is missing" for c in missing]
    problems += [f"field {_shown(c)} is not in the data contract" for c in extra]
    count = row_count(rows)
    out = {}
    for name, rule in contract.columns.items():
        if name in missing:
            continue
        raw = np.asarray(rows[name], dtype=object) if name in rows else np.full(count, None, dtype=object)
        kinds = set(map(type, raw))  # a column of JSON numbers (or of text) and nulls is read at once, not value by value
        plain_numbers = rule.dtype in ("int", "float") and kinds <= {int, float, type(None)}
        only_text = kinds <= {str, type(None)}
        if plain_numbers:
            values = raw.astype("float64")  # None -> NaN, as _as_number would give
            present = ~np.isnan(values)
        elif only_text:
            present = np.fromiter((v is not None and bool(v.strip()) for v in raw), dtype=bool, count=count)
        else:
            present = np.fromiter((_is_present(v) for v in raw), dtype=bool, count=count)
        if rule.dtype in ("int", "float"):
            if not plain_numbers:
                numbers = [_as_number(v) if p else math.nan for v, p in zip(raw, present)]
                bad = np.fromiter((p and n is None for n, p in zip(numbers, present)), dtype=bool, count=count)
                if bad.any():
                    kind = "whole numbers" if rule.dtype == "int" else "numbers"
                    problems.append(f"field '{name}': {int(bad.sum())} value(s) are not {kind}, e.g. {_examples(raw[bad])}")
                    continue
                values = np.array(numbers, dtype="float64")
            if rule.dtype == "int":
                fraction = present & np.isfinite(values) & (values != np.round(values))
                if fraction.any():
                    problems.append(f"field '{name}': {int(fraction.sum())} value(s) are not whole numbers, e.g. {_examples(raw[fraction])}")
                    continue
            if (present & ~np.isfinite(values)).any():
                problems.append(f"field '{name}': {int((present & ~np.isfinite(values)).sum())} value(s) are infinite")
                continue
            checked = values[present]
        elif rule.dtype == "datetime":
            # A time with an offset ("+05:00", "Z") is taken to UTC and kept without its zone, like the stored batches;
            # a time without one is read as UTC. Rows with and without offsets may be mixed.
            values = as_utc_times(raw, present)
            bad = present & np.isnat(values)
            if bad.any():
                problems.append(f"field '{name}': {int(bad.sum())} value(s) are not dates/times, e.g. {_examples(raw[bad])}")
                continue
            checked = values[present]
        elif rule.dtype == "bool":
            mapped = [BOOLEANS.get(str(v).lower(), v) if isinstance(v, str | int) and not isinstance(v, bool) else v for v in raw]
            bad = present & np.fromiter((not isinstance(v, bool | np.bool_) for v in mapped), dtype=bool, count=count)
            if bad.any():
                problems.append(f"field '{name}': {int(bad.sum())} value(s) are not true/false, e.g. {_examples(raw[bad])}")
                continue
            values = np.array([v if p else None for v, p in zip(mapped, present)], dtype=object)
            checked = values[present]
        else:
            if not only_text:
                bad = present & np.fromiter((not isinstance(v, str) for v in raw), dtype=bool, count=count)
                if bad.any():
                    problems.append(f"field '{name}': {int(bad.sum())} value(s) are not text, e.g. {_examples(raw[bad])}")
                    continue
            values = np.where(present, raw, None)
            checked = values[present]
        if not rule.nullable and not present.all():
            problems.append(f"field '{name}': {int((~present).sum())} missing value(s) where none are allowed")
        if rule.min is not None and (below := checked[checked < rule.min]).size:
            problems.append(f"field '{name}': value(s) below the minimum {rule.min:g}, e.g. {_examples(below)}")
        if rule.max is not None and (above := checked[checked > rule.max]).size:
            problems.append(f"field '{name}': value(s) above the maximum {rule.max:g}, e.g. {_examples(above)}")
        if rule.allowed is not None:
            allowed = set(rule.allowed)
            unknown = [v for v in checked if v not in allowed]
            if unknown:
                problems.append(f"field '{name}': value(s) not allowed, e.g. {_examples(unknown)}; allowed: {list(rule.allowed)}")
        if rule.unique and len(set(checked)) != len(checked):
            seen, duplicated = set(), []
            for v in checked:
                (duplicated.append(v) if v in seen else seen.add(v))
            problems.append(f"field '{name}': duplicated value(s), e.g. {_examples(duplicated)}")
        if rule.not_in_future and rule.dtype == "datetime" and (checked > np.datetime64(pd.Timestamp.now() + pd.Timedelta(minutes=5))).any():
            problems.append(f"field '{name}': time(s) in the future")
        out[name] = values
    if problems:
        raise RequestError(422, f"{len(problems)} problem(s) with the request's fields", problems)
    return out


def answer_records(columns: dict[str, np.ndarray]) -> list[dict]:
    """Columns of answers as JSON records, one per row (numpy values as Python's; a value that is not finite as null)."""
    values = {name: [to_jsonable(v) for v in column.tolist()] if column.dtype.kind == "f" and not np.isfinite(column).all()
              else column.tolist() for name, column in columns.items()}
    return [dict(zip(values, row)) for row in zip(*values.values())]


def to_jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    return value
