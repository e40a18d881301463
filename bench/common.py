"""What the benchmarks share: the machine's description and raw speed, a table printer, a
timed command, a process of its own for one measurement, a result's test accuracy."""

import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from bench.sandbox import run_command
from transfer.litert import available_cores
from transfer.models.factories import build_feature_extractor
from transfer.paths import METRICS_FILE
from transfer.second_process import SecondProcess

T = TypeVar("T")


def cpu_model() -> str:
    """The CPU's name, as /proc/cpuinfo gives it."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def machine() -> str:
    """The CPU and the cores this process may use."""
    return f"{cpu_model()}, {available_cores()} cores"


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    """The benchmark's result: a title, then a line per (what, figure), aligned."""
    width = max(len(name) for name, _ in rows)
    print(f"\n{title}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def timed(args: list[str], repo: Path, env: dict[str, str] | None = None) -> float:
    """Seconds the command took; exits with its output if it fails."""
    start = time.perf_counter()
    result = run_command(args, repo, env)
    if result.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - start


def dvc(repo: Path, *args: str) -> float:
    return timed([sys.executable, "-m", "dvc", *args], repo)


def raw_forward_speed() -> float:
    """Images/s of a plain Keras MobileNetV2 (224 px, batch 32) on random images."""
    model = build_feature_extractor("MobileNetV2", 224, None)
    images = np.random.default_rng(0).uniform(0, 255, (32, 224, 224, 3)).astype("float32")
    model.predict(images, verbose=0)
    start = time.perf_counter()
    for _ in range(5):
        model.predict(images, verbose=0)
    return 5 * 32 / (time.perf_counter() - start)


def in_own_process(function: Callable[..., T], *args: Any) -> T:
    """function(*args) in a process of its own, so that nothing it leaves behind (TensorFlow's
    threads, memory) slows the experiments timed after it."""
    with SecondProcess() as process:
        process.start(function, *args)
        return process.result()


def accuracy(repo: Path) -> float:
    """The test accuracy `evaluate` wrote in the repo."""
    return json.loads((repo / METRICS_FILE).read_text())["accuracy"]


# Run in another checkout of the project: a pipeline repo of that version, its shipped params
# updated with a JSON mapping of sections (a section's keys merged, a top-level value set).
MAKE_REPO = """
import json, sys
from pathlib import Path
import yaml
try:
    from bench.sandbox import PROJECT_ROOT, make_pipeline_repo
except ImportError:  # a checkout from before bench/sandbox.py (transfer/sandbox.py then)
    from transfer.sandbox import PROJECT_ROOT, make_pipeline_repo
params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
for name, value in json.loads(sys.argv[2]).items():
    if isinstance(value, dict):
        params[name].update(value)
    else:
        params[name] = value
make_pipeline_repo(Path(sys.argv[1]), params)
"""


def repo_of_checkout(checkout: Path, repo: Path, changes: dict) -> Path:
    """A pipeline repo at `repo` of the project as `checkout` holds it, with its params
    changed as MAKE_REPO says: to run an earlier version beside this one."""
    timed([sys.executable, "-c", MAKE_REPO, str(repo), json.dumps(changes)], checkout)
    return repo


# What the per-image stages log of the memo: (rows computed, rows from the memo).
MEMO_LINES = {
    "cache": r"\((\d+) resized, (\d+) from the memo\)",
    "extract": r"(\d+) feature rows computed, (\d+) from the memo",
    "finetune": r"(\d+) activation rows computed, (\d+) from the memo",
}


def memo_counts(output: str) -> dict[str, tuple[int, int]]:
    """{stage: (rows computed, rows from the memo)} of the stages whose line `output` holds."""
    counts = {}
    for stage, pattern in MEMO_LINES.items():
        if match := re.search(pattern, output):
            counts[stage] = (int(match.group(1)), int(match.group(2)))
    return counts
