"""The names one model's definitions go by in Dagster: asset keys under the model's prefix (fraud/candidate_model), its
group, its job, sensor and schedule names (fraud__training_job), its IO manager. One place, so the pipeline, the CLI,
the sensors and the tests agree."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

SEP = "__"  # Dagster's own separator for a prefixed key's op name (fraud/raw_batch runs as op fraud__raw_batch)
MODEL_TAG = "mlcicd/model"  # every run of a model's own jobs carries it


@dataclass(frozen=True)
class Names:
    model: str

    @property
    def group(self) -> str:
        return self.model

    @property
    def io_manager_key(self) -> str:
        return f"{self.model}{SEP}io_manager"

    def key(self, asset: str) -> dg.AssetKey:
        return dg.AssetKey([self.model, asset])

    def check(self, asset: str, gate: str) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(self.key(asset), gate)

    def ins(self, *assets: str) -> dict[str, dg.AssetIn]:
        """Inputs from this model's assets, by the names the function's parameters use."""
        return {asset: dg.AssetIn(key=self.key(asset)) for asset in assets}

    def op(self, name: str) -> str:
        """The op (step) an asset or op of this model runs as: what run config is keyed by."""
        return f"{self.model}{SEP}{name}"

    def job(self, name: str) -> str:
        return f"{self.model}{SEP}{name}"

    sensor = schedule = job

    @property
    def tags(self) -> dict[str, str]:
        return {MODEL_TAG: self.model}


def names(project) -> Names:
    return Names(project.name)
