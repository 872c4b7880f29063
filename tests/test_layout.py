"""The package's shape: stages and the two command lines on top, shared modules in wings by concern.

Each stage's code deps in dvc.yaml equal the modules ``python -m pipeline.<stage>`` imports (a
missing one would let DVC skip a stage whose code changed; an extra one re-runs it for nothing);
no import cycles; no stage imports another; each wing imports only the wings below it; importing
a module changes nothing in the process. (Long modules are listed after the test run, by
conftest's summary, as a hint to split them.)"""

import ast
import subprocess
import sys

import yaml

from tests.conftest import REPO
from tests.test_dependencies import imported as third_party_imports

PACKAGE = REPO / "pipeline"
COMMAND_LINES = {"predict", "sample"}
# the wings each wing may import besides itself: core at the bottom, tracking and report on top
MAY_IMPORT = {
    "core": set(),
    "data": {"core"},
    "model": {"core", "data"},
    "tracking": {"core", "data", "model"},
    "report": {"core", "data", "model"},
}
# files a stage uses without importing them, and why
NOT_IMPORTED = {"evaluate": {"pipeline/tracking/pyfunc.py"}}  # logged as the MLflow model's code


def module_path(module: str):
    """``core.params`` -> ``pipeline/core/params.py``."""
    return PACKAGE.joinpath(*module.split(".")).with_suffix(".py")


def all_modules() -> list[str]:
    """Every module of the package, as ``train`` or ``core.params`` (wings' ``__init__`` aside:
    they hold only a docstring, which a test below checks)."""
    files = sorted(PACKAGE.glob("*.py")) + sorted(PACKAGE.glob("*/*.py"))
    return [".".join(f.relative_to(PACKAGE).with_suffix("").parts) for f in files if f.stem != "__init__"]


def package_imports(module: str) -> set[str]:
    """The package's modules that ``module`` imports, at the top or in a function."""
    found = set()
    for node in ast.walk(ast.parse(module_path(module).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "pipeline" and len(parts) > 1 and module_path(".".join(parts[1:])).exists():
                found.add(".".join(parts[1:]))
    return found - {module}


def closure(module: str) -> set[str]:
    seen, todo = {module}, [module]
    while todo:
        for imported in package_imports(todo.pop()) - seen:
            seen.add(imported)
            todo.append(imported)
    return seen


def dep_problems(dvc: dict) -> list[str]:
    """Every stage whose ``pipeline/**.py`` deps differ from its import closure, in words."""
    problems = []
    for name, stage in dvc["stages"].items():
        module = stage["cmd"].removeprefix("python -m pipeline.").split()[0]
        declared = {dep for dep in stage.get("deps", []) if dep.startswith("pipeline/") and dep.endswith(".py")}
        needed = {str(module_path(m).relative_to(REPO)) for m in closure(module)} | NOT_IMPORTED.get(name, set())
        if missing := sorted(needed - declared):
            problems.append(f"stage {name}: deps miss {', '.join(missing)}")
        if extra := sorted(declared - needed):
            problems.append(f"stage {name}: deps list {', '.join(extra)}, which it does not import")
    return problems


def dvc_yaml() -> dict:
    """dvc.yaml, with each ``foreach`` stage as its ``do`` part."""
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))
    dvc["stages"] = {name: stage.get("do", stage) for name, stage in dvc["stages"].items()}
    return dvc


def stages() -> set[str]:
    return {stage["cmd"].removeprefix("python -m pipeline.") for stage in dvc_yaml()["stages"].values()}


def test_every_stage_depends_on_exactly_the_code_it_imports():
    assert dep_problems(dvc_yaml()) == []


def test_the_deps_check_catches_a_removed_and_an_extra_dep():
    dvc = dvc_yaml()
    dvc["stages"]["train"]["deps"].remove("pipeline/model/batching.py")
    dvc["stages"]["baseline"]["deps"].append("pipeline/model/network.py")
    assert dep_problems(dvc) == [
        "stage train: deps miss pipeline/model/batching.py",
        "stage baseline: deps list pipeline/model/network.py, which it does not import",
    ]


def test_the_top_level_holds_the_stages_the_command_lines_and_the_wings_only():
    entries = {path.name for path in PACKAGE.iterdir() if path.name != "__pycache__"}
    expected = {f"{m}.py" for m in stages() | COMMAND_LINES} | set(MAY_IMPORT) | {"__init__.py"}
    assert entries == expected


def test_each_wing_says_what_it_holds_and_who_may_import_it_and_runs_no_code():
    for wing in MAY_IMPORT:
        body = ast.parse((PACKAGE / wing / "__init__.py").read_text(encoding="utf-8")).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr), f"{wing}/__init__.py: a docstring only"
        assert "import" in body[0].value.value, f"{wing}/__init__.py: say which wings may import it"


def test_the_package_has_no_import_cycle():
    for module in all_modules():
        for imported in package_imports(module):
            assert module not in closure(imported), f"import cycle: {module} -> {imported} -> ... -> {module}"


def test_no_stage_or_command_line_imports_another():
    top = stages() | COMMAND_LINES
    for module in top:
        assert not (package_imports(module) & top), module


def test_wings_import_only_the_wings_below_them_and_never_a_stage():
    for module in all_modules():
        wing = module.split(".")[0]
        if wing not in MAY_IMPORT:
            continue
        for imported in package_imports(module):
            other = imported.split(".")[0]
            assert other in MAY_IMPORT, f"{module} imports the stage or command line {imported}"
            assert other in MAY_IMPORT[wing] | {wing}, f"{module} ({wing}) imports {imported} ({other})"


# Runs the code given after importing the libraries the package imports (some set variables of
# their own as they load: polars, scikit-learn, MLflow), and says what that code changed in the
# process: the environment, oneDNN's switch, Matplotlib's backend (read raw: reading it the usual
# way would resolve it).
SIDE_EFFECTS = """
import importlib, os, sys
import matplotlib, torch
for library in sys.argv[2:]:
    importlib.import_module(library)
def state():
    backend = dict.__getitem__(matplotlib.rcParams, "backend")
    return {"environment": dict(os.environ), "oneDNN": torch.backends.mkldnn.enabled, "backend": backend}
before = state()
exec(sys.argv[1])
after = state()
print(sorted(name for name in before if before[name] != after[name]))
"""


def changed_by(code: str, libraries: tuple[str, ...] = ()) -> str:
    command = [sys.executable, "-c", SIDE_EFFECTS, code, *libraries]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_any_module_changes_nothing_in_the_process():
    imports = "; ".join(f"importlib.import_module('pipeline.{m}')" for m in all_modules())
    assert changed_by(imports, tuple(sorted(third_party_imports("pipeline")))) == "[]"
    # the check can tell
    assert changed_by("os.environ['MKL_CBWR'] = 'AVX2'; torch.backends.mkldnn.enabled = False") == (
        "['environment', 'oneDNN']"
    )
    assert changed_by("matplotlib.use('Agg')") == "['backend']"


def test_the_baseline_stage_does_not_load_torch():
    check = "import pipeline.baseline, sys; assert 'torch' not in sys.modules, 'torch was imported'"
    result = subprocess.run([sys.executable, "-c", check], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
