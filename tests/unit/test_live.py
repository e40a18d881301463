"""DVCLive inside `dvc repro` in a new project (a git repo without a commit yet)."""

import sys
from pathlib import Path

import pytest
from dvclive import Live

from bench.sandbox import commit, run_command
from transfer.training.live import in_repo_without_commit, open_live


@pytest.fixture
def new_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`git init` and `dvc init`, no commit yet; DVC_ROOT set as `dvc repro` sets it for a
    stage's command."""
    project = tmp_path / "project"
    project.mkdir()
    for command in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        run_command(command, project).check_returncode()
    monkeypatch.chdir(project)
    monkeypatch.setenv("DVC_ROOT", str(project))
    return project


def test_dvclive_itself_fails_in_a_repo_without_a_commit(new_project: Path) -> None:
    """The upstream failure that NewRepoLive works around: when a DVCLive release fixes it,
    this test fails, and the workaround can go."""
    with pytest.raises(Exception, match="Empty git repo"):
        Live(str(new_project / "live"), dvcyaml=None, save_dvc_exp=False, report=None)


def test_the_stages_live_logs_in_a_repo_without_a_commit(new_project: Path) -> None:
    live = open_live(new_project / "reports" / "live")
    live.log_metric("accuracy", 0.5)
    live.next_step()
    live.end()
    assert (new_project / "reports" / "live" / "metrics.json").exists()


def test_only_a_repo_without_a_commit_skips_dvclives_integration(
    new_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert in_repo_without_commit()
    commit(new_project, "first")
    assert not in_repo_without_commit()
    monkeypatch.chdir(tmp_path)  # not a git repo
    assert not in_repo_without_commit()
