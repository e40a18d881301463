"""Synthetic datasets and throwaway pipeline repos shared by the tests."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CLASS_COLOURS = {"cat": (200, 40, 40), "dog": (40, 200, 40), "fox": (40, 40, 200)}


def write_image(path: Path, colour: tuple[int, int, int], seed: int, size: int = 48) -> None:
    """A JPEG of one dominant colour with noise, so a tiny model can tell the classes apart."""
    random = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + random.normal(0, 30, (size, size, 3)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path, format="JPEG")


def make_image_folder(root: Path, per_class: int = 12, size: int = 48) -> Path:
    """root/<class>/img_NN.jpg for three classes."""
    for offset, (name, colour) in enumerate(CLASS_COLOURS.items()):
        for index in range(per_class):
            write_image(root / name / f"img_{index:02d}.jpg", colour, offset * 1000 + index, size)
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return make_image_folder(tmp_path / "photos")


def tiny_params(source: Path) -> dict:
    """The project's params.yaml with a tiny, fast configuration and a random backbone."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["source"] = str(source)
    params["split"] = {"val": 0.25, "test": 0.25}
    params["image"]["size"] = 32
    params["backbone"].update(name="MobileNetV2", weights=None, batch_size=8)
    params["head"].update(epochs=3, batch_size=8)
    params["finetune"].update(epochs=2, batch_size=8, learning_rate=0.01)
    params["evaluate"].update(representative_images=4, grid_images=6)
    return params


def command_env() -> dict[str, str]:
    """The environment with the test's Python first on PATH (the stages call `python`)."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "DVC_NO_ANALYTICS": "1",
    }


def run_command(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a command in `cwd` with command_env()."""
    return subprocess.run(
        args, cwd=cwd, env=command_env(), capture_output=True, text=True, check=False
    )


def make_pipeline_repo(directory: Path, params: dict) -> Path:
    """A git + DVC repo holding a copy of the pipeline and the given params, committed."""
    directory.mkdir(parents=True)
    shutil.copytree(
        ROOT / "stages", directory / "stages", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("dvc.yaml", ".gitignore"):
        shutil.copy(ROOT / name, directory / name)
    (directory / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        run_command(command, directory).check_returncode()
    run_command([sys.executable, "-m", "dvc", "config", "core.autostage", "true"], directory)
    commit(directory, "pipeline")
    return directory


def commit(directory: Path, message: str) -> None:
    run_command(["git", "add", "-A"], directory).check_returncode()
    run_command(["git", "commit", "-q", "-m", message], directory).check_returncode()


def dvc(directory: Path, *args: str) -> subprocess.CompletedProcess:
    """Run a dvc command in the repo and fail the test with its output if it fails."""
    result = run_command([sys.executable, "-m", "dvc", *args], directory)
    assert result.returncode == 0, (
        f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    )
    return result
