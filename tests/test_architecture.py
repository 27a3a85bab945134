"""The package keeps its shape (docs/architecture.md): layers import downwards only, only the engine
imports SimPy, no module reaches for another's private names, every module says what it owns, and
no function grows past a screen. Checked on the source with ``ast``, so a violation names file and line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import funnelsim

SRC = Path(__file__).resolve().parents[1] / "src" / "funnelsim"
MODULES = sorted(SRC.rglob("*.py"))
MAX_FUNCTION_LINES = 80

# Each layer may import from itself and the layers before it (data flows one way).
LAYERS = ("foundation", "model", "run", "engine", "studies", "calibrate", "report", "cli")
FOUNDATION = {"vocabulary", "randomness", "files", "units", "__init__"}


def _name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "foundation"
    head = parts[1]
    if head == "__main__":  # python -m funnelsim: the command line
        return "cli"
    if head in FOUNDATION:
        return "foundation"
    return head


def _imports(tree: ast.Module) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every absolute funnelsim import outside ``if TYPE_CHECKING:``."""
    checking = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in checking:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "funnelsim":
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "funnelsim"]
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_module_shape(path: Path) -> None:
    """Docstring, function length, no private imports, imports only from this layer or the ones before."""
    tree = ast.parse(path.read_text())
    where = path.relative_to(SRC)
    assert ast.get_docstring(tree), f"{where}: no module docstring saying what it owns"
    long = [
        f"{where}:{node.lineno} {node.name} is {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.end_lineno or node.lineno) - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"break these into named steps (at most {MAX_FUNCTION_LINES} lines): {long}"
    me = _name(path)
    mine = LAYERS.index(_layer(me))
    for line, module, names in _imports(tree):
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        assert not private, f"{where}:{line} imports private {private} from {module}"
        if me == "funnelsim":
            continue  # the curated API names every layer
        theirs = LAYERS.index(_layer(module)) if module != "funnelsim" else 0
        assert theirs <= mine, f"{where}:{line}: {_layer(me)} imports {module} ({_layer(module)}, a later layer)"


def test_only_the_engine_imports_simpy() -> None:
    """SimPy is the engine's kernel; nothing else may depend on it."""
    users = [
        str(path.relative_to(SRC))
        for path in MODULES
        for node in ast.walk(ast.parse(path.read_text()))
        if (isinstance(node, ast.Import) and any(a.name.split(".")[0] == "simpy" for a in node.names))
        or (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "simpy")
    ]
    assert users and all(u.startswith("engine/") for u in users), users


def test_the_curated_api_is_complete_and_documented() -> None:
    """``import funnelsim`` offers every study a notebook needs, each with a docstring."""
    wanted = {"load_scenario", "simulate", "replicate", "compare", "plan", "sweep", "sensitivity", "calibrate"}
    assert wanted <= set(funnelsim.__all__)
    for name in funnelsim.__all__:
        if name == "__version__":
            continue
        value = getattr(funnelsim, name)
        assert value.__doc__, f"funnelsim.{name} has no docstring"
    assert sorted(funnelsim.__all__) == sorted(["__version__", *funnelsim._API])


def test_the_readme_python_example_runs_on_the_curated_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ```python block of the README runs as written (from the repository root) and
    imports nothing but ``funnelsim`` itself, so a notebook user needs no private module."""
    root = SRC.parents[1]
    text = (root / "README.md").read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]
    assert blocks, "the README has no Python example"
    monkeypatch.chdir(root)
    for block in blocks:
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom):
                assert node.module == "funnelsim", f"README imports from {node.module}"
            elif isinstance(node, ast.Import):
                assert all(a.name == "funnelsim" for a in node.names), ast.unparse(node)
        exec(compile(block, "README.md", "exec"), {})


def test_every_package_is_installed() -> None:
    """pyproject.toml lists packages by hand (the bundled scenarios live outside src/), so a new
    sub-package must be added there, or a fresh install lacks it while the source tree hides it."""
    import tomllib

    listed = set(tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {_name(init) for init in SRC.rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
