"""What changed between two model versions, on each of the three axes a model changes along: data, code, settings.

A version's provenance is recorded when it is trained (`provenance`): the dataset's content hash and batches, the git
commit, the content hash of each code and settings component (mlcicd/code_versions.py) and the settings themselves.
`what_changed` compares two of them in sentences a reviewer reads; the audit record and the model card keep them.
"""

from __future__ import annotations

from typing import Any

AXES = ("data", "code", "settings")


def provenance(*, dataset_hash: str, batches: list[str], git_commit: str, components: dict[str, str], settings: dict,
               training: dict | None = None) -> dict:
    """What a version was made from; `training` (its rows' time window, hyperparameters, ...) is for its model card."""
    return {"dataset_hash": dataset_hash, "batches": list(batches), "git_commit": git_commit, "components": dict(components),
            "settings": settings, "training": training}


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys (model.params.num_leaves)."""
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def settings_changes(before: dict, after: dict, limit: int = 20) -> list[str]:
    """Each setting whose value differs, as `key: old -> new`."""
    old, new = flatten(before), flatten(after)
    lines = [f"{key}: {old.get(key, '(not set)')!r} -> {new.get(key, '(not set)')!r}"
             for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])


def what_changed(before: dict | None, after: dict, changed_files: list[str] | None = None) -> dict[str, list[str]]:
    """Per axis, what differs from `before` to `after` (each a provenance); an empty list: nothing changed on that axis.
    Components named `*_code` are the code axis; the others (settings sections, the contract) the settings axis."""
    if not before:
        return {axis: ["no record of the previous version's provenance: cannot tell"] for axis in AXES}
    out: dict[str, list[str]] = {axis: [] for axis in AXES}
    if before.get("dataset_hash") != after.get("dataset_hash"):
        added = [b for b in after.get("batches", []) if b not in before.get("batches", [])]
        dropped = [b for b in before.get("batches", []) if b not in after.get("batches", [])]
        hashes = f"dataset {str(before.get('dataset_hash'))[:12]} -> {str(after.get('dataset_hash'))[:12]}"
        if added or dropped:
            out["data"].append(f"{hashes}: {len(added)} batch(es) added, {len(dropped)} left the window")
        else:
            out["data"].append(f"{hashes}: the same batches, another selection of their rows (a tier's sample)")
        out["data"] += [f"added batch {b}" for b in added[:10]] + [f"dropped batch {b}" for b in dropped[:10]]
    components_before, components_after = before.get("components") or {}, after.get("components") or {}
    code = [name for name in components_after if name.endswith("_code") and components_before.get(name) != components_after[name]]
    if before.get("git_commit") != after.get("git_commit"):
        out["code"].append(f"commit {str(before.get('git_commit'))[:12]} -> {str(after.get('git_commit'))[:12]}")
    out["code"] += [f"{name} changed" for name in code]
    out["code"] += [f"changed file {path}" for path in (changed_files or [])[:20]]
    if components_before.get("contract") != components_after.get("contract"):
        out["settings"].append("the data contract changed")
    out["settings"] += settings_changes(before.get("settings") or {}, after.get("settings") or {})
    return out


def in_one_line(changes: dict[str, list[str]]) -> str:
    """`data: ...; code: ...; settings: ...`, or that nothing changed."""
    parts = [f"{axis}: {', '.join(changes[axis][:3])}{' ...' if len(changes[axis]) > 3 else ''}" for axis in AXES if changes.get(axis)]
    return "; ".join(parts) if parts else "nothing changed on any axis"
