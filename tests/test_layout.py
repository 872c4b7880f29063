"""The package's shape: no import cycles, small modules, and each stage's code deps in dvc.yaml
equal to the modules ``python -m pipeline.<stage>`` imports (a missing one would let DVC skip a
stage whose code changed; an extra one re-runs it for nothing)."""

import ast
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

PACKAGE = REPO / "pipeline"
# files a stage uses without importing them, and why
NOT_IMPORTED = {"evaluate": {"pipeline/mlflow_model.py"}}  # logged as the MLflow model's code
MAX_LINES = 300


def package_imports(module: str) -> set[str]:
    """The package's modules that ``pipeline/<module>.py`` imports, at the top or in a function."""
    found = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "pipeline" and len(parts) > 1 and (PACKAGE / f"{parts[1]}.py").exists():
                found.add(parts[1])
    return found - {module}


def closure(module: str) -> set[str]:
    seen, todo = {module}, [module]
    while todo:
        for imported in package_imports(todo.pop()) - seen:
            seen.add(imported)
            todo.append(imported)
    return seen


def dep_problems(dvc: dict) -> list[str]:
    """Every stage whose ``pipeline/*.py`` deps differ from its import closure, in words."""
    problems = []
    for name, stage in dvc["stages"].items():
        module = stage["cmd"].removeprefix("python -m pipeline.").split()[0]
        declared = {dep for dep in stage.get("deps", []) if dep.startswith("pipeline/") and dep.endswith(".py")}
        needed = {f"pipeline/{m}.py" for m in closure(module)} | NOT_IMPORTED.get(name, set())
        if missing := sorted(needed - declared):
            problems.append(f"stage {name}: deps miss {', '.join(missing)}")
        if extra := sorted(declared - needed):
            problems.append(f"stage {name}: deps list {', '.join(extra)}, which it does not import")
    return problems


def dvc_yaml() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))


def test_every_stage_depends_on_exactly_the_code_it_imports():
    assert dep_problems(dvc_yaml()) == []


def test_the_deps_check_catches_a_removed_and_an_extra_dep():
    dvc = dvc_yaml()
    dvc["stages"]["train"]["deps"].remove("pipeline/batching.py")
    dvc["stages"]["baseline"]["deps"].append("pipeline/model.py")
    assert dep_problems(dvc) == [
        "stage train: deps miss pipeline/batching.py",
        "stage baseline: deps list pipeline/model.py, which it does not import",
    ]


def test_the_package_has_no_import_cycle():
    modules = sorted(path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__")
    for module in modules:
        for imported in package_imports(module):
            assert module not in closure(imported), f"import cycle: {module} -> {imported} -> ... -> {module}"


def test_stage_modules_import_no_other_stage():
    stages = {stage["cmd"].removeprefix("python -m pipeline.") for stage in dvc_yaml()["stages"].values()}
    for stage in stages:
        assert not (package_imports(stage) & (stages | {"predict"})), stage


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda path: path.name)
def test_modules_stay_small(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines: split it by job"


def test_the_baseline_stage_does_not_load_torch():
    check = "import pipeline.baseline, sys; assert 'torch' not in sys.modules, 'torch was imported'"
    result = subprocess.run([sys.executable, "-c", check], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
