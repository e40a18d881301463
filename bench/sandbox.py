"""Throwaway git + DVC copies of this pipeline, for the end-to-end tests and the benchmark.

They copy the checkout this module belongs to, so they measure and test the code as it is
now. Only the tests and the benchmark use them: the pipeline itself never does.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PIPELINE_FILES = ("stages", "transfer", "dvc.yaml", ".gitignore", ".dvcignore", "corrections.csv")


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


def run_command(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run a command in `cwd` with command_env() (plus `env`), capturing its output."""
    return subprocess.run(
        args, cwd=cwd, env={**command_env(), **(env or {})}, capture_output=True, text=True
    )


# Runs the command given as arguments as a child and prints its peak resident memory (KiB).
_MEASURE_PEAK = """
import resource, subprocess, sys
result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(result.stdout)
sys.stderr.write(result.stderr)
print(f"peak_kib={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
sys.exit(result.returncode)
"""


def run_measured(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, float]:
    """run_command, and the command's peak resident memory in MiB (measured by a parent of
    its own, so earlier children of this process do not count)."""
    result = run_command([sys.executable, "-c", _MEASURE_PEAK, *args], cwd, env)
    output, _, peak = result.stdout.rpartition("peak_kib=")
    result.stdout = output
    return result, int(peak) / 1024


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
