"""How a gate verdict from the core becomes a Dagster asset check result (one place for all gates)."""

import dagster as dg

from mlcicd.core.gates import GateVerdict
from mlcicd.faults import kill_point


def check_result(verdict: GateVerdict, asset_key: str | None = None, warn_only: bool = False) -> dg.AssetCheckResult:
    """An ERROR-severity result (so a blocking check stops what comes after), the reason first.

    `asset_key` is needed only when an asset yields results for its own check specs. `warn_only` marks a
    failure that means "cannot be judged yet" (WARN): alerts see it, automatic rollbacks do not act on it.
    """
    kill_point("gates.before_results")
    metadata: dict = {"verdict": dg.MetadataValue.text(verdict.reason)}
    metadata.update({k: v for k, v in verdict.numbers.items() if isinstance(v, int | float | str) and not isinstance(v, bool)})
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=verdict.gate,
        passed=verdict.passed, severity=dg.AssetCheckSeverity.WARN if warn_only else dg.AssetCheckSeverity.ERROR, description=verdict.reason, metadata=metadata
    )
