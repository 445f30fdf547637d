"""The import rules of docs/architecture.md, checked on the package's own source (AST only).

- Layers: a module imports only its own layer and the layers below it (``ALLOWED``).
- Parts (kueue, das, gaie) do not import each other, except ``PART_EXCEPTIONS``.
- Library code never calls pytest.skip/fail/xfail/exit: it raises pytest_k8sai.core.errors
  exceptions and plugin.py / fixtures.py turn them into outcomes.
- Only core/data.py locates packaged data files.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest_k8sai

GENERIC = ("core", "clusters", "measure", "workloads", "report")
PARTS = ("kueue", "das", "gaie")
TOP = ("plugin", "fixtures", "cli", "runstate")

# What each group may import from pytest_k8sai (besides itself).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "clusters": {"core"},
    "measure": {"core"},
    "workloads": {"core", "clusters", "measure"},
    "report": {"core", "measure"},
    "kueue": {*GENERIC},
    "das": {*GENERIC},
    "gaie": {*GENERIC},
    "top": {*GENERIC, *PARTS},
}
# part -> parts it may import, and why.
PART_EXCEPTIONS: dict[str, dict[str, str]] = {
    "das": {
        "kueue": "the GPU slicing suite's Kueue + MIG arm creates Kueue queues (kueue.objects)"
    },
}
LIBRARY_EXEMPT = {"plugin.py", "fixtures.py"}  # the only modules that make pytest outcomes
PYTEST_OUTCOMES = {"skip", "fail", "xfail", "exit"}
DATA_MODULE = "core/data.py"
DATA_SUFFIXES = (".yaml", ".yml", ".json", ".jsonl")


def _group(rel: Path) -> str:
    first = rel.parts[0]
    if len(rel.parts) == 1:
        return "top" if rel.stem in TOP else "core"  # __init__.py of the package
    return first


def _imported(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every pytest_k8sai import, relative ones resolved."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".")[: -node.level]
                base = ".".join([*pkg, base] if base else pkg)
            names = [f"{base}.{a.name}" for a in node.names]
            out += [(node.lineno, n) for n in names]
    return [(line, n) for line, n in out if n.startswith("pytest_k8sai.")]


def _target_group(name: str) -> str | None:
    parts = name.split(".")
    if len(parts) < 2:
        return None
    head = parts[1]
    if head in TOP:
        return "top"
    return head if head in (*GENERIC, *PARTS) else None


def violations(package_dir: Path) -> list[str]:
    """Every broken rule under ``package_dir`` as ``file:line: what``."""
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir)
        where = rel.as_posix()
        module = ".".join(["pytest_k8sai", *rel.with_suffix("").parts])
        text = path.read_text()
        tree = ast.parse(text)
        group = _group(rel)
        for line, name in _imported(tree, module):
            target = _target_group(name)
            if target is None or target == group:
                continue
            allowed = ALLOWED.get(group, set()) | set(PART_EXCEPTIONS.get(group, {}))
            if target not in allowed:
                found.append(f"{where}:{line}: {group} imports {target} ({name})")
        if rel.name not in LIBRARY_EXEMPT or len(rel.parts) > 1:
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "pytest"
                    and node.func.attr in PYTEST_OUTCOMES
                ):
                    found.append(f"{where}:{node.lineno}: library calls pytest.{node.func.attr}")
                if isinstance(node, ast.ImportFrom) and node.module == "pytest":
                    for a in node.names:
                        if a.name in PYTEST_OUTCOMES:
                            found.append(f"{where}:{node.lineno}: library imports pytest.{a.name}")
        if where != DATA_MODULE:
            if "resources.files(" in text:
                found.append(f"{where}: locates package data (only {DATA_MODULE} may)")
            for lineno, src in enumerate(text.splitlines(), start=1):
                if "__file__" in src and any(s in src for s in DATA_SUFFIXES):
                    found.append(f"{where}:{lineno}: finds a data file by __file__")
    return found


def test_the_package_keeps_its_import_rules():
    package = Path(pytest_k8sai.__file__).parent
    assert violations(package) == []


def test_the_checker_reports_planted_violations(tmp_path):
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "bad.py").write_text("from pytest_k8sai.kueue import objects\n")
    (tmp_path / "gaie").mkdir()
    (tmp_path / "gaie" / "run.py").write_text(
        "import pytest\nfrom ..kueue.runs import x\n\ndef f():\n    pytest.skip('no')\n"
    )
    (tmp_path / "das").mkdir()
    (tmp_path / "das" / "ok.py").write_text("from pytest_k8sai.kueue.objects import QUEUE_LABEL\n")
    (tmp_path / "measure").mkdir()
    (tmp_path / "measure" / "data.py").write_text(
        "from pathlib import Path\nP = Path(__file__).with_name('x.yaml')\n"
    )
    (tmp_path / "plugin.py").write_text("import pytest\npytest.skip('fine here')\n")
    assert violations(tmp_path) == [
        "core/bad.py:1: core imports kueue (pytest_k8sai.kueue.objects)",
        "gaie/run.py:2: gaie imports kueue (pytest_k8sai.kueue.runs.x)",
        "gaie/run.py:5: library calls pytest.skip",
        "measure/data.py:2: finds a data file by __file__",
    ]
