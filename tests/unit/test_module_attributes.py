"""Every ``module.NAME`` used through an imported pytest_k8sai module exists.

Static imports fail at import time, but ``from pytest_k8sai.gaie import pool`` followed by
``pool.SOMETHING`` fails only when that line runs, which may be minutes into a suite. A move
or a removed constant is caught here instead."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module_aliases(tree: ast.AST) -> dict[str, str]:
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pytest_k8sai"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if importlib.util.find_spec(full.rsplit(".", 1)[0]) is None:
                    continue
                try:
                    importlib.import_module(full)
                except ImportError:
                    continue  # a name, not a module
                aliases[a.asname or a.name] = full
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("pytest_k8sai") and a.asname:
                    aliases[a.asname] = a.name
    return aliases


def _missing(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    aliases = _module_aliases(tree)
    out = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            module = importlib.import_module(aliases[node.value.id])
            if not hasattr(module, node.attr):
                out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
    return out


def test_attributes_of_imported_modules_exist():
    pytest.importorskip("grpc", reason="the inference modules need the inference extra")
    files = [*(ROOT / "pytest_k8sai").rglob("*.py"), *(ROOT / "suites").rglob("*.py")]
    missing = [m for f in sorted(files) for m in _missing(f)]
    assert missing == []
