"""dvc.yaml lists, for every stage, exactly the modules the stage imports."""

import ast

import pytest
import yaml

from tests.conftest import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def imported_modules(module: str) -> set[str]:
    """The files of `stages` that `python -m <module>` imports, itself and the package included."""
    found = {"stages/__init__.py"}
    pending = [module]
    while pending:
        path = module_file(pending.pop())
        if path in found:
            continue
        found.add(path)
        for node in ast.walk(ast.parse((ROOT / path).read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            pending += [name for name in names if name.startswith("stages.")]
    return found


def module_file(module: str) -> str:
    return module.replace(".", "/") + ".py"


@pytest.mark.parametrize("name", list(STAGES))
def test_stage_depends_on_exactly_the_modules_it_imports(name: str) -> None:
    stage = STAGES[name]
    module = stage["cmd"].removeprefix("python -m ")
    listed = {dep for dep in stage["deps"] if dep.startswith("stages/")}
    imported = imported_modules(module)
    assert not imported - listed, f"{name} imports but does not depend on {imported - listed}"
    assert not listed - imported, f"{name} depends on but does not import {listed - imported}"
