"""raw_batch: landed files become accepted batches, or are quarantined with a report; its gate is the data contract
(blocking: a rejected file stops training in the same run)."""

import time

import dagster as dg

from mlcicd.faults import kill_point
from pydantic import Field

from mlcicd.core.ingest import abandoned_files, ingest_file, list_accepted, pending_files, quarantine_abandoned, shown
from mlcicd.core.simulate import next_batch_index, write_batches
from mlcicd.core.gate_table import BY_NAME
from mlcicd.core.gates import data_contract_gate
from mlcicd.core.ingest import BatchVerdict
from mlcicd.gate_checks import check_result
from mlcicd.names import Names
from mlcicd.project import Project
from mlcicd.resources import run_tier


class IngestConfig(dg.Config):
    files: list[str] = Field(
        default_factory=list, description="File names in the landing folder to ingest; empty means every file waiting there."
    )


def _verdict_table(verdicts: list[dict]) -> str:
    if not verdicts:
        return "No files were waiting in the landing folder."
    rows = ["| file | status | rows | where it is now | problems | unusual (reported as drift) |", "|---|---|---|---|---|---|"]
    for v in verdicts:
        problems = "; ".join(v["problems"]).replace("|", "/") or "-"
        unusual = "; ".join(v.get("unusual", [])).replace("|", "/") or "-"
        rows.append(f"| {v['source']} | {v['status']} | {v['rows']:,} | {v['location']} | {problems} | {unusual} |")
    return "\n".join(rows)


def raw_batch_for(n: Names, proj: Project) -> list[dg.AssetsDefinition]:
    """raw_batch and its gate, data_contract."""
    @dg.asset(
        key=n.key("raw_batch"), group_name=n.group, io_manager_key=n.io_manager_key,
        kinds={"pandas", "parquet", "pandera"},
        description=(
            "Landed files validated against the data contract. Each file is accepted whole into the model's accepted/ folder "
            "(named by content hash, so landing it again changes nothing) or moved to its quarantine/ with a report."
        ),
    )
    def raw_batch(context: dg.AssetExecutionContext, config: IngestConfig) -> dg.Output[dict]:
        return ingest(context, config, proj)

    @dg.asset_check(asset=raw_batch, blocking=BY_NAME["data_contract"].blocking, description=BY_NAME["data_contract"].demands)
    def data_contract(raw_batch: dict) -> dg.AssetCheckResult:
        verdicts = [BatchVerdict(**v) for v in raw_batch["verdicts"]]
        return check_result(data_contract_gate(verdicts, raw_batch["accepted_batches"]))

    return [raw_batch, data_contract]


def ingest(context: dg.AssetExecutionContext, config: IngestConfig, proj: Project) -> dg.Output[dict]:
    landing = proj.landing_dir
    tier = run_tier(context)
    if tier in ("ci", "pr") and not pending_files(landing) and not list_accepted(proj.accepted_dir):
        # a few days rather than one, so that the newest-day holdout looks like the days before it
        days, rows = 4, proj.config.simulator.ci_rows
        written = write_batches(
            landing, batches=days, rows_per_batch=rows // days, seed=proj.config.simulator.seed,
            start_index=next_batch_index([proj.data_dir]), dataset=proj.config.simulator.dataset,
        )
        context.log.info(f"ci tier: no data yet, simulated {rows:,} rows in {len(written)} batches into {landing}")

    if config.files:
        invalid = [name for name in config.files if "/" in name or "\\" in name or name.startswith(".")]
        if invalid:
            raise dg.Failure(f"not a file name in {landing}: {', '.join(shown(name) for name in invalid)}")
        # a named file no longer waiting was taken by another run (ingest_file reports it as a duplicate, not a failure)
        files = [landing / name for name in config.files]
    else:
        files = pending_files(landing)

    contract = proj.contract
    verdicts = []
    for index, path in enumerate(files):
        if index:
            kill_point("ingest.between_files")
        verdicts.append(ingest_file(path, contract, proj.accepted_dir, proj.archive_dir, proj.quarantine_dir).to_dict())
    if not config.files:  # a full scan also clears abandoned partial writes, which would otherwise wait forever
        minutes = proj.config.automation.abandoned_minutes
        for path in abandoned_files(landing, time.time(), minutes * 60):
            verdicts.append(quarantine_abandoned(path, proj.quarantine_dir, minutes).to_dict())
    for v in verdicts:
        log = context.log.warning if v["status"] == "quarantined" else context.log.info
        log(f"{v['source']}: {v['status']}" + (f" ({'; '.join(v['problems'])})" if v["problems"] else ""))
        if v.get("unusual"):
            context.log.warning(f"{v['source']}: accepted, but unusual (monitoring reports it as drift): {'; '.join(v['unusual'])}")
    accepted = list_accepted(proj.accepted_dir)
    report = {"verdicts": verdicts, "accepted_batches": len(accepted), "accepted_rows": sum(b.rows for b in accepted)}
    return dg.Output(
        report,
        metadata={
            "files_seen": len(verdicts),
            "accepted": sum(v["status"] == "accepted" for v in verdicts),
            "quarantined": sum(v["status"] == "quarantined" for v in verdicts),
            "duplicates": sum(v["status"] == "duplicate" for v in verdicts),
            "unusual": sum(bool(v.get("unusual")) for v in verdicts),
            "accepted_batches_in_store": len(accepted),
            "dagster/row_count": report["accepted_rows"],
            "verdicts": dg.MetadataValue.md(_verdict_table(verdicts)),
        },
    )
