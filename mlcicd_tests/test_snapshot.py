"""The definitions, snapshotted (in the style of dagster-open-platform): asset keys with their groups, kinds, deps
and automation conditions; checks with blocking; jobs with what they select and their tags; sensors and schedules
with their defaults. An accidental change to the graph fails here and shows up in review as a diff of
snapshots/definitions.json. After an intended change: `MLCICD_UPDATE_SNAPSHOT=1 make test`, and commit the file."""

import json
import os
from pathlib import Path

import dagster as dg

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def condition(c) -> str | None:
    """An automation condition as a readable expression, e.g. AND(eager, all_deps_blocking_checks_passed): a labelled
    (built-in) condition by its label, anything else by its name and its parts."""
    if c is None:
        return None
    if c.get_label():
        return c.get_label()
    children = ", ".join(condition(child) for child in c.children)
    return f"{c.name}({children})" if children else c.name


def shape(definitions: dg.Definitions) -> dict:
    graph = definitions.resolve_asset_graph()
    repository = definitions.get_repository_def()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name, "kinds": sorted(node.kinds), "deps": sorted(d.to_user_string() for d in node.parent_keys),
            "automation_condition": condition(node.automation_condition),
        }
    checks = {}
    for key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        spec = graph.get_check_spec(key)
        checks[f"{key.asset_key.to_user_string()}:{key.name}"] = {
            "blocking": spec.blocking, "automation_condition": condition(spec.automation_condition),
        }
    jobs = {}
    for job in sorted(repository.get_all_jobs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue
        jobs[job.name] = {
            "selects": sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys),
            "tags": {k: v for k, v in sorted(job.tags.items())},
        }
    sensors = {
        s.name: {"default_status": s.default_status.value, "minimum_interval_seconds": s.minimum_interval_seconds,
                 "jobs": sorted(t.job_name for t in s.targets if t.job_name)}
        for s in sorted(repository.sensor_defs, key=lambda s: s.name)
    }
    schedules = {
        s.name: {"cron": s.cron_schedule, "job": s.job_name, "default_status": s.default_status.value}
        for s in sorted(repository.schedule_defs, key=lambda s: s.name)
    }
    return {"assets": assets, "checks": checks, "jobs": jobs, "sensors": sensors, "schedules": schedules}


def test_the_definitions_match_their_snapshot(definitions):
    current = shape(definitions)
    if os.environ.get("MLCICD_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=False) + "\n")
    recorded = json.loads(SNAPSHOT.read_text())
    for section in recorded:
        assert current[section] == recorded[section], (
            f"the {section} of the code location changed; if that was intended, run MLCICD_UPDATE_SNAPSHOT=1 make test and commit "
            f"{SNAPSHOT.relative_to(Path(__file__).parents[1])}"
        )
    assert set(current) == set(recorded)
