"""Every package the code imports is declared in pyproject.toml, not merely installed because
another package brought it (as pydantic comes with MLflow): a release of that other package
could drop it."""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(requirements: list[str]) -> set[str]:
    return {normalized(re.match(r"[A-Za-z0-9_.\-]+", line)[0]) for line in requirements}


def imported_by(path) -> set[str]:
    """The top-level names of the third-party modules one file imports, at the top or in a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {name for name in names if name not in sys.stdlib_module_names and name not in ("pipeline", "tests")}


def imported(folder: str) -> set[str]:
    """The top-level names of the third-party modules imported anywhere under ``folder``."""
    local = {path.stem for path in (REPO / folder).glob("*.py")}  # sys.path tricks
    return {name for path in (REPO / folder).rglob("*.py") for name in imported_by(path)} - local


def undeclared(folder: str, requirements: list[str]) -> list[str]:
    """``module (from distribution)`` for each imported module no declared distribution provides."""
    providers = packages_distributions()
    allowed = declared(requirements)
    problems = []
    for name in sorted(imported(folder)):
        distributions = providers.get(name, [])
        if not {normalized(d) for d in distributions} & allowed:
            problems.append(f"{name} (from {', '.join(sorted(set(distributions))) or 'nothing installed'})")
    return problems


def test_every_package_the_pipeline_imports_is_a_declared_dependency():
    assert undeclared("pipeline", PYPROJECT["project"]["dependencies"]) == []


def test_every_package_the_tests_import_is_declared_for_the_tests_or_the_pipeline():
    requirements = PYPROJECT["project"]["dependencies"] + PYPROJECT["dependency-groups"]["dev"]
    assert undeclared("tests", requirements) == []


def test_the_check_catches_a_removed_dependency():
    requirements = [line for line in PYPROJECT["project"]["dependencies"] if not line.startswith("pydantic")]
    assert undeclared("pipeline", requirements) == ["pydantic (from pydantic)"]
