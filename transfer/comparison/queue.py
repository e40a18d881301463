"""Experiments run on DVC's queue by its command line, and waited for."""

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from transfer.errors import PipelineError
from transfer.memo.store import MEMO_ENV, memo_dir

log = logging.getLogger(__name__)

RETRY_SECONDS = 2  # before asking DVC for the states again
STATES_TRIES = 5
DONE = (None, "Success")  # the states of an experiment that has results (None: run directly)
PENDING = ("Queued", "Running")


def queue_env() -> dict[str, str]:
    """The environment of dvc and its queue's workers: this environment's `dvc` and `python`
    first on PATH (the workers start `dvc`, the stages `python`), and the project's memo by
    its absolute path, so that experiments in the workers' copies of the repo share it as
    experiments run in the workspace do."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    memo = memo_dir()
    if memo is not None:
        env[MEMO_ENV] = str(memo.resolve())
    return env


def dvc(*args: str) -> None:
    """Run a dvc command with this Python's DVC in queue_env(); its error as one line. Its
    output goes to a file, not a pipe: the workers `dvc queue start` leaves running would
    hold a pipe open until the queue is empty."""
    with tempfile.TemporaryFile(mode="w+") as output:
        result = subprocess.run(
            [sys.executable, "-m", "dvc", *args],
            stdout=output,
            stderr=output,
            check=False,
            env=queue_env(),
        )
        output.seek(0)
        lines = [line for line in output.read().splitlines() if line.strip()]
    if result.returncode:
        fallback = lines[-1] if lines else "?"
        error = next((line for line in lines if line.startswith("ERROR")), fallback)
        raise PipelineError(f"dvc {' '.join(args)} failed: {error}")


# dvc.api.exp_show in a process of its own: read while a queue worker commits an experiment,
# DVC's reading thread can fail (pygit2 "object not found") and leave the call waiting for
# ever; a process of its own is given up after STATES_TIMEOUT and asked again.
STATES = (
    "import json, dvc.api; "
    "print(json.dumps({r['Experiment']: r.get('State') for r in dvc.api.exp_show() "
    "if r.get('Experiment')}))"
)
STATES_TIMEOUT = 120  # seconds


def experiment_states() -> dict[str, str | None] | None:
    """{experiment name: state (Queued, Running, Success, Failed or None)} of the experiments
    on the workspace's commit, as `dvc exp show` lists them; None if DVC could not say."""
    try:
        result = subprocess.run(
            [sys.executable, "-c", STATES],
            capture_output=True,
            text=True,
            check=False,
            env=queue_env(),
            timeout=STATES_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return None
    lines = result.stdout.strip().splitlines()
    if result.returncode or not lines:
        return None
    return json.loads(lines[-1])


def run_experiments(runs: dict[str, list[str]], *, jobs: int) -> None:
    """Queue each experiment {name: its -S overrides} that has no results yet, in the given
    order, and run the queue with `jobs` workers until every one has finished; an experiment
    already done (same name on this commit) is reused, one already queued is waited for."""
    states = experiment_states()
    if states is None:
        raise PipelineError("`dvc exp show` failed in this repo: run it to see why")
    waiting = []
    for name, overrides in runs.items():
        if name in states and states[name] in DONE:
            log.info("%s: done before, reused", name)
            continue
        if states.get(name) not in PENDING:
            dvc("exp", "run", "--queue", "--name", name, *[f"-S{o}" for o in overrides])
            if not waiting:  # the workers run the first while the others are queued
                dvc("queue", "start", "--jobs", str(jobs))
        waiting.append(name)
    if waiting:
        log.info("running %s on %d workers: `dvc queue status` shows them", waiting, jobs)
        # DVC's own wait: it follows each experiment on the queue to its end (and starts
        # workers where none is left). Polling `dvc exp show` cost 2 s of CPU beside the
        # workers each time, and up to its interval after the last one finished.
        dvc("exp", "run", "--run-all", "--jobs", str(jobs))
    states = finished_states()
    failed = [name for name in runs if name not in states or states[name] not in DONE]
    if failed:
        raise PipelineError(
            f"{failed[0]} did not finish ({states.get(failed[0]) or 'not found'}): "
            f"see `dvc queue logs {failed[0]}`"
        )


def finished_states() -> dict[str, str | None]:
    """experiment_states(), asked again while DVC cannot say (a worker still committing)."""
    for _ in range(STATES_TRIES):
        if (states := experiment_states()) is not None:
            return states
        time.sleep(RETRY_SECONDS)
    raise PipelineError("`dvc exp show` failed after the queue ran: run it to see why")
