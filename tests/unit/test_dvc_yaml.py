"""dvc.yaml lists, for every stage, exactly the modules the stage imports; the layout holds."""

import ast
import sys
from pathlib import Path

import pytest
import yaml

from bench.sandbox import run_command
from tests.helpers import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
PACKAGES = ("stages", "transfer")


def module_file(module: str) -> str:
    """The file of a module of this project: a package's __init__.py, or the .py file."""
    path = Path(*module.split("."))
    if (ROOT / path).is_dir():
        return (path / "__init__.py").as_posix()
    return path.with_suffix(".py").as_posix()


def imports(path: str) -> set[str]:
    """The modules a file imports by name."""
    names = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def project_imports(path: str) -> set[str]:
    """The modules of this project that a file imports."""
    return {name for name in imports(path) if name.split(".")[0] in PACKAGES}


def imported_files(module: str) -> set[str]:
    """The files `python -m <module>` imports: itself, every package on the way to each
    module, and so on through the project's own imports."""
    found: set[str] = set()
    pending = [module]
    while pending:
        parts = pending.pop().split(".")
        for depth in range(1, len(parts) + 1):
            path = module_file(".".join(parts[:depth]))
            if path not in found:
                found.add(path)
                pending += project_imports(path)
    return found


@pytest.mark.parametrize("name", list(STAGES))
def test_stage_depends_on_exactly_the_modules_it_imports(name: str) -> None:
    stage = STAGES[name]
    module = stage["cmd"].removeprefix("python -m ")
    listed = {dep for dep in stage["deps"] if dep.split("/")[0] in PACKAGES}
    imported = imported_files(module)
    assert not imported - listed, f"{name} imports but does not depend on {imported - listed}"
    assert not listed - imported, f"{name} depends on but does not import {listed - imported}"


def test_stages_holds_only_what_dvc_runs() -> None:
    modules = {path.stem for path in (ROOT / "stages").glob("*.py")}
    assert modules == {*STAGES, "__init__"}
    assert {stage["cmd"] for stage in STAGES.values()} == {f"python -m stages.{n}" for n in STAGES}


@pytest.mark.parametrize(
    ("files", "forbidden"),
    [
        (sorted((ROOT / "transfer").rglob("*.py")), ("stages", "tests", "bench")),
        (sorted((ROOT / "stages").glob("*.py")), ("stages", "tests", "bench")),
        (sorted((ROOT / "bench").glob("*.py")), ("stages", "tests")),
    ],
    ids=["library", "stages", "bench"],
)
def test_imports_go_one_way(files: list[Path], forbidden: tuple[str, ...]) -> None:
    """The library imports no entry point, no stage imports another, the bench no stage."""
    assert files
    for path in files:
        relative = path.relative_to(ROOT).as_posix()
        bad = {name for name in imports(relative) if name.split(".")[0] in forbidden}
        assert not bad, f"{relative} imports {bad}"


def test_the_library_uses_no_private_keras_attributes() -> None:
    private = ("_inbound_nodes", "_nodes", "_keras_history")
    for path in sorted((ROOT / "transfer").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                assert node.attr not in private, f"{path.relative_to(ROOT)} uses .{node.attr}"


def test_params_validation_does_not_import_the_model_code() -> None:
    """Editing a model factory or the backbone registry must not rerun download and split."""
    assert imported_files("transfer.params") == {
        "transfer/__init__.py",
        "transfer/params.py",
        "transfer/errors.py",
    }
    for stage in ("download", "split"):
        assert not any(dep.startswith("transfer/models/") for dep in STAGES[stage]["deps"])


def test_evaluate_and_a_head_only_finetune_do_not_load_tensorflow() -> None:
    """Importing TensorFlow costs 2-3 s per stage, the most of a head-only experiment's
    evaluate; finetune imports it only when there are layers to train."""
    code = (
        "import sys, stages.evaluate, stages.finetune; "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    result = run_command([sys.executable, "-c", code], ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
