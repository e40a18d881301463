"""`compare`: pairing by photo, the refusal of other photos, the verdicts, the splits'
summary, and the command on two commits of a tiny git + DVC repo (no training)."""

import csv
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.sandbox import commit, run_command
from tests.helpers import ROOT
from transfer.comparison import cli, queue
from transfer.comparison.paired import compare, verdict_text
from transfer.comparison.predictions import Paired, pair
from transfer.comparison.splits import run_names, summary
from transfer.errors import PipelineError


def outcomes(rights: str) -> dict[str, tuple[str, str]]:
    """{photo: (true, predicted)} from a string of 1 (right) and 0 (wrong)."""
    return {f"c/{i:03d}.jpg": ("cat", "cat" if r == "1" else "dog") for i, r in enumerate(rights)}


def paired(only_a: int, only_b: int, both: int, neither: int) -> Paired:
    a = [True] * only_a + [False] * only_b + [True] * both + [False] * neither
    b = [False] * only_a + [True] * only_b + [True] * both + [False] * neither
    return Paired(paths=[str(i) for i in range(len(a))], a_right=np.array(a), b_right=np.array(b))


def test_pair_matches_photos_by_path_whatever_their_order() -> None:
    a = outcomes("1100")
    b = dict(reversed(outcomes("1010").items()))
    result = pair(a, b, names=("A", "B"))
    assert result.a_right.tolist() == [True, True, False, False]
    assert result.b_right.tolist() == [True, False, True, False]


def test_pair_refuses_other_test_photos_and_points_to_the_splits() -> None:
    b = outcomes("1101")
    b["c/999.jpg"] = b.pop("c/000.jpg")
    with pytest.raises(
        PipelineError, match=r"different photos \(1 only in A, 1 only in B\).*--splits"
    ):
        pair(outcomes("1101"), b, names=("A", "B"))


def test_pair_refuses_the_same_photos_with_other_labels() -> None:
    b = outcomes("1101")
    b["c/001.jpg"] = ("dog", "dog")
    with pytest.raises(PipelineError, match="1 test photos have other true labels"):
        pair(outcomes("1101"), b, names=("A", "B"))


def test_compare_counts_the_photos_each_got_right_and_tests_them() -> None:
    result = compare(paired(only_a=3, only_b=11, both=80, neither=6), names=("A", "B"))
    assert (result.a_accuracy, result.b_accuracy) == (0.83, 0.91)
    assert (result.only_a_right, result.only_b_right) == (3, 11)
    assert result.difference == pytest.approx(0.08)
    assert result.difference_low < 0.08 < result.difference_high
    assert result.mcnemar_p == pytest.approx(0.057373046875)  # scipy's binomtest(3, 14)
    assert result.verdict.startswith("no detectable difference at this test size: ")


@pytest.mark.parametrize(
    ("difference", "p_value", "expected"),
    [
        (0.02, 0.01, "B is better"),
        (-0.02, 0.01, "A is better"),
        (
            0.02,
            0.2,
            "no detectable difference at this test size: 7,847 photos would be needed to see 1 "
            "point",
        ),
    ],
)
def test_verdict_text(difference: float, p_value: float, expected: str) -> None:
    assert verdict_text(("A", "B"), difference, p_value, 7847) == expected


def test_summary_over_splits() -> None:
    splits = {
        42: compare(
            paired(only_a=5, only_b=25, both=60, neither=10), names=run_names(42, ["x=1"])
        ),
        43: compare(
            paired(only_a=4, only_b=20, both=66, neither=10), names=run_names(43, ["x=1"])
        ),
        44: compare(
            paired(only_a=6, only_b=22, both=62, neither=10), names=run_names(44, ["x=1"])
        ),
    }
    result = summary(splits)
    assert result["mean_difference"] == pytest.approx((0.20 + 0.16 + 0.16) / 3)
    assert result["mean_difference_low"] > 0
    assert (result["only_baseline_right"], result["only_experiment_right"]) == (15, 67)
    assert result["verdict"] == "the experiment is better across splits"
    assert result["splits"]["43"]["b"] == "split43-x-1"


def test_summary_of_splits_that_disagree_detects_nothing() -> None:
    splits = {
        42: compare(paired(only_a=5, only_b=9, both=76, neither=10), names=("a", "b")),
        43: compare(paired(only_a=9, only_b=5, both=76, neither=10), names=("a", "b")),
    }
    assert summary(splits)["verdict"].startswith("no detectable difference over 2 splits: ")


def test_run_names() -> None:
    assert run_names(42, ["unfreeze=50"]) == ("split42-baseline", "split42-unfreeze-50")
    assert (
        run_names(7, ["head.dropout=0.1", "unfreeze=5"])[1] == "split7-head-dropout-0-1-unfreeze-5"
    )


def test_compare_splits_queues_the_baselines_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each experiment then finds its split's stages in the run cache, left by its baseline."""
    queued: list[str] = []
    monkeypatch.setattr(cli, "run_experiments", lambda runs, jobs: queued.extend(runs))
    monkeypatch.setattr(cli, "read_predictions", lambda name: outcomes("1101"))
    cli.compare_splits([42, 43], ["unfreeze=5"], jobs=2)
    assert queued == [
        "split42-baseline",
        "split43-baseline",
        "split42-unfreeze-5",
        "split43-unfreeze-5",
    ]


def write_predictions(repo: Path, rights: str) -> None:
    (repo / "reports").mkdir(exist_ok=True)
    with (repo / "reports" / "predictions.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["path", "true", "predicted", "confidence"])
        for path, (true, predicted) in outcomes(rights).items():
            writer.writerow([path, true, predicted, "0.9"])


def run_compare(repo: Path, *args: str):
    env = {"PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return run_command([sys.executable, "-m", "transfer.comparison.cli", *args], repo, env)


def test_compare_reads_two_commits_and_the_workspace_through_dvc(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    for command in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        run_command(command, repo).check_returncode()
    write_predictions(repo, "1" * 30 + "0" * 70)
    commit(repo, "first")
    write_predictions(repo, "0" * 2 + "1" * 68 + "0" * 30)  # 40 more right, 2 fewer
    commit(repo, "second")
    result = run_compare(repo, "HEAD~1", "HEAD", "--json")
    assert result.returncode == 0, result.stderr
    compared = json.loads(result.stdout)
    assert (compared["a_accuracy"], compared["b_accuracy"]) == (0.30, 0.68)
    assert (compared["only_a_right"], compared["only_b_right"]) == (2, 40)
    assert compared["verdict"] == "HEAD is better"
    write_predictions(repo, "0" * 2 + "1" * 67 + "0" * 31)  # the workspace: one fewer right
    result = run_compare(repo)  # HEAD against the workspace
    assert result.returncode == 0, result.stderr
    assert "only A right: 1 photos, only B right: 0" in result.stdout
    assert "verdict: no detectable difference at this test size" in result.stdout
    write_predictions(repo, "1" * 99)  # one photo fewer: another test set
    result = run_compare(repo)
    assert result.returncode == 1
    assert result.stderr.startswith("error: HEAD and workspace were tested on different photos")
    assert len(result.stderr.strip().splitlines()) == 1


def fake_queue(monkeypatch: pytest.MonkeyPatch, states: list[dict]) -> list[tuple[str, ...]]:
    """queue.dvc recording its commands, and experiment_states answering `states` in turn."""
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(queue, "dvc", lambda *args: calls.append(args))
    answers = iter(states)
    monkeypatch.setattr(queue, "experiment_states", lambda: next(answers))
    monkeypatch.setattr(queue, "RETRY_SECONDS", 0)
    return calls


RUN_ALL = ("exp", "run", "--run-all", "--jobs", "2")


def test_run_experiments_queues_what_is_missing_and_waits_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The workers start once the first is queued, and DVC's --run-all waits for them all."""
    done = {"base": None, "exp": "Success", "exp2": "Success"}
    calls = fake_queue(monkeypatch, [{"base": None}, done])
    runs = {"base": ["split.seed=43"], "exp": ["split.seed=43", "u=5"], "exp2": ["u=6"]}
    queue.run_experiments(runs, jobs=2)
    assert calls == [
        ("exp", "run", "--queue", "--name", "exp", "-Ssplit.seed=43", "-Su=5"),
        ("queue", "start", "--jobs", "2"),
        ("exp", "run", "--queue", "--name", "exp2", "-Su=6"),
        RUN_ALL,
    ]


def test_run_experiments_waits_for_one_already_queued_and_runs_nothing_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = fake_queue(monkeypatch, [{"exp": "Running"}, {"exp": "Success"}])
    queue.run_experiments({"exp": ["u=5"]}, jobs=2)
    assert calls == [RUN_ALL]
    calls = fake_queue(monkeypatch, [{"exp": "Success"}, {"exp": "Success"}])
    queue.run_experiments({"exp": ["u=5"]}, jobs=2)
    assert calls == []


def test_run_experiments_names_the_one_that_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_queue(monkeypatch, [{}, {"exp": "Failed"}])
    with pytest.raises(PipelineError, match=r"exp did not finish \(Failed\).*dvc queue logs exp"):
        queue.run_experiments({"exp": ["u=5"]}, jobs=1)


def test_run_experiments_asks_again_when_dvc_could_not_say(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A look at the experiments while a worker commits one can fail inside DVC (None): it
    is asked again, a few times, instead of stopping or hanging."""
    fake_queue(monkeypatch, [{}, None, None, {"exp": "Success"}])
    queue.run_experiments({"exp": ["u=5"]}, jobs=1)  # returns: the last answer was read
    fake_queue(monkeypatch, [{}] + [None] * queue.STATES_TRIES)
    with pytest.raises(PipelineError, match="failed after the queue ran"):
        queue.run_experiments({"exp": ["u=5"]}, jobs=1)


def test_experiment_states_gives_none_when_dvc_fails(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # not a DVC repo: `dvc exp show` fails there
    assert queue.experiment_states() is None
