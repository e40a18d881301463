"""Which worker of a multi-worker cluster keeps its outputs: the chief, read from TF_CONFIG."""

import json
import tempfile
from pathlib import Path

import pytest

from transfer.cluster import TF_CONFIG, is_chief, output_root
from transfer.errors import PipelineError

WORKERS = {"worker": ["host0:2222", "host1:2222"]}


def tf_config(kind: str, index: int, cluster: dict = WORKERS) -> str:
    return json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})


@pytest.mark.parametrize(
    ("config", "chief"),
    [
        (tf_config("worker", 0), True),  # no chief in the cluster: worker 0 is it
        (tf_config("worker", 1), False),
        (tf_config("chief", 0, {**WORKERS, "chief": ["host2:2222"]}), True),
        (tf_config("worker", 0, {**WORKERS, "chief": ["host2:2222"]}), False),
        (tf_config("evaluator", 0), False),
        (json.dumps({"cluster": WORKERS}), True),  # no task: a single process
        ("", True),
    ],
)
def test_the_chief_comes_from_tf_config(
    config: str, chief: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TF_CONFIG, config)
    assert is_chief("multi_worker") is chief


@pytest.mark.parametrize("distribute", ["auto", "none", "mirrored"])
def test_without_multi_worker_every_process_writes(
    distribute: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TF_CONFIG, tf_config("worker", 1))
    assert is_chief(distribute)


def test_a_broken_tf_config_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TF_CONFIG, "{not json")
    with pytest.raises(PipelineError, match=r"^TF_CONFIG is not a TensorFlow cluster config \("):
        is_chief("multi_worker")


def test_another_worker_writes_into_a_directory_deleted_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv(TF_CONFIG, tf_config("worker", 1))
    with output_root("multi_worker") as root:
        assert root.parent == tmp_path
        (root / "models").mkdir()
        (root / "models/head.keras").write_text("model")
    assert not list(tmp_path.iterdir())
    monkeypatch.setenv(TF_CONFIG, tf_config("worker", 0))
    with output_root("multi_worker") as root:
        assert root == Path()
