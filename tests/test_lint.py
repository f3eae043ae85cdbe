"""The code base lints clean (`make lint`): ruff, and import-linter's layer and cycle contracts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import ROOT


def test_ruff_is_clean() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    done = subprocess.run([str(ruff), "check", "src", "tests", "benchmarks"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]


def test_import_contracts_hold() -> None:
    """Layers point one way (core <- stats <- modeling <- reports <- registry|serving <- ...) and
    no sub-package or module imports in a cycle."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint_imports), "--no-cache"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "0 broken" in done.stdout


def test_no_module_is_longer_than_600_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "src" / "helpers").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert not long, f"split these modules by job: {long}"


def test_no_module_uses_another_modules_private_names() -> None:
    """``from helpers.x import _name`` or ``module._name`` across modules: make the name public."""
    import ast

    offenders = []
    for path in (ROOT / "src" / "helpers").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported_modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers"):
                offenders += [f"{path.name}: {a.name}" for a in node.names if a.name.startswith("_")
                              and not a.name.startswith("__")]
                imported_modules.update(a.asname or a.name for a in node.names)
            elif isinstance(node, ast.Import):
                imported_modules.update(a.asname or a.name for a in node.names if a.name.startswith("helpers"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name) and node.value.id in imported_modules):
                offenders.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert not offenders, offenders


def test_no_html_skeleton_or_css_in_python_source() -> None:
    """Pages come from the Jinja2 templates in helpers/reports/templates."""
    import re

    pattern = re.compile(r"<(html|head|body|style)\b|<!doctype", re.IGNORECASE)
    found = [str(p.relative_to(ROOT)) for p in (ROOT / "src" / "helpers").rglob("*.py")
             if pattern.search(p.read_text(encoding="utf-8"))]
    assert not found, found
