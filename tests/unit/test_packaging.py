"""The wheel ships every package folder and every data file the code reads by default."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def _folders() -> set[str]:
    """Python package names of the folders with an __init__.py (suites/ -> k8sai_suites)."""
    names = set()
    for top, dist in (("pytest_k8sai", "pytest_k8sai"), ("suites", "k8sai_suites")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            names.add(".".join([dist, *rel.parts]))
    return names


def test_every_package_folder_is_listed():
    assert set(SETUPTOOLS["packages"]) == _folders()


def test_every_data_file_is_package_data():
    patterns = SETUPTOOLS["package-data"]["pytest_k8sai"]
    pkg = ROOT / "pytest_k8sai"
    data = [
        p.relative_to(pkg).as_posix()
        for p in pkg.rglob("*")
        if p.suffix in (".yaml", ".yml", ".json", ".jsonl") and "__pycache__" not in p.parts
    ]
    assert data, "no data files found"
    unshipped = [d for d in data if not any(fnmatch.fnmatch(d, pat) for pat in patterns)]
    assert not unshipped, f"data files not in [tool.setuptools.package-data]: {unshipped}"
