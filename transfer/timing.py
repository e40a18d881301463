"""Where a stage's time goes: its phases, written as JSON lines when the benchmark asks.

With TRANSFER_TIMINGS naming a file, every `phase()` and the end of each stage append a line
to it ({"pid", "phase", "seconds"}; the end adds "stage" and the process's whole life, its
startup and imports included). Without it, nothing is written.
"""

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TIMINGS_ENV = "TRANSFER_TIMINGS"
STARTUP = "startup and imports"  # from the process's start to its main()


def record(entry: dict) -> None:
    """Append `entry` (with this process's id) to the timings file, if one is named."""
    target = os.environ.get(TIMINGS_ENV)
    if target:
        with Path(target).open("a") as file:
            file.write(json.dumps({"pid": os.getpid(), **entry}) + "\n")


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as phase `name`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        record({"phase": name, "seconds": time.perf_counter() - start})


def process_age() -> float | None:
    """Seconds since this process started (Linux's /proc, to 10 ms), or None elsewhere."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
