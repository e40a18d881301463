"""What a memo key says of the code that computed an entry: the source of every module of this
project that the computation imports, found by reading the imports (a list kept by hand goes
stale without an error). No TensorFlow here: `download` and `cache` key their entries by it."""

import ast
import hashlib
from importlib.util import find_spec
from pathlib import Path


def module_file(module: str) -> Path:
    """The source file of a module (a package's __init__.py), found without importing it or
    its packages: `find_spec("a.b")` would import `a`, and a package's __init__ may load
    TensorFlow, which the stage `code_versions` must not wait for."""
    top, *rest = module.split(".")
    spec = find_spec(top)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(module)
    path = Path(spec.origin)
    for part in rest:
        if path.name != "__init__.py":
            raise ModuleNotFoundError(module)
        package = path.parent / part / "__init__.py"
        path = package if package.is_file() else path.parent / f"{part}.py"
        if not path.is_file():
            raise ModuleNotFoundError(module)
    return path


def _is_module(name: str) -> bool:
    try:
        module_file(name)
    except ModuleNotFoundError:
        return False
    return True


def project_imports(module: str, packages: tuple[str, ...]) -> set[str]:
    """The modules of `packages` that a module imports, anywhere in its file (a function's
    own imports included): `from a.b import c` names a.b, and a.b.c when c is a module."""
    found = set()
    for node in ast.walk(ast.parse(module_file(module).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] in packages and _is_module(n))
    return found


def imported_modules(
    *roots: str, packages: tuple[str, ...] = ("transfer",), leaving_out: tuple[str, ...] = ()
) -> list[str]:
    """The roots and every module of `packages` they import, directly or not, with the
    packages on the way to each (importing a.b.c runs a/__init__.py and a/b/__init__.py),
    sorted: what `import root` loads of this project, but the modules `leaving_out` names
    and what only they import."""
    found: set[str] = set(leaving_out)
    pending = list(roots)
    while pending:
        parts = pending.pop().split(".")
        for depth in range(1, len(parts) + 1):
            name = ".".join(parts[:depth])
            if name not in found:
                found.add(name)
                pending += project_imports(name, packages)
    return sorted(found - set(leaving_out))


def code_version(*roots: str, leaving_out: tuple[str, ...] = ()) -> str:
    """A version of the code that computes a result: the hash of the name and source of each
    module that `roots` load (imported_modules, `leaving_out` left out)."""
    digest = hashlib.sha256()
    for module in imported_modules(*roots, leaving_out=leaving_out):
        digest.update(module.encode() + b"\0" + module_file(module).read_bytes() + b"\0")
    return digest.hexdigest()
