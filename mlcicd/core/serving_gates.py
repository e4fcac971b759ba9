"""Verdicts on live traffic: the live version's budget after a deployment, and the canary against the champion.
Each returns (verdict, enough_data): without enough requests the verdict fails as "cannot be judged yet",
which alerts see but which never starts a rollback."""

from __future__ import annotations

from mlcicd.core.gates import GateVerdict


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


MEASURES = {  # what each canary measure is, in words, and how its limit reads
    "errors": "server-error rate, canary minus champion",
    "latency": "log latency, canary minus champion (a ratio)",
    "disagreement": "share of the canary's rows decided differently by the champion",
    "outcome": "business outcome, how much worse the canary is (POST /feedback)",
}


def canary_streams(requests, feedback, settings) -> dict | None:
    """The canary's requests (its newest version, since its first request) and the champion's over the same time, as
    the per-request values each measure compares: (canary times, canary values, champion times, champion values)."""
    import numpy as np

    canary = requests[requests["slot"] == "canary"]
    if canary.empty:
        return None
    version = str(canary["version"].iloc[-1])
    canary = canary[canary["version"].astype(str) == version]
    live = requests[(requests["slot"] == "live") & (requests["at"] >= canary["at"].min())]

    def seconds(frame):
        return frame["at"].astype("int64").to_numpy() / 1e9

    def ok(frame):
        return frame[frame["status"] < 400]  # a client's mistake says nothing about either version

    streams = {
        "errors": (seconds(canary), (canary["status"] >= 500).to_numpy(float), seconds(live), (live["status"] >= 500).to_numpy(float)),
        "latency": (seconds(ok(canary)), np.log(np.maximum(ok(canary)["latency_ms"].to_numpy(float), 1e-3)),
                    seconds(ok(live)), np.log(np.maximum(ok(live)["latency_ms"].to_numpy(float), 1e-3))),
    }
    if "disagreement" in canary.columns:
        judged = canary[canary["disagreement"].notna()]
        streams["disagreement"] = (seconds(judged), judged["disagreement"].to_numpy(float), None, None)
    if feedback is not None and len(feedback) and "request_id" in requests.columns:
        outcomes = feedback.groupby("request_id")["outcome"].last()
        sign = 1.0 if settings.ab.higher_is_better else -1.0
        mine = canary[canary["request_id"].isin(outcomes.index)]
        theirs = live[live["request_id"].isin(outcomes.index)]
        if min(len(mine), len(theirs)) >= settings.ab.min_feedback:  # champion minus canary: how much worse the canary is
            streams["outcome"] = (seconds(theirs), sign * outcomes.loc[theirs["request_id"]].to_numpy(float),
                                  seconds(mine), sign * outcomes.loc[mine["request_id"]].to_numpy(float))
    return {"version": version, "canary_requests": int(len(canary)), "live_requests": int(len(live)),
            "since": canary["at"].min().isoformat(), "streams": streams, "feedback": 0 if feedback is None else int(len(feedback))}


def canary_gate(evidence: dict | None, settings, trajectories: bool = True) -> tuple[GateVerdict, bool, dict]:
    """The canary against the champion, each measure by an anytime-valid sequential test at settings.false_alarm_rate:
    any measure proven beyond its limit fails (a rollback); every measure proven within its limit passes (promote, even
    before the window's end); otherwise it is undecided and says how far each interval is from deciding. Returns the
    verdict, whether it decided, and (with `trajectories`) each measure's interval as the requests came, for the report."""
    import math

    from mlcicd.core.sequential import compare, trajectory

    if not evidence or evidence["canary_requests"] < settings.min_requests:
        count = evidence["canary_requests"] if evidence else 0
        few = f"The canary answered {count} request(s) (at least {settings.min_requests} are needed to judge it)."
        return GateVerdict("canary_comparison", False, few, {"canary_requests": count}), False, {}
    limits = {"errors": settings.max_error_rate_increase, "latency": math.log(settings.max_latency_ratio),
              "disagreement": settings.max_disagreement, "outcome": settings.ab.max_outcome_drop}
    bernoulli = {"errors": True, "disagreement": True}
    alpha, tight = settings.false_alarm_rate, settings.tight_at_requests
    results, paths = {}, {}
    for name, (first_t, first, second_t, second) in evidence["streams"].items():
        options = {"alpha": alpha, "tight_at": tight, "bernoulli": bernoulli.get(name, False)}
        results[name] = compare(name, first, second, limits[name], **options)
        paths[name] = trajectory(first_t, first, second_t, second, limits[name], **options) if trajectories else []
    version = evidence["version"]
    numbers = {"canary_version": version, "canary_requests": evidence["canary_requests"], "live_requests": evidence["live_requests"],
               "false_alarm_rate": alpha}
    for name, result in results.items():
        bounds = {f"{name}_low": result.low, f"{name}_high": result.high}
        numbers.update({f"{name}_estimate": result.estimate, f"{name}_state": result.state, f"{name}_limit": result.limit,
                        **{k: v if math.isfinite(v) else "unbounded (too few requests)" for k, v in bounds.items()}})

    def said(r) -> str:
        shown = (lambda v: f"x{math.exp(v):.2f}") if r.measure == "latency" else (lambda v: f"{v:+.4f}")
        limit = f"x{math.exp(r.limit):.2f}" if r.measure == "latency" else f"{r.limit:g}"
        return (f"{MEASURES[r.measure]} {shown(r.estimate)} (interval {shown(r.low) if math.isfinite(r.low) else '-inf'} to "
                f"{shown(r.high) if math.isfinite(r.high) else '+inf'}; limit {limit}): {r.state}")

    head = (f"Canary version {version} over {evidence['canary_requests']} requests against the champion's {evidence['live_requests']}, "
            f"judged sequentially (false-alarm rate {alpha:g} however often it is looked at)")
    worse = [r for r in results.values() if r.state == "worse"]
    if worse:
        return GateVerdict("canary_comparison", False, head + ": worse beyond its limit, stop and roll back: "
                           + "; ".join(said(r) for r in worse) + ".", numbers), True, paths
    if all(r.state == "within" for r in results.values()):
        return GateVerdict("canary_comparison", True, head + ": every measure is proven within its limit, so it may be promoted now: "
                           + "; ".join(said(r) for r in results.values()) + ".", numbers), True, paths
    waiting = [r for r in results.values() if r.state != "within"]
    return GateVerdict("canary_comparison", False, head + ": not decided yet, keep the canary running: "
                       + "; ".join(said(r) for r in waiting) + ".", numbers), False, paths
