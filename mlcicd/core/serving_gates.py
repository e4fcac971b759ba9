"""Verdicts on live traffic: the live version's budget after a deployment, and the canary against the champion.
Each returns (verdict, enough_data): without enough requests the verdict fails as "cannot be judged yet",
which alerts see but which never starts a rollback."""

from __future__ import annotations

from mlcicd.core.gates import GateVerdict
from mlcicd.core.scoring import psi


def budget_gate(live: dict | None, settings) -> tuple[GateVerdict, bool]:
    if not live or live["requests"] < settings.min_requests:
        count = live["requests"] if live else 0
        few = (f"Only {count} live request(s) in the last {settings.window_minutes:g} minutes "
               f"(at least {settings.min_requests} are needed to judge the budget).")
        return GateVerdict("serving_within_budget", False, few, {"requests": count}), False
    numbers = {
        "version": ", ".join(live["versions"]), "requests": live["requests"], "server_error_rate": live["server_error_rate"],
        "max_error_rate": settings.max_error_rate, "p95_ms": live["p95_ms"], "max_p95_ms": settings.p95_latency_ms,
    }
    breaches = []
    if live["server_error_rate"] > settings.max_error_rate:
        breaches.append(f"server errors on {live['server_error_rate']:.1%} of requests (budget {settings.max_error_rate:.1%})")
    if live["p95_ms"] > settings.p95_latency_ms:
        breaches.append(f"p95 latency {live['p95_ms']:.1f} ms (budget {settings.p95_latency_ms:g} ms)")
    if breaches:
        return GateVerdict("serving_within_budget", False, f"Version {numbers['version']} breaches its budget: " + "; ".join(breaches) + ".", numbers), True
    within = (f"Version {numbers['version']} is within budget over {live['requests']} requests: {live['server_error_rate']:.1%} server errors, "
              f"p95 {live['p95_ms']:.1f} ms.")
    return GateVerdict("serving_within_budget", True, within, numbers), True


def canary_gate(canary: dict | None, live: dict | None, settings, probabilities: bool = True) -> tuple[GateVerdict, bool]:
    if not canary or canary["requests"] < settings.min_requests or not live:
        count = canary["requests"] if canary else 0
        few = f"The canary answered {count} request(s) in the window (at least {settings.min_requests} are needed to judge it)."
        return GateVerdict("canary_comparison", False, few, {"canary_requests": count}), False
    shift = psi(live["scores"], canary["scores"], probabilities=probabilities) if live["scores"] and canary["scores"] else float("nan")
    numbers = {
        "canary_version": ", ".join(canary["versions"]), "canary_requests": canary["requests"], "live_requests": live["requests"],
        "canary_error_rate": canary["server_error_rate"], "live_error_rate": live["server_error_rate"],
        "canary_p95_ms": canary["p95_ms"], "live_p95_ms": live["p95_ms"], "prediction_psi": shift,
    }
    problems = []
    if canary["server_error_rate"] - live["server_error_rate"] > settings.max_error_rate_increase:
        problems.append(f"server errors {canary['server_error_rate']:.1%} against the champion's {live['server_error_rate']:.1%}")
    if canary["p95_ms"] > settings.max_latency_ratio * max(live["p95_ms"], 1e-9):
        problems.append(f"p95 latency {canary['p95_ms']:.1f} ms against the champion's {live['p95_ms']:.1f} ms (at most x{settings.max_latency_ratio:g})")
    if not shift == shift or shift > settings.max_prediction_psi:  # NaN fails
        problems.append(f"its predictions shifted (PSI {shift:.3f} > {settings.max_prediction_psi:g})")
    if problems:
        worse = f"Canary version {numbers['canary_version']} does worse than the champion: " + "; ".join(problems) + "."
        return GateVerdict("canary_comparison", False, worse, numbers), True
    return GateVerdict(
        "canary_comparison", True,
        f"Canary version {numbers['canary_version']} matches the champion over {canary['requests']} requests: {canary['server_error_rate']:.1%} server errors, "
        f"p95 {canary['p95_ms']:.1f} ms (champion {live['p95_ms']:.1f} ms), prediction PSI {shift:.3f}.", numbers,
    ), True
