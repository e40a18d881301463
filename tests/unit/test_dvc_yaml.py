"""dvc.yaml lists, for every stage, the code it runs; the layout holds."""

import ast
import sys
from pathlib import Path

import pytest
import yaml

from bench.sandbox import run_command
from tests.helpers import ROOT
from transfer.errors import PipelineError
from transfer.memo.code_version import imported_modules, module_file
from transfer.paths import CODE_VERSIONS_DIR
from transfer.stage_code import PACKAGES, listing_file, stage_files, write_code_listings

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def imports(path: str) -> set[str]:
    """The modules a file imports by name."""
    names = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def imported_files(module: str) -> set[str]:
    """The files `python -m <module>` imports of this project (the memo keys' own reading)."""
    return {
        module_file(name).relative_to(ROOT).as_posix()
        for name in imported_modules(module, packages=PACKAGES)
    }


@pytest.mark.parametrize("name", [name for name in STAGES if name != "code_versions"])
def test_a_stage_lists_its_code_as_the_one_file_code_versions_writes_for_it(name: str) -> None:
    code = [dep for dep in STAGES[name]["deps"] if dep.split("/")[0] in PACKAGES]
    listings = [dep for dep in STAGES[name]["deps"] if dep.startswith(f"{CODE_VERSIONS_DIR}/")]
    assert code == [], f"{name} lists modules: its code listing names them"
    assert listings == [listing_file(CODE_VERSIONS_DIR, name).as_posix()]


def test_code_versions_reads_all_the_code_and_writes_the_listings() -> None:
    stage = STAGES["code_versions"]
    assert stage["deps"] == list(PACKAGES)
    assert stage["outs"] == [CODE_VERSIONS_DIR.as_posix()]
    assert "__pycache__/" in (ROOT / ".dvcignore").read_text().splitlines()


def test_a_listing_names_every_file_the_stage_imports_and_sha256sum_checks_it(
    tmp_path: Path,
) -> None:
    listings = tmp_path / "code_versions"
    write_code_listings(["split", "export"], listings, ROOT)
    assert sorted(path.name for path in listings.iterdir()) == ["export.sha256", "split.sha256"]
    checked = run_command(
        ["sha256sum", "--check", "--strict", str(listings / "split.sha256")], ROOT
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    listed = {line.split("  ")[1] for line in (listings / "split.sha256").read_text().splitlines()}
    direct = {
        module_file(name).relative_to(ROOT).as_posix()
        for name in imports("stages/split.py")
        if name.split(".")[0] in PACKAGES
    }
    assert direct <= listed and {"stages/split.py", "stages/__init__.py"} <= listed
    assert "transfer/__init__.py" in listed  # the package every import of the library runs
    assert not any(path.startswith("transfer/models/") for path in listed)
    assert "transfer/export/tflite.py" in (listings / "export.sha256").read_text()


def test_a_listing_of_code_outside_the_project_is_one_line_naming_it(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"stages.split would import .*stages/__init__.py, "):
        stage_files("split", tmp_path)


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
        listed = [path.as_posix() for path in stage_files(stage, ROOT)]
        assert not any(path.startswith("transfer/models/") for path in listed)


def test_evaluate_and_a_head_only_finetune_do_not_load_tensorflow() -> None:
    """Importing TensorFlow costs 2-3 s per stage, the most of a head-only experiment's
    evaluate: evaluate imports it only for the heat maps of misclassified images, finetune
    only when there are layers to train. Nor do split, the small files the stages hand to
    each other (transfer/manifests/) and the review server, until a heat map is asked for.
    Nor does listing the code of the stages that do, which every code edit reruns."""
    code = (
        "import sys, stages.evaluate, stages.finetune, stages.split, transfer.review.server; "
        "import transfer.manifests.cache_meta, transfer.manifests.corrections; "
        "from pathlib import Path; from transfer.stage_code import code_listing; "
        "code_listing('export', Path.cwd()); code_listing('finetune', Path.cwd()); "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    result = run_command([sys.executable, "-c", code], ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


CODE_FOLDERS = ("transfer", "stages", "bench")
MAX_FUNCTION_LINES = 60
MAX_POSITIONAL = 6


@pytest.mark.parametrize("folder", CODE_FOLDERS)
def test_functions_are_short_and_take_keywords_beyond_a_few_values(folder: str) -> None:
    """A function that needs more is usually two functions or one dataclass."""
    too_long = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
            lines = node.end_lineno - node.lineno + 1
            positional = [
                a for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")
            ]
            if lines > MAX_FUNCTION_LINES:
                too_long.append(f"{where}: {lines} lines")
            if len(positional) > MAX_POSITIONAL:
                too_long.append(f"{where}: {len(positional)} positional parameters")
    assert not too_long


def test_every_benchmark_imports_and_says_how_to_run_it() -> None:
    """A benchmark that no longer imports (a function it calls renamed) fails here, not in
    the hands of the next person who runs it. One process: TensorFlow starts once."""
    scripts = sorted(path.stem for path in (ROOT / "bench").glob("*.py"))
    code = (
        "import contextlib, importlib, io, sys\n"
        "for name in sys.argv[1:]:\n"
        "    module = importlib.import_module(f'bench.{name}')\n"
        "    if not hasattr(module, 'main'):\n"
        "        continue\n"
        "    sys.argv, usage = [name, '--help'], io.StringIO()\n"
        "    with contextlib.redirect_stdout(usage), contextlib.suppress(SystemExit):\n"
        "        module.main()\n"
        "    print(name, 'usage:' in usage.getvalue())\n"
    )
    result = run_command([sys.executable, "-c", code, *scripts], ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    answers = dict(line.split() for line in result.stdout.splitlines())
    assert {"bench", "data_changes", "extract_speed", "scale_memory"} <= set(answers)
    assert all(answer == "True" for answer in answers.values()), answers
