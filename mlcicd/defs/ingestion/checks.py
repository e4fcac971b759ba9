"""The data contract gate on raw_batch (blocking: a rejected file stops training in the same run)."""

import dagster as dg

from mlcicd.core.gate_table import BY_NAME
from mlcicd.core.gates import data_contract_gate
from mlcicd.core.ingest import BatchVerdict
from mlcicd.gate_checks import check_result

from .assets import raw_batch


@dg.asset_check(asset=raw_batch, blocking=BY_NAME["data_contract"].blocking, description=BY_NAME["data_contract"].demands)
def data_contract(raw_batch: dict) -> dg.AssetCheckResult:
    verdicts = [BatchVerdict(**v) for v in raw_batch["verdicts"]]
    return check_result(data_contract_gate(verdicts, raw_batch["accepted_batches"]))
