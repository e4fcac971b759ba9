"""How a gate verdict from the core becomes a Dagster asset check result (one place for all gates)."""

import dagster as dg

from mlcicd.core import gate_table
from mlcicd.core.gates import GateVerdict
from mlcicd.faults import kill_point
from mlcicd.names import Names


def check_result(verdict: GateVerdict, asset_key: dg.AssetKey | None = None, warn_only: bool = False) -> dg.AssetCheckResult:
    """An ERROR-severity result (so a blocking check stops what comes after), the reason first.

    `asset_key` is needed only when an asset yields results for its own check specs. `warn_only` marks a
    failure that means "cannot be judged yet" (WARN): alerts see it, automatic rollbacks do not act on it.
    """
    kill_point("gates.before_results")
    return dg.AssetCheckResult(
        asset_key=asset_key, check_name=verdict.gate, passed=verdict.passed,
        severity=dg.AssetCheckSeverity.WARN if warn_only else dg.AssetCheckSeverity.ERROR, description=verdict.reason, metadata=_metadata(verdict),
    )


def check_evaluation(verdict: GateVerdict, asset_key: dg.AssetKey) -> dg.AssetCheckEvaluation:
    """The same result as an event an op logs (rollback_job deploys without materializing the deployment asset)."""
    return dg.AssetCheckEvaluation(
        asset_key=asset_key, check_name=verdict.gate, passed=verdict.passed, severity=dg.AssetCheckSeverity.ERROR,
        description=verdict.reason, metadata=_metadata(verdict),
    )


def _metadata(verdict: GateVerdict) -> dict:
    """The verdict in words, and its numbers."""
    metadata: dict = {"verdict": dg.MetadataValue.text(verdict.reason)}
    metadata.update({k: v for k, v in verdict.numbers.items() if isinstance(v, int | float | str) and not isinstance(v, bool)})
    return shown(metadata)


def shown(metadata: dict, digits: int = 4) -> dict:
    """Metadata as the Dagster UI shows it: floats to `digits` significant digits (0.8751, not 0.875123456789). The full
    precision stays in the stored values (JSON) and the audit trail; this is for reading."""
    return {k: float(f"{v:.{digits}g}") if isinstance(v, float) and v == v and abs(v) != float("inf") else v for k, v in metadata.items()}


def check_specs(names: Names, asset: str, **kwargs) -> list[dg.AssetCheckSpec]:
    """The check specs of one of a model's assets, from the gate table (name, blocking, description), in pipeline order."""
    return [
        dg.AssetCheckSpec(gate.name, asset=names.key(asset), blocking=gate.blocking, description=gate.demands, **kwargs)
        for gate in gate_table.on(asset)
    ]


def gate_key(names: Names, gate: gate_table.Gate) -> dg.AssetCheckKey:
    return names.check(gate.asset, gate.name)


def reverified_keys(names: Names) -> list[dg.AssetCheckKey]:
    """The checks whose latest result promotion requires to have passed for the candidate, in pipeline order."""
    return [gate_key(names, gate) for gate in gate_table.reverified()]


def every_check_key(names: Names) -> list[dg.AssetCheckKey]:
    """Every gate of a model that is a Dagster check (promotion's own are judged inside the decision), in pipeline order."""
    return [gate_key(names, gate) for gate in gate_table.GATES if gate.stage != "promotion"]
