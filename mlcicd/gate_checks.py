"""How a gate verdict from the core becomes a Dagster asset check result (one place for all gates)."""

import dagster as dg

from mlcicd.core.gates import GateVerdict


def check_result(verdict: GateVerdict) -> dg.AssetCheckResult:
    """An ERROR-severity result (so a blocking check stops what comes after), the reason first."""
    metadata: dict = {"verdict": dg.MetadataValue.text(verdict.reason)}
    metadata.update({k: v for k, v in verdict.numbers.items() if isinstance(v, int | float | str) and not isinstance(v, bool)})
    return dg.AssetCheckResult(
        passed=verdict.passed, severity=dg.AssetCheckSeverity.ERROR, description=verdict.reason, metadata=metadata
    )
