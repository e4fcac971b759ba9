"""Fault injection, for tests that prove what happens on a bad day: MLCICD_FAULTS="name,name".

Off unless the variable names a fault; production never sets it. One place, so every injected fault is
listed here:
- serve.standby_skew: the service's standby slot answers slightly different predictions (a skewed build).
"""

import os

ENV = "MLCICD_FAULTS"


def active(name: str) -> bool:
    return name in {part.strip() for part in os.environ.get(ENV, "").split(",") if part.strip()}
