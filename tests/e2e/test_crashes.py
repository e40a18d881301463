"""Kill it anywhere: `dvc repro` killed at many points, interrupted, or out of room, then run
again, writes every file of data/ and models/ as an uninterrupted run does, byte for byte."""

import hashlib
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from bench.sandbox import command_env, make_pipeline_repo, run_command
from bench.timeline import run_timed
from tests.helpers import dvc, make_image_folder, tiny_params
from transfer.memo.store import TEMPORARY_SUFFIX, Memo

pytestmark = pytest.mark.e2e
UNFREEZE = 20  # the fine-tune's activation cache runs, and fills the memo
KILL_SEED = 27  # the kill points are the same on every run of the test
KILL_POINTS = 13  # one in each of the ten stages, the rest in the longest
# A stage that ends before its kill point (it ran faster than in the reference run) is run
# again, forced, and killed at half the delay, so that every stage is killed while running.
KILL_TRIES = 3
STAGE_LINE = re.compile(r"Running stage '([^']+)'")
# DVC rewrites dvc.lock (after every stage) and its rwlock in place, not through a temporary
# file, so a kill in those milliseconds leaves one cut short and DVC refuses to start: an
# empty or schema-breaking cut fails validation, a cut inside a key is invalid YAML. The
# manual's remedy: delete it. (A killed process's entry in an intact rwlock DVC removes itself.)
DVC_FILE_CUT = re.compile(
    r"'\./(dvc\.lock)' validation failed|'\./(dvc\.lock)' is invalid"
    r"|unable to read: '(dvc\.lock)'"
    r"|Unable to read RWLock-file '([^']+)'|RWLock-file '([^']+)' format error"
)
# What `dvc repro` runs after dvc.lock is deleted: nothing, every stage comes back from DVC's
# run cache (each keeps in git only metrics and plots, which the run cache holds too).
RUN_AGAIN_WITHOUT_A_LOCK: set[str] = set()


def output_hashes(repo: Path) -> dict[str, str]:
    """SHA-256 of every file under data/ and models/, by path."""
    return {
        path.relative_to(repo).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in ("data", "models")
        for path in sorted((repo / folder).rglob("*"))
        if path.is_file()
    }


def damaged_memo_entries(repo: Path) -> list[str]:
    """Memo files that are neither a whole, checked entry nor a writer's temporary."""
    memo = Memo(repo / ".memo")
    return [
        path.as_posix()
        for path in (repo / ".memo").rglob("*")
        if path.is_file()
        and not path.name.endswith(TEMPORARY_SUFFIX)
        and memo.get(path.parent.parent.name, path.name) is None
    ]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("crashes") / "photos", per_class=8)


@pytest.fixture(scope="module")
def reference(photos: Path, tmp_path_factory: pytest.TempPathFactory):
    """An uninterrupted run: its outputs' hashes and each stage's seconds."""
    params = {**tiny_params(photos), "unfreeze": UNFREEZE}
    repo = make_pipeline_repo(tmp_path_factory.mktemp("reference") / "repo", params)
    timeline = run_timed(["repro"], repo)
    durations = {stage: timeline.stage_seconds(stage) for stage in timeline.spans}
    return output_hashes(repo), durations, params


def start_dvc(repo: Path, *args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    """`dvc *args` in a process group of its own, its output read line by line, and Ctrl-C's
    default action in it, as in a terminal: a test run as a background job of a
    non-interactive shell ignores SIGINT, and an ignored signal stays ignored across exec,
    whereas a handler is reset to the default there."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "dvc", *args],
            cwd=repo,
            env={**command_env(), "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            **popen,
        )
    finally:
        signal.signal(signal.SIGINT, previous)


def run_and_signal(
    repo: Path,
    args: list[str],
    stage: str,
    sig: int,
    delay: float = 0.0,
    once_exists: Path | None = None,
    once_printed: str | None = None,
) -> tuple[str | None, str]:
    """`dvc *args`, and `sig` to its whole process group once `stage` has run `delay` s and,
    if given, `once_exists` exists (a stage's temporary output: it is writing) and the stage
    has printed a line containing `once_printed`. Returns (the stage running when the signal
    went, None if the run ended first; the output)."""
    process = start_dvc(repo, *args)
    running: list[str] = []
    signalled: list[str] = []
    started = threading.Event()

    def watch() -> None:
        started.wait()
        deadline = time.monotonic() + delay
        while process.poll() is None:
            if time.monotonic() >= deadline and (once_exists is None or once_exists.exists()):
                signalled.append(running[-1])
                os.killpg(process.pid, sig)
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    output = []
    for line in process.stdout:
        output.append(line)
        if match := STAGE_LINE.search(line):
            running.append(match.group(1))
            if match.group(1) == stage and once_printed is None:
                started.set()
        elif once_printed is not None and running[-1:] == [stage] and once_printed in line:
            started.set()
    process.wait()
    started.set()  # the watcher ends with the process, if the stage never started
    watcher.join()
    return (signalled[0] if signalled else None), "".join(output)


def dvc_file_cut(output: str) -> str | None:
    """The file of DVC's own that `output` says a kill cut short, if any."""
    match = DVC_FILE_CUT.search(output)
    return next(path for path in match.groups() if path) if match else None


def kill_points(durations: dict[str, float]) -> list[tuple[str, float]]:
    """KILL_POINTS (stage, seconds into it), chosen reproducibly: at least one in every
    stage, the rest in the longest ones (a second kill of a stage comes in a forced run of
    it); early enough that a stage the memo speeds up on its next run is still running."""
    rng = random.Random(KILL_SEED)
    stages = list(durations)
    counts = dict.fromkeys(stages, 1)
    while sum(counts.values()) < KILL_POINTS:
        stage = max(stages, key=lambda s: durations[s] / (counts[s] + 1))
        counts[stage] += 1
    return [
        (stage, rng.uniform(0.05, 0.5) * durations[stage])
        for stage in stages
        for _ in range(counts[stage])
    ]


@pytest.fixture(scope="module")
def repo(reference, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repo the tests kill, interrupt and starve, one after the other."""
    _, _, params = reference
    return make_pipeline_repo(tmp_path_factory.mktemp("crashed") / "repo", params)


def test_killed_at_many_points_a_rerun_writes_the_same_bytes(reference, repo: Path) -> None:
    """Each run is killed (SIGKILL to its process group, as the OOM killer would) a while
    into a stage, and the next one starts from what the kill left: a partial output, memo
    entries half-written, a stage DVC did not record. A stage's first kill comes in a plain
    `dvc repro`, which first completes what came before; the others in a forced run of it
    and what follows, so that it runs again. A stage the memo makes faster than in the
    reference run may end before its kill point: the kill then lands in a later one, and the
    stage runs again, forced, to be killed at half the delay."""
    expected, durations, _ = reference
    landed = []
    cut = []
    previous = None
    for stage, delay in kill_points(durations):
        args = ["repro"] if stage != previous else ["repro", "--force", "--downstream", stage]
        for _ in range(KILL_TRIES):
            killed_in, output = run_and_signal(repo, args, stage, signal.SIGKILL, delay)
            if path := dvc_file_cut(output):  # the previous kill landed in DVC's own write
                cut.append(path)
                (repo / path).unlink()
                killed_in, _ = run_and_signal(repo, args, stage, signal.SIGKILL, delay)
            landed.append(killed_in)
            if killed_in == stage:
                break
            args = ["repro", "--force", "--downstream", stage]
            delay /= 2
        previous = stage
    rerun = run_command([sys.executable, "-m", "dvc", "repro"], repo)
    if path := dvc_file_cut(rerun.stdout + rerun.stderr):
        cut.append(path)
        (repo / path).unlink()
        dvc(repo, "repro")
    else:
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "up to date" in dvc(repo, "status").stdout
    kills = [stage for stage in landed if stage is not None]
    print(f"{len(landed)} kills, {len(kills)} in a running stage: {kills}")
    print(f"DVC's own files a kill cut short, removed as the manual says: {cut}")
    assert len(kills) >= KILL_POINTS - 2 and set(kills) == set(durations)
    assert output_hashes(repo) == expected
    assert damaged_memo_entries(repo) == []


def test_a_lock_file_a_kill_cut_short_is_restored_from_the_run_cache(
    reference, repo: Path
) -> None:
    """What a kill in DVC's rewrite of dvc.lock leaves, and the manual's remedy: every stage
    comes back from DVC's run cache, and every output is the same."""
    expected, _, _ = reference
    lock = (repo / "dvc.lock").read_text()
    cut_in_a_key = lock[: lock.index("md5:", len(lock) // 2) + 2]
    for cut in (cut_in_a_key, ""):
        (repo / "dvc.lock").write_text(cut)
        refused = run_command([sys.executable, "-m", "dvc", "repro"], repo)
        assert refused.returncode != 0, refused.stdout
        assert dvc_file_cut(refused.stdout + refused.stderr) == "dvc.lock", refused.stderr
    (repo / "dvc.lock").unlink()
    rerun = dvc(repo, "repro").stdout
    assert set(STAGE_LINE.findall(rerun)) == RUN_AGAIN_WITHOUT_A_LOCK, rerun
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    assert rerun.count("is cached - skipping run") == len(stages), rerun
    assert output_hashes(repo) == expected
    assert "up to date" in dvc(repo, "status").stdout


def test_ctrl_c_stops_with_one_line_and_a_rerun_finishes(reference, repo: Path) -> None:
    expected, _, _ = reference
    shutil.rmtree(repo / ".memo" / "features")  # extract has its work to do again
    args = ["repro", "--force", "--single-item", "extract"]
    writing = repo / "data/.features.partial"  # atomic_output's temporary of data/features
    # The stage's own line too: a kill in the earlier tests can leave that temporary (DVC's
    # run-cache restore does not remove it), which alone would let the signal go before the
    # stage's Python is running.
    stopped_in, output = run_and_signal(
        repo,
        args,
        "extract",
        signal.SIGINT,
        once_exists=writing,
        once_printed="extracting train features",
    )
    assert stopped_in == "extract"
    assert "Traceback" not in output
    stage_lines = [line for line in output.splitlines() if line.startswith("interrupted")]
    assert stage_lines == ["interrupted: the output being written was discarded"], output
    # DVC removed the stage's outputs before running it; the stage left no part of its own.
    assert not list(repo.glob("data/.*partial*"))
    assert "extract:" in dvc(repo, "status").stdout  # not recorded: the next run redoes it
    dvc(repo, "repro")
    assert output_hashes(repo) == expected


def limit_file_size(limit: int) -> None:
    """In the child: files larger than `limit` bytes cannot be written (EFBIG), as on a disk
    that fills up, instead of the default SIGXFSZ that would kill it."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_out_of_room_a_stage_stops_with_one_line_and_leaves_nothing_half_written(
    reference, repo: Path
) -> None:
    expected, _, _ = reference
    shutil.rmtree(repo / "data/features")  # extract has its work to do again
    shutil.rmtree(repo / ".memo" / "features", ignore_errors=True)
    killed_writers = set((repo / ".memo").rglob(f"*{TEMPORARY_SUFFIX}"))  # the kills' leftovers
    result = subprocess.run(
        [sys.executable, "-m", "stages.extract"],
        cwd=repo,
        env=command_env(),
        capture_output=True,
        text=True,
        preexec_fn=lambda: limit_file_size(40_000),
    )
    assert result.returncode == 1
    assert re.fullmatch(
        r"error: cannot write data/\.features\.partial/\w+\.npy \(File too large\); "
        r"free some space and run it again\n",
        result.stderr.splitlines(keepends=True)[-1],
    ), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (repo / "data/features").exists() and not list(repo.glob("data/.*partial*"))
    assert set((repo / ".memo").rglob(f"*{TEMPORARY_SUFFIX}")) == killed_writers
    assert damaged_memo_entries(repo) == []
    dvc(repo, "repro")  # with room again
    assert output_hashes(repo) == expected


def test_a_killed_exp_run_leaves_the_next_exp_run_working(repo: Path) -> None:
    """An experiment killed in its last stage leaves DVC's run files and its params; the
    same `dvc exp run` again, nothing cleaned by hand, finishes."""
    args = ["exp", "run", "-S", "export.calibration_images=16"]
    writing = repo / "models/.export.partial"  # atomic_output's temporary of models/export
    killed_in, _ = run_and_signal(repo, args, "export", signal.SIGKILL, once_exists=writing)
    assert killed_in == "export"
    assert list((repo / ".dvc/tmp/exps/run").rglob("*.run"))
    assert yaml.safe_load((repo / "params.yaml").read_text())["export"]["calibration_images"] == 16
    finished = dvc(repo, *args).stdout
    assert "Running stage 'export'" in finished and "Ran experiment" in finished
