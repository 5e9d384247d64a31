"""The package's layers (docs/architecture.md) hold: no import against the direction, none of
another package's private modules or names, and the contract names every module of r2dn."""

import ast
import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import r2dn

ROOT = Path(__file__).parent.parent
CONTRACT = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the tree at ``root`` (its pyproject.toml and its r2dn)."""
    return subprocess.run(
        [sys.executable, "-c", "import sys, importlinter.cli as c; sys.exit(c.lint_imports())"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": ""},
        capture_output=True,
        text=True,
    )


def test_imports_follow_the_layers():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout


def test_the_contract_names_every_module_of_the_package():
    layers = CONTRACT["contracts"][0]["layers"]
    named = {name.strip() for layer in layers for name in layer.replace(":", "|").split("|")}
    modules = {m.name for m in pkgutil.iter_modules(r2dn.__path__)}
    assert modules == named


def test_an_upward_import_breaks_the_contract(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "r2dn", tmp_path / "r2dn")
    shutil.copytree(ROOT / "experiments", tmp_path / "experiments")
    low = tmp_path / "r2dn" / "parameterizations" / "init.py"
    low.write_text(low.read_text() + "\nimport r2dn.models  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0 and "r2dn.parameterizations.init -> r2dn.models" in result.stdout


def _private_imports(path: Path, package: str):
    """``(imported, name)`` for each import of a private module or name outside its package."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("r2dn"):
            targets = [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            for i, part in enumerate(parts):
                owner = ".".join(parts[:i])
                if part.startswith("_") and not part.startswith("__") and owner:
                    inside = package == owner or package.startswith(owner + ".")
                    if not inside:
                        yield target
                    break


@pytest.mark.parametrize("path", sorted((ROOT / "r2dn").rglob("*.py")), ids=str)
def test_no_private_module_or_name_of_another_package_is_imported(path):
    relative = path.relative_to(ROOT).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    package = ".".join(parts[:-1]) if relative.name != "__init__" else ".".join(parts)
    assert list(_private_imports(path, package)) == []


def test_a_private_import_from_another_package_is_found(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from r2dn.parameterizations._linalg import cayley\nimport r2dn._files\n")
    found = list(_private_imports(bad, "r2dn.networks"))
    assert found == ["r2dn.parameterizations._linalg.cayley"]  # r2dn._files is r2dn's own
