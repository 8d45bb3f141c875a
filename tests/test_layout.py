"""The package's layout as README.md's Layout section describes it, and the rules it promises.

Every module is listed there and every listed module exists; no module is longer than
MAX_LINES; the library does not print (but for the modules below) and never edits sys.path or
PYTHONPATH; `lint-imports` keeps the import contracts of pyproject.toml (layers, no cycles);
every dependency is explained in the README; the public API exists.
"""

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pyramid_lib

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "pyramid_lib"
README = REPO / "README.md"
MAX_LINES = 400
# "path relative to pyramid_lib": why it may be longer, until it is split
LONG_MODULES: dict[str, str] = {}
PRINT_ALLOWED = {
    "cli.py": None,  # the command line: printing is its job (None: every function)
    "__main__.py": None,  # python -m pyramid_lib: its one line when stopped while starting
    "tutorial.py": {"setup", "load_data", "train_cached"},  # what a notebook cell shows
    "lab/commands.py": None,  # the lab's sub-commands of the command line
}


def modules() -> dict[str, Path]:
    """Every module of the package, by its path relative to pyramid_lib/ (sub-packages' __init__ aside)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if "__pycache__" in rel or (path.name == "__init__.py" and path.parent != PACKAGE):
            continue
        found[rel] = path
    return found


def readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def layout_listing() -> tuple[list[str], list[str]]:
    """(modules under pyramid_lib/, top-level folders) named at the start of a line of the Layout block."""
    block = re.search(r"```\n(.*?)```", readme_section("Layout"), flags=re.S)
    assert block, "README.md's Layout section has no ``` block"
    listed, folders = [], []
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        first = line.split()[0]
        if not line.startswith(" ") and first.endswith("/"):
            folders.append(first)
        elif line.startswith("  ") and first.endswith(".py"):
            listed.append(first)
    return listed, folders


def test_readme_layout_lists_every_module_and_only_modules_that_exist():
    listed, folders = layout_listing()
    assert "pyramid_lib/" in folders
    dupes = sorted({m for m in listed if listed.count(m) > 1})
    assert not dupes, f"README.md's Layout lists these twice: {dupes}"
    missing = sorted(set(modules()) - set(listed))
    stale = sorted(set(listed) - set(modules()))
    assert not missing, f"modules not in README.md's Layout section (add one line each): {missing}"
    assert not stale, f"README.md's Layout section lists modules that do not exist: {stale}"
    absent = [f for f in folders if not (REPO / f).is_dir()]
    assert not absent, f"README.md's Layout section lists folders that do not exist: {absent}"


def test_no_module_is_longer_than_the_limit():
    too_long = {rel: n for rel, path in modules().items()
                if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES and rel not in LONG_MODULES}
    assert not too_long, f"modules over {MAX_LINES} lines (split them by concern): {too_long}"


def _functions_calling(tree: ast.AST, name: str):
    """(enclosing function or None, line) for every call of the builtin `name`."""
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name:
            up = parents.get(node)
            while up is not None and not isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef)):
                up = parents.get(up)
            yield (up.name if up is not None else None), node.lineno


def test_the_library_does_not_print():
    found = []
    for rel, path in modules().items():
        allowed = PRINT_ALLOWED.get(rel, set())
        for func, line in _functions_calling(ast.parse(path.read_text(encoding="utf-8")), "print"):
            if allowed is not None and func not in allowed:
                found.append(f"{rel}:{line} (in {func or 'module level'})")
    assert not found, ("print() in library code (return the text, log it, or warn; only the CLI and the "
                       f"notebook helpers listed in PRINT_ALLOWED print): {found}")


def _docstrings(tree: ast.AST) -> set[int]:
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                  ast.ClassDef)))]
    return {id(n.body[0].value) for n in nodes
            if n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}


def test_the_library_never_edits_sys_path_or_pythonpath():
    found = []
    for rel, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
                    and node.value.id == "sys"):
                found.append(f"{rel}:{node.lineno} sys.path")
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and "PYTHONPATH" in node.value
                  and id(node) not in docs):
                found.append(f"{rel}:{node.lineno} PYTHONPATH")
    assert not found, f"the library imports the installed package; it must not touch the import path: {found}"


def test_imports_keep_the_contracts_of_pyproject():
    exe = Path(sys.executable).with_name("lint-imports")
    exe = str(exe) if exe.exists() else shutil.which("lint-imports")
    if exe is None:
        pytest.skip("lint-imports (import-linter, the 'dev' extra) is not installed")
    proc = subprocess.run([exe, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, "lint-imports: contracts broken\n" + proc.stdout[-6000:] + proc.stderr[-2000:]


def test_readme_explains_every_dependency():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    names = {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in requirements}
    section = readme_section("Libraries, and why").lower()
    missing = sorted(n for n in names if f"**{n}**" not in section)
    assert not missing, f"dependencies not explained in README.md's 'Libraries, and why' (as **name**): {missing}"


def test_public_api():
    assert pyramid_lib.__all__, "pyramid_lib.__all__ is empty"
    for name in pyramid_lib.__all__:
        assert hasattr(pyramid_lib, name), f"pyramid_lib.__all__ names {name}, which pyramid_lib does not define"
    for name in ("PyramidalAutoencoder", "ModelConfig", "PyramidLoss", "TrainConfig", "load", "train",
                 "evaluate_run", "predict", "RunDir", "__version__"):
        assert name in pyramid_lib.__all__, name
    tomllib = pytest.importorskip("tomllib")
    version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert pyramid_lib.__version__ == version, "pyramid_lib.__version__ differs from pyproject.toml's version"
