"""Ingestion through ingestion_job: accepted whole, or quarantined with a report; never lost, never twice."""

import hashlib
import json

import pandas as pd
import pytest

from mlcicd.core.ingest import list_accepted
from mlcicd.core.simulate import simulate_batch, write_batches


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_results(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def store_snapshot(project) -> dict:
    return {p.name: sha(p) for p in sorted(project.accepted_dir.glob("*"))}


def test_good_batch_is_accepted_whole_and_archived(project, run_job):
    (landed,) = write_batches(project.landing_dir, batches=1, rows_per_batch=2000)
    original = sha(landed)
    result = run_job("fraud__ingestion_job")
    assert result.success
    (batch,) = list_accepted(project.accepted_dir)
    assert batch.source == landed.name and batch.rows == 2000 and batch.content_hash == original
    assert len(pd.read_parquet(batch.path)) == 2000
    assert not landed.exists() and sha(project.archive_dir / landed.name) == original
    check = check_results(result)["data_contract"]
    assert check.passed and "1 accepted" in check.description


def test_a_batch_read_by_the_process_that_wrote_it_is_what_its_file_holds(project, run_job):
    """Ingestion hands its accepted tables to training_dataset without a second read: same content as the file."""
    from mlcicd.core.tables import read_table

    write_batches(project.landing_dir, batches=2, rows_per_batch=1500)
    assert run_job("fraud__ingestion_job").success
    batches = list_accepted(project.accepted_dir)
    for batch in batches:
        kept = read_table(batch.path)
        assert kept is read_table(batch.path), "handed over from memory, not read again"
        pd.testing.assert_frame_equal(kept, pd.read_parquet(batch.path))
    changed = pd.read_parquet(batches[0].path).head(10)
    changed.to_parquet(batches[0].path, index=False)  # the file is no longer what was written: read it
    assert len(read_table(batches[0].path)) == 10


def test_bad_batch_is_quarantined_with_a_report_and_blocks(project, run_job):
    write_batches(project.landing_dir, batches=1, rows_per_batch=1000, start_index=0)
    (bad,) = write_batches(project.landing_dir, batches=1, rows_per_batch=1000, scenario="schema_break", start_index=1)
    original = sha(bad)
    result = run_job("fraud__ingestion_job")

    assert not result.success, "a failed blocking check fails the run"
    check = check_results(result)["data_contract"]
    assert not check.passed
    assert bad.name in check.description and "column 'amount' is missing" in check.description
    assert check.metadata["quarantined"].value == 1

    kept = project.quarantine_dir / bad.name
    assert sha(kept) == original, "the rejected file is kept byte for byte"
    report = json.loads((project.quarantine_dir / f"{bad.name}.report.json").read_text())
    assert report["rows"] == 1000 and report["content_sha256"] == original
    text = (project.quarantine_dir / f"{bad.name}.report.txt").read_text()
    assert "column 'amount_usd' is not in the contract" in text and "customer_age" in text
    assert [b.source for b in list_accepted(project.accepted_dir)] == ["batch-00000-baseline.parquet"]


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("zero.parquet", b"", "the file is empty (0 bytes)"),
        ("garbage.parquet", b"this is not parquet at all", "cannot be read as parquet"),
        ("notes.txt", b"hello", "unsupported file type '.txt'"),
        ("header-only.csv", None, "the batch has 0 row(s)"),
        ("no-target.csv", None, "column 'is_fraud' is missing"),
        ("wrong-types.csv", None, "column 'amount': 3 value(s) cannot be read as 'float64'"),
    ],
)
def test_unreadable_or_wrong_files_are_quarantined_naming_file_and_problem(project, run_job, name, content, problem):
    path = project.landing_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = simulate_batch(0, 3)
    if name == "header-only.csv":
        frame.head(0).to_csv(path, index=False)
    elif name == "no-target.csv":
        frame.drop(columns=["is_fraud"]).to_csv(path, index=False)
    elif name == "wrong-types.csv":
        frame.assign(amount="twelve").to_csv(path, index=False)
    else:
        path.write_bytes(content)
    original = sha(path)

    result = run_job("fraud__ingestion_job")
    check = check_results(result)["data_contract"]
    assert not check.passed and name in check.description and problem in check.description
    assert sha(project.quarantine_dir / name) == original
    assert problem in (project.quarantine_dir / f"{name}.report.txt").read_text()
    assert list_accepted(project.accepted_dir) == []


def test_ingesting_the_same_content_again_changes_nothing(project, run_job):
    (landed,) = write_batches(project.landing_dir, batches=1, rows_per_batch=1500)
    content = landed.read_bytes()
    assert run_job("fraud__ingestion_job").success
    before = store_snapshot(project)

    landed.write_bytes(content)  # the same export arrives again
    result = run_job("fraud__ingestion_job")
    assert result.success
    assert store_snapshot(project) == before
    (materialization,) = result.asset_materializations_for_node("fraud__raw_batch")
    assert materialization.metadata["duplicates"].value == 1 and materialization.metadata["accepted"].value == 0
    assert len(list(project.archive_dir.iterdir())) == 2, "both copies are kept, neither is ingested twice"


def test_files_still_being_written_are_left_alone(project, run_job):
    project.landing_dir.mkdir(parents=True)
    partial = project.landing_dir / ".batch-00009-baseline.parquet.part"
    partial.write_bytes(b"half a file")
    result = run_job("fraud__ingestion_job")
    assert check_results(result)["data_contract"].passed is False  # nothing accepted yet: nothing to train on
    assert partial.exists() and list(project.quarantine_dir.glob("*")) == []


def test_naming_a_path_fails_clearly_and_a_file_already_taken_is_a_duplicate(project, run_job):
    result = run_job("fraud__ingestion_job", {"ops": {"fraud__raw_batch": {"config": {"files": ["../mlcicd.yaml"]}}}})
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert "not a file name in" in failure.event_specific_data.error.message and "../mlcicd.yaml" in failure.event_specific_data.error.message

    taken = run_job("fraud__ingestion_job", {"ops": {"fraud__raw_batch": {"config": {"files": ["taken-by-another-run.parquet"]}}}})
    (verdict,) = taken.output_for_node("fraud__raw_batch")["verdicts"]
    assert verdict["status"] == "duplicate" and "already taken by another ingestion run" in verdict["problems"][0]


def test_no_file_name_can_be_used_against_the_pipeline(project, run_job, tmp_path):
    """A name too long for its report, a newline in a name, a link out of data/, an abandoned partial write: each is
    quarantined with a report, never followed, and never keeps the good file beside it from being accepted."""
    import os
    import time

    (good,) = write_batches(project.landing_dir, batches=1, rows_per_batch=500)
    bad = pd.read_parquet(good).drop(columns=["channel"])
    long_name = project.landing_dir / ("x" * 246 + ".parquet")  # 254 characters: its report's name would be too long
    bad.to_parquet(long_name)
    newline = project.landing_dir / "evil\nERROR - run failed.parquet"
    bad.to_parquet(newline)
    secret = tmp_path / "secret.csv"
    secret.write_text("password=hunter2\n")
    os.symlink(secret, project.landing_dir / "link.csv")
    abandoned = project.landing_dir / ".upload-0001.parquet.part"
    abandoned.write_bytes(b"half a file")
    hours_ago = time.time() - 2 * 3600
    os.utime(abandoned, (hours_ago, hours_ago))

    result = run_job("fraud__ingestion_job")
    verdicts = {v["source"]: v for v in result.output_for_node("fraud__raw_batch")["verdicts"]}
    assert verdicts[good.name]["status"] == "accepted"
    assert {v["status"] for name, v in verdicts.items() if name != good.name} == {"quarantined"} and len(verdicts) == 5
    assert "evil\\nERROR - run failed.parquet" in verdicts, "a newline in a name is shown escaped, never as a line"
    assert "never followed" in verdicts["link.csv"]["problems"][0]
    assert "abandoned partial write" in verdicts[".upload-0001.parquet.part"]["problems"][0]
    assert list(project.landing_dir.iterdir()) == [], "nothing is left to block the next run"
    reports = list(project.quarantine_dir.glob("*.report.txt"))
    assert len(reports) == 4 and all(len(r.name.encode()) < 200 for r in reports)
    assert "hunter2" not in "".join(r.read_text() for r in reports) and secret.read_text() == "password=hunter2\n"
    assert (project.quarantine_dir / "link.csv").is_symlink(), "the link itself was moved, not what it points at"
    assert run_job("fraud__ingestion_job").output_for_node("fraud__raw_batch")["verdicts"] == [], "the next run starts clean"


def test_a_batch_can_be_taken_out_of_training_and_put_back_audited_never_deleted(project, run_job):
    from click.testing import CliRunner

    from mlcicd.cli import main

    write_batches(project.landing_dir, batches=3, rows_per_batch=1000)
    assert run_job("fraud__ingestion_job").success
    first, second, third = list_accepted(project.accepted_dir)

    def cli(*args):
        return CliRunner().invoke(main, list(args))

    short = cli("batches", "remove", second.batch_id[:8], "--reason", "short")
    assert short.exit_code != 0 and "say why the batch is removed" in short.output
    unknown = cli("batches", "remove", "nope", "--reason", "labels shuffled upstream")
    assert unknown.exit_code != 0 and "no batch" in unknown.output and first.batch_id in unknown.output

    removed = cli("batches", "remove", second.batch_id[:8], "--reason", "labels shuffled upstream (ticket 7)")
    assert removed.exit_code == 0, removed.output
    assert [b.batch_id for b in list_accepted(project.accepted_dir)] == [first.batch_id, third.batch_id]
    assert [b.batch_id for b in list_accepted(project.removed_dir)] == [second.batch_id]  # moved, with its record
    assert second.batch_id not in cli("batches", "list").output and second.batch_id in cli("batches", "list", "--removed").output

    write_batches(project.landing_dir, batches=1, rows_per_batch=1000, start_index=3)
    assert run_job("fraud__ingestion_job").success
    newest = list_accepted(project.accepted_dir)[-1]
    assert newest.sequence == 4, "arrival numbers are never reused"

    assert cli("batches", "restore", second.batch_id, "--reason", "false alarm").exit_code == 0
    assert [b.batch_id for b in list_accepted(project.accepted_dir)] == [first.batch_id, second.batch_id, third.batch_id, newest.batch_id]
    log = [json.loads(line) for line in project.batch_log.read_text().splitlines()]
    assert [(r["action"], r["batch_id"]) for r in log] == [("removed", second.batch_id), ("restored", second.batch_id)]
    assert log[0]["reason"] == "labels shuffled upstream (ticket 7)" and log[0]["by"]


def test_the_same_rows_under_another_name_or_format_are_a_duplicate(project, run_job):
    (landed,) = write_batches(project.landing_dir, batches=1, rows_per_batch=800)
    frame = pd.read_parquet(landed)
    assert run_job("fraud__ingestion_job").success
    frame[list(reversed(frame.columns))].to_csv(project.landing_dir / "resaved-as.csv", index=False)  # columns reordered too
    result = run_job("fraud__ingestion_job")
    (verdict,) = result.output_for_node("fraud__raw_batch")["verdicts"]
    assert verdict["status"] == "duplicate" and f"landed as {landed.name}" in verdict["problems"][0]
    assert len(list_accepted(project.accepted_dir)) == 1 and (project.archive_dir / "resaved-as.csv").exists(), "kept, not ingested"


def test_a_batch_stored_before_text_was_hashed_as_categories_still_finds_its_resave(project, run_job):
    """Ingestion hashes text stored as categories (each distinct value once); earlier releases hashed it as text. The
    hashes must be equal, or a re-save of a batch accepted before the change would be ingested a second time."""
    from mlcicd.core.contract import load_contract, validate
    from mlcicd.core.ingest import read_batch

    (landed,) = write_batches(project.landing_dir, batches=1, rows_per_batch=800)
    contract = load_contract(project.contract_path)
    as_text = validate(read_batch(landed), contract).validated
    assert all(as_text[c].dtype == object for c, rule in contract.columns.items() if rule.dtype == "str")
    expected = hashlib.sha256(pd.util.hash_pandas_object(as_text[list(contract.columns)], index=False).to_numpy().tobytes()).hexdigest()
    assert run_job("fraud__ingestion_job").success
    (batch,) = list_accepted(project.accepted_dir)
    assert batch.rows_hash == expected
