"""Throwaway git + DVC copies of this pipeline, for the end-to-end tests and the benchmark.

They copy the checkout this package was imported from (an editable install), so they measure
and test the code as it is now.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PIPELINE_FILES = ("stages", "transfer", "dvc.yaml", ".gitignore")  # what a pipeline repo holds


def command_env() -> dict[str, str]:
    """The environment with this Python first on PATH (the stages call `python`)."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "pipeline",
        "GIT_AUTHOR_EMAIL": "pipeline@example.com",
        "GIT_COMMITTER_NAME": "pipeline",
        "GIT_COMMITTER_EMAIL": "pipeline@example.com",
        "DVC_NO_ANALYTICS": "1",
    }


def run_command(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a command in `cwd` with command_env(), capturing its output."""
    return subprocess.run(
        args, cwd=cwd, env=command_env(), capture_output=True, text=True, check=False
    )


def make_pipeline_repo(directory: Path, params: dict) -> Path:
    """A new git + DVC repo at `directory` holding a copy of the pipeline and the given
    params, committed."""
    directory.mkdir(parents=True)
    for name in PIPELINE_FILES:
        if (PROJECT_ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(PROJECT_ROOT / name, directory / name, ignore=ignore)
        else:
            shutil.copy(PROJECT_ROOT / name, directory / name)
    (directory / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        run_command(command, directory).check_returncode()
    run_command([sys.executable, "-m", "dvc", "config", "core.autostage", "true"], directory)
    commit(directory, "pipeline")
    return directory


def commit(directory: Path, message: str) -> None:
    """Stage everything and commit it."""
    run_command(["git", "add", "-A"], directory).check_returncode()
    run_command(["git", "commit", "-q", "-m", message], directory).check_returncode()
