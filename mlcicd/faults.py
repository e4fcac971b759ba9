"""Fault injection, for tests that prove what happens on a bad day: MLCICD_FAULTS="name,name".

Off unless the variable names a fault; production never sets it. One place, so every injected fault is
listed here:
- serve.standby_skew: the service's standby slot answers slightly different predictions (a skewed build).
- the kill points in KILL_POINTS: the process dies there, as with kill -9.
"""

import os

ENV = "MLCICD_FAULTS"


def active(name: str) -> bool:
    return name in {part.strip() for part in os.environ.get(ENV, "").split(",") if part.strip()}


def kill_point(name: str) -> None:
    """Die here, at once, as `kill -9` would (no cleanup, no finally blocks), when the fault is named.
    The crash tests (mlcicd_tests/test_crashes.py) name each point listed in KILL_POINTS."""
    if active(name):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


KILL_POINTS = {
    # ingestion
    "ingest.before_write": "a batch validated, nothing written yet",
    "ingest.partial_written": "the accepted Parquet file written under its temporary name, not renamed",
    "ingest.after_parquet": "the accepted Parquet file in place, its JSON record not yet",
    "ingest.after_record": "the batch accepted, the landed file not yet moved to the archive",
    "ingest.between_files": "one file of several ingested",
    "quarantine.after_report": "a rejected file's report written, the file not yet moved beside it",
    # training
    "dataset.before_output": "the training dataset built, not yet stored",
    "split.before_output": "train and holdout split, not yet stored",
    "train.mid_boosting": "half of the boosting rounds done",
    "registry.after_log_model": "the model logged to MLflow, not yet tagged",
    "registry.before_challenger": "the version registered and tagged, `challenger` not yet moved",
    # evaluation
    "evaluate.after_candidate": "the candidate scored, the champion not yet",
    "evaluate.before_output": "the evaluation computed and logged, not yet stored",
    "gates.before_results": "the gates' step started, no result recorded",
    # promotion
    "promotion.before_decision": "the gates read, no decision yet",
    "promotion.after_audit": "the decision audited, the alias not yet moved",
    "registry.after_champion_tags": "the new champion's tags set, the alias not yet moved",
    "registry.after_champion_alias": "`champion` moved, `challenger` not yet cleared",
    "promotion.before_model_card": "the alias moved, the model card not yet written",
    "atomic_write.before_rename": "any file (asset value, accepted batch, card) written under its temporary name",
}
