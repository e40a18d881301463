"""Sharing the cache through a DVC remote, and experiments run in parallel by DVC's queue."""

import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from bench.sandbox import command_env, commit, make_pipeline_repo, run_command
from tests.helpers import dvc, make_image_folder, tiny_params

pytestmark = pytest.mark.e2e
OUTPUT_DIRS = ("data", "models", "reports")  # what the stages write
# The queued experiments: each computes new augmented views' features (the base run has
# augment.brightness 0.1) beside the clean images' that both need.
BRIGHTNESS = (0.2, 0.3)
COMPARED = ("data/features", "models/finetuned")  # the views' features, the predictions
QUEUE_TIMEOUT_S = 900
QUEUE_POLL_S = 5


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def file_hashes(repo: Path, folders: tuple[str, ...]) -> dict[str, str]:
    """SHA-256 of every file under the given folders, by path relative to the repo."""
    return {
        str(path.relative_to(repo)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in folders
        for path in sorted((repo / folder).rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pipeline repo whose every stage has run once, committed."""
    base = tmp_path_factory.mktemp("sharing")
    photos = make_image_folder(base / "photos")
    repo = make_pipeline_repo(base / "repo", tiny_params(photos))
    dvc(repo, "repro")
    commit(repo, "baseline")
    return repo


def round_trip(repo: Path, remote: str, clone: Path) -> None:
    """Push the repo's cache and run cache to `remote`, clone the repo to `clone` and pull
    into it; then `dvc repro` in the clone runs nothing and its outputs are the repo's."""
    dvc(repo, "push", "--run-cache", "-r", remote)
    result = run_command(["git", "clone", "-q", str(repo), str(clone)], clone.parent)
    assert result.returncode == 0, result.stderr
    assert not (clone / "models").exists()  # a clone holds no data until the pull
    dvc(clone, "pull", "--run-cache", "-r", remote)

    assert stages_run(dvc(clone, "repro").stdout) == set()
    assert "up to date" in dvc(clone, "status").stdout
    original = file_hashes(repo, OUTPUT_DIRS)
    for output in ("models/model.keras", "data/features/train.npy", "reports/metrics.json"):
        assert output in original, output
    assert file_hashes(clone, OUTPUT_DIRS) == original
    # The run cache came along: the entries of the stages it records.
    runs = file_hashes(repo, (".dvc/cache/runs",))
    assert runs
    assert {Path(name).name for name in file_hashes(clone, (".dvc/cache/runs",))} == {
        Path(name).name for name in runs
    }


def test_a_clone_pulls_from_a_local_remote_and_reproduces_nothing(
    repo: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    dvc(repo, "remote", "add", "-f", "shared", str(store))
    commit(repo, "local remote")
    round_trip(repo, "shared", tmp_path / "clone")
    assert list((store / "files").rglob("*")) and list((store / "runs").rglob("*"))
    # A machine without the photos (a dependency of download) runs nothing either.
    photos = Path(yaml.safe_load((repo / "params.yaml").read_text())["data"]["source"])
    photos.rename(photos.with_name("elsewhere"))
    try:
        assert "deleted" in dvc(tmp_path / "clone", "status").stdout
        result = dvc(tmp_path / "clone", "repro", "--allow-missing")
        assert stages_run(result.stdout) == set()
    finally:
        photos.with_name("elsewhere").rename(photos)


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """An S3-protocol server (moto's) on a free port of 127.0.0.1, with an empty bucket `dvc`;
    the dvc commands get fake credentials from the environment and nothing else of AWS."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }
    for name, value in credentials.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    try:
        endpoint = f"http://{host}:{port}"
        s3(endpoint).create_bucket(Bucket="dvc")
        yield endpoint
    finally:
        server.stop()


def s3(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def test_a_clone_pulls_from_an_s3_remote_and_reproduces_nothing(
    repo: Path, tmp_path: Path, s3_endpoint: str
) -> None:
    dvc(repo, "remote", "add", "-f", "s3store", "s3://dvc/store")
    dvc(repo, "remote", "modify", "s3store", "endpointurl", s3_endpoint)
    commit(repo, "s3 remote")
    round_trip(repo, "s3store", tmp_path / "clone")
    keys = [item["Key"] for item in s3(s3_endpoint).list_objects_v2(Bucket="dvc")["Contents"]]
    assert any(key.startswith("store/files/md5/") for key in keys)
    assert any(key.startswith("store/runs/") for key in keys)


def queue_status(repo: Path) -> dict[str, str]:
    """Experiment name -> its status in `dvc queue status` (Queued, Running, Success...)."""
    lines = dvc(repo, "queue", "status").stdout.splitlines()
    rows = [line.split() for line in lines if re.match(r"[0-9a-f]{7} ", line)]
    return {row[1]: row[-1] for row in rows}


def start_queue(repo: Path, workers: int, log: Path) -> None:
    """`dvc queue start -j workers`, its output to a file: the detached workers inherit it, so
    through a pipe the call would last until the queue is empty."""
    with log.open("w") as output:
        result = subprocess.run(
            [sys.executable, "-m", "dvc", "queue", "start", "-j", str(workers)],
            cwd=repo,
            env=command_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
        )
    assert result.returncode == 0, log.read_text()


def wait_for_queue(repo: Path, timeout_s: float) -> list[dict[str, str]]:
    """`dvc queue status` every few seconds (each call is a DVC start-up, 1.5 s of a core)
    until no task is queued or running: every snapshot. Stops the workers (killing what
    still runs) on the way out."""
    snapshots, deadline = [], time.monotonic() + timeout_s
    try:
        while not snapshots or {"Queued", "Running"} & set(snapshots[-1].values()):
            assert time.monotonic() < deadline, f"queue still busy: {snapshots[-1]}"
            time.sleep(QUEUE_POLL_S)
            snapshots.append(queue_status(repo))
    finally:
        run_command([sys.executable, "-m", "dvc", "queue", "stop", "--kill"], repo)
    return snapshots


def test_queued_experiments_on_a_cold_memo_run_two_at_a_time_as_they_would_one_by_one(
    repo: Path, tmp_path: Path
) -> None:
    """Two experiments that compute features (new augmented views, the same clean images) run
    at once, in temporary workspaces, sharing the repo's memo from empty: both succeed, show
    their metrics, and write what each writes when run alone, without the memo."""
    shutil.rmtree(repo / ".memo", ignore_errors=True)
    names = []
    for value in BRIGHTNESS:
        queued = dvc(repo, "exp", "run", "--queue", "-S", f"augment.brightness={value}").stdout
        names.append(re.search(r"Queued experiment '([^']+)'", queued).group(1))
    assert set(queue_status(repo).values()) == {"Queued"}

    start_queue(repo, 2, tmp_path / "queue-start.log")
    snapshots = wait_for_queue(repo, QUEUE_TIMEOUT_S)
    assert snapshots[-1] == dict.fromkeys(names, "Success"), snapshots[-1]
    running = [list(snapshot.values()).count("Running") for snapshot in snapshots]
    assert max(running) == 2, snapshots
    for name in names:
        log = dvc(repo, "queue", "logs", name).stdout
        # The committed upstream stages are restored, not recomputed.
        assert stages_run(log) == {
            "extract", "audit", "train_head", "finetune", "evaluate", "export",
        }, log  # fmt: skip
    assert list((repo / ".memo" / "features").rglob("*")), "the workers filled the repo's memo"

    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    baseline = next(row for row in shown if row["rev"] != "workspace")
    results = {}
    for experiment in baseline["experiments"] or []:
        data = experiment["revs"][0]["data"]
        value = data["params"]["params.yaml"]["data"]["augment"]["brightness"]
        results[experiment["name"]] = (value, data["metrics"])
    assert {name: value for name, (value, _) in results.items()} == dict(
        zip(names, BRIGHTNESS, strict=True)
    )
    for _, metrics in results.values():
        assert 0 <= metrics["reports/metrics.json"]["data"]["accuracy"] <= 1
        assert metrics["reports/export/metrics.json"]["data"]["tflite_float"]["agreement"] == 1.0
    # The queue ran in temporary workspaces: the repo's own is as committed.
    assert run_command(["git", "status", "--porcelain"], repo).stdout == ""

    alone = {}
    for value in BRIGHTNESS:  # up to finetune, which writes the last compared output
        setting = f"augment.brightness={value}"
        dvc(repo, "exp", "run", "finetune", "-S", setting, env={"TRANSFER_MEMO": "off"})
        alone[value] = file_hashes(repo, COMPARED)
    for name, value in zip(names, BRIGHTNESS, strict=True):
        dvc(repo, "exp", "apply", name)
        assert file_hashes(repo, COMPARED) == alone[value], name
