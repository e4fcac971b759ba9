"""The promotion decision as a pure function of the evidence: gate results, identity, mode, override."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mlcicd.core.audit import MOVES

Decision = Literal["promoted", "overridden", "refused", "unchanged", "rolled_back"]


@dataclass(frozen=True)
class PromotionRequest:
    mode: Literal["auto", "manual"]
    automated: bool  # started by a sensor or a schedule
    override: bool = False
    reason: str = ""
    min_reason_chars: int = 20


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str
    problems: list[str] = field(default_factory=list)

    @property
    def moves_alias(self) -> bool:
        return self.decision in MOVES


# Checks an override can never waive: an override waives gates about quality, never about identity (which version,
# which evaluation, whether its files are the ones registered).
IDENTITY_CHECKS = ("identity", "identity_now", "artifact_integrity")

# Gates that judge the data rather than the model: when one fails, it is named first, and the model gates that failed
# beside it are marked as judged on that data (bad labels are not a bad model).
DATA_PROBLEM_GATES = ("data_contract", "label_balance", "label_quality")
# the gates that judge on those labels
MODEL_GATE_NAMES = ("meets_thresholds", "no_regression", "no_slice_regression", "operating_point", "negative_flips", "calibration")


def problems_from(gates: dict[str, dict]) -> list[str]:
    failed = [name for name, result in gates.items() if not result["passed"]]
    data = [name for name in failed if name in DATA_PROBLEM_GATES]
    suffix = f" (judged on the data that {', '.join(data)} flagged)" if data else ""
    return [f"gate {name} did not pass: {gates[name]['reason']}" for name in data] + [
        f"gate {name} did not pass: {gates[name]['reason']}" + (suffix if name in MODEL_GATE_NAMES else "") for name in failed if name not in data
    ]



def unwaivable(gates: dict[str, dict]) -> list[str]:
    """The failed identity checks among `gates`, as problems_from words them."""
    return problems_from({name: result for name, result in gates.items() if name in IDENTITY_CHECKS})


def decide_promotion(
    version: str, current: str | None, problems: list[str], request: PromotionRequest, identity: list[str] = (), nothing_new: bool = False,
) -> Verdict:
    """`identity`: the failed identity checks (unwaivable); they are also among `problems`. `nothing_new`: the candidate is
    the champion itself (same data, same committed code, same settings), so nothing was trained or registered."""
    if request.mode == "manual" and request.automated:
        return Verdict(
            "refused",
            "Promotion refused: promotion.mode is manual, so only a person may promote (run promotion_job from the UI, the CLI or CI).",
            ["mode: manual"],
        )
    if request.override and len(request.reason.strip()) < request.min_reason_chars:
        return Verdict(
            "refused",
            f"Promotion refused: an override needs a written reason of at least {request.min_reason_chars} characters.",
            ["override without a reason"],
        )
    if problems and not request.override:
        return Verdict("refused", "Promotion refused: " + "; ".join(problems) + ".", problems)
    if identity:
        return Verdict(
            "refused",
            "Promotion refused: an override waives gates about quality, never identity: " + "; ".join(identity) + ".",
            list(identity),
        )
    if current == version:
        if nothing_new:
            return Verdict("unchanged", f"unchanged: nothing new to learn (version {version} was trained on the same data, by the same "
                                        "commit, with the same settings); nothing was registered", problems)
        return Verdict("unchanged", f"Version {version} is already the champion; nothing to do.", problems)
    if problems:
        return Verdict(
            "overridden",
            f"promoted version {version} by OVERRIDE despite {len(problems)} failed gate(s) ({'; '.join(problems)}); "
            f"the reason given: {request.reason.strip()}",
            problems,
        )
    return Verdict("promoted", f"promoted because every gate passed for version {version}", [])


def decide_rollback(
    target: str | None, current: str | None, target_passed_gates: bool | None, request: PromotionRequest, note: str = "",
    problems: list[str] | None = None,
) -> Verdict:
    """`problems`: what the identity checks made now found wrong with the target (its model files changed since
    registration, say). They refuse the rollback even with an override; a version that never passed its gates is
    refused unless overridden with a written reason."""
    if target is None:
        return Verdict("refused", "Rollback refused: there is no previous champion to go back to; name a version.", ["no target"])
    if target_passed_gates is None:
        return Verdict("refused", f"Rollback refused: version {target} does not exist in the registry.", ["unknown version"])
    if target == current:
        return Verdict("unchanged", f"Version {target} is already the champion; nothing to do.")
    if problems:
        return Verdict(
            "refused",
            f"Rollback refused: {'; '.join(problems)}; an override waives gates about quality, never identity.",
            list(problems),
        )
    problems = [] if target_passed_gates else [f"version {target} never passed its gates"]
    if problems:
        if not request.override:
            return Verdict(
                "refused",
                f"Rollback refused: {'; '.join(problems)}; roll back to it only with override and a written reason.",
                problems,
            )
        if len(request.reason.strip()) < request.min_reason_chars:
            short = f"Rollback refused: an override needs a written reason of at least {request.min_reason_chars} characters."
            return Verdict("refused", short, ["override without a reason"])
        return Verdict(
            "rolled_back",
            f"rolled back from version {current} to version {target} by OVERRIDE ({'; '.join(problems)}); the reason given: {request.reason.strip()}",
            problems,
        )
    why = f"; the reason given: {note.strip()}" if note.strip() else ""
    return Verdict("rolled_back", f"rolled back from version {current} to version {target}, which passed its gates when it was promoted{why}")
