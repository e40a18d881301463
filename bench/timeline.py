"""Time a `dvc repro` or `dvc exp run` stage by stage, from outside the stages.

DVC's own lines, stamped as they arrive, mark each stage's span: from its "Running stage"
line to the next line DVC logs ("Updating lock file", the next stage, the end), so a span is
the stage's process plus DVC saving its outputs. The stages' phases (transfer.timing, with
their wall-clock starts) say where the time inside went; a span's start-up is the time
before its first phase: DVC starting the process, Python, the imports.
"""

import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.sandbox import command_env
from transfer.timing import TIMINGS_ENV

STAGE_LINE = re.compile(r"Running stage '([^']+)'")
DVC_LINE = re.compile(r"Updating lock file|Running stage|didn't change, skipping")
# The columns of the breakdown: the phases the stages record, grouped.
PHASE_GROUPS = {
    "load features": "loading",
    "load models": "loading",
    "convert": "loading",
    "save models": "saving",
    "train": "training",
    "predict": "predicting",
    "evaluate": "evaluation",
}
COLUMNS = ("start-up", "loading", "training", "predicting", "saving", "evaluation", "export")


@dataclass(frozen=True)
class Timeline:
    """One timed DVC command: its wall time, each stage's (start, end) wall-clock span, the
    phases the stages recorded, and what DVC printed."""

    wall: float
    spans: dict[str, tuple[float, float]]
    phases: list[dict]
    output: str

    def stage_seconds(self, stage: str) -> float:
        start, end = self.spans.get(stage, (0.0, 0.0))
        return end - start

    def phase_seconds(self, name: str) -> float:
        return sum(entry["seconds"] for entry in self.phases if entry["phase"] == name)

    def breakdown(self) -> list[str]:
        """A table of each stage's seconds by phase group, and DVC's own share of the wall."""
        header = f"{'':<12}" + "".join(f"{c:>11}" for c in (*COLUMNS, "other", "total"))
        lines = [header]
        totals = dict.fromkeys(COLUMNS, 0.0)
        for stage, (start, end) in self.spans.items():
            inside = [e for e in self.phases if start <= e["start"] <= end]
            seconds = dict.fromkeys(COLUMNS, 0.0)
            seconds["start-up"] = min((e["start"] for e in inside), default=end) - start
            for entry in inside:
                phase = entry["phase"]
                group = "export" if phase.startswith("export") else PHASE_GROUPS.get(phase)
                if group is not None:  # the rest (extract's phases) is in the stage's "other"
                    seconds[group] += entry["seconds"]
            other = end - start - sum(seconds.values())
            for column in COLUMNS:
                totals[column] += seconds[column]
            values = [*seconds.values(), other, end - start]
            lines.append(f"{stage:<12}" + "".join(f"{v:>11.2f}" for v in values))
        dvc_share = self.wall - sum(end - start for start, end in self.spans.values())
        lines.append(
            f"{'DVC itself':<12}" + f"{'':>11}" * (len(COLUMNS) + 1) + f"{dvc_share:>11.2f}"
        )
        shares = {column: seconds / self.wall for column, seconds in totals.items()}
        shares["DVC itself"] = dvc_share / self.wall
        lines.append(
            "shares: " + ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
        )
        return lines


def run_timed(args: list[str], repo: Path, env: dict[str, str] | None = None) -> Timeline:
    """Run `dvc *args` in `repo`, stamping DVC's lines as they come; exit if it fails."""
    with tempfile.TemporaryDirectory(prefix="timings-") as scratch:
        timings = Path(scratch) / "phases.jsonl"
        extra = {TIMINGS_ENV: str(timings), "PYTHONUNBUFFERED": "1", **(env or {})}
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "dvc", *args],
            cwd=repo,
            env={**command_env(), **extra},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        spans: dict[str, tuple[float, float]] = {}
        current: tuple[str, float] | None = None
        output = []
        for line in process.stdout:
            now = time.time()
            output.append(line)
            if DVC_LINE.search(line) and current is not None:
                spans[current[0]] = (current[1], now)
                current = None
            if match := STAGE_LINE.search(line):
                current = (match.group(1), now)
        process.wait()
        if current is not None:
            spans[current[0]] = (current[1], time.time())
        wall = time.perf_counter() - start
        text = "".join(output)
        if process.returncode:
            sys.exit(f"dvc {' '.join(args)} failed:\n{text[-3000:]}")
        phases = []
        if timings.exists():
            phases = [json.loads(line) for line in timings.read_text().splitlines()]
    return Timeline(wall, spans, phases, text)
