"""Where a stage's time goes: its phases, written as JSON lines when the benchmark asks.

With TRANSFER_TIMINGS naming a file, every `phase()` appends a line to it ({"pid", "phase",
"start", "seconds"}; `start` is the wall-clock time, comparable across processes). Without
it, nothing is written. A stage's whole life is the benchmark's to measure, from outside
(bench/timeline.py): nothing here runs unless a stage times a phase.
"""

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TIMINGS_ENV = "TRANSFER_TIMINGS"


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as phase `name`."""
    start, clock = time.time(), time.perf_counter()
    try:
        yield
    finally:
        target = os.environ.get(TIMINGS_ENV)
        if target:
            entry = {"pid": os.getpid(), "phase": name, "start": start}
            entry["seconds"] = time.perf_counter() - clock
            with Path(target).open("a") as file:
                file.write(json.dumps(entry) + "\n")
