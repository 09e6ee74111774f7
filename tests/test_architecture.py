"""Guard the project's conventions: the layering, no unsafe loading, documentation."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "sessions", "ui")
ALLOWED = {
    "engine": {"numpy"},
    "sessions": {"numpy", "pandas", "engine"},
    "ui": {
        "numpy",
        "pandas",
        "engine",
        "sessions",
        "panel",
        "holoviews",
        "bokeh",
        "param",
        "tqdm",
        "tornado",
    },
}


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_its_layer_allows(package: str) -> None:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    allowed = ALLOWED[package] | {package} | stdlib
    for path in _modules(package):
        extra = _imports(path) - allowed
        assert not extra, f"{path.relative_to(ROOT)} imports {sorted(extra)}"


def test_importing_engine_loads_no_upper_layer_or_toolkit() -> None:
    code = (
        "import sys, engine, engine.trainer\n"
        "bad = [m for m in ('sessions', 'ui', 'pandas', 'panel', 'holoviews',"
        " 'bokeh', 'param', 'torch') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_importing_sessions_loads_no_ui_toolkit() -> None:
    code = (
        "import sys, sessions, sessions.datasets, sessions.csv_import\n"
        "bad = [m for m in ('ui', 'panel', 'holoviews', 'bokeh') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_nothing_unpickles_or_evaluates() -> None:
    for package in PACKAGES:
        for path in _modules(package):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    assert node.func.id not in ("eval", "exec"), path
                if isinstance(node, ast.keyword) and node.arg == "allow_pickle":
                    assert isinstance(node.value, ast.Constant), path
                    assert node.value.value is False, path
            assert "pickle" not in _imports(path), path


@pytest.mark.parametrize("package", ["engine", "sessions"])
def test_public_functions_and_classes_have_docstrings(package: str) -> None:
    missing = []
    pkg = importlib.import_module(package)
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        module = importlib.import_module(info.name)
        if not module.__doc__:
            missing.append(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != info.name:
                continue
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and not obj.__doc__:
                missing.append(f"{info.name}.{name}")
    assert not missing, f"no docstring: {missing}"
