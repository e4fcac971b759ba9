"""Keep the loaded code out of the garbage collector's way, in every process that loads the code location.

Loading Dagster, pandas, pandera and our definitions leaves about half a million objects (modules, classes,
functions) that live as long as the process. Python's cyclic collector walks all of them on every full
collection during a run, and once more, several times over, while the interpreter shuts down: after a 1M-row
`training_job` the exit alone took about 2 s (`benchmarks/scale.py`). `gc.freeze()` moves the objects alive
at that moment into the permanent generation, which collections skip; objects are still freed by reference
counting as usual. At exit, freezing everything skips the final collections (the OS reclaims the memory).
"""

from __future__ import annotations

import atexit
import gc

_frozen = False


def freeze_loaded_code() -> None:
    """Once per process, after the code location is loaded: freeze what is alive, and skip the collections at exit."""
    global _frozen
    if _frozen:
        return
    _frozen = True
    gc.freeze()
    atexit.register(gc.freeze)
