"""The package's architecture rules (docs/architecture.md), checked on its source with ``ast``.

1. Layers: a module imports only its own group and what ``ALLOWED`` lists for it
   (core < clusters, measure, workloads, report < parts < top).
2. Parts (kueue, das, gaie, scale) do not import each other, except ``PART_EXCEPTIONS``.
3. Library code (everything but plugin.py and fixtures.py) never makes a pytest outcome
   (pytest.skip/fail/xfail/exit): it raises pytest_k8sai.core.errors exceptions instead.
4. Only core/data.py locates data files (``__file__``, ``importlib.resources``), except
   ``FILE_ALLOWED``.

Every import counts: ``import x.y``, ``from x.y import z``, relative imports, imports inside
functions and under ``if TYPE_CHECKING:``, and ``importlib.import_module("...")`` of a literal.
The package is found through ``pytest_k8sai.__file__``, so this also checks an installed copy.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest_k8sai

PACKAGE = "pytest_k8sai"

# --- the layers, as data -------------------------------------------------------------------
CORE = "core"
GENERIC = ("core", "clusters", "measure", "workloads", "report")  # know no platform part
PARTS = ("kueue", "das", "gaie", "scale")  # one folder per platform part (scale: Kueue at size)
TOP = "top"
# Modules at the package root and the group they belong to. A root module not listed here is
# reported: a new one has to be placed in a layer first.
ROOT_MODULES = {
    "__init__": CORE,  # imported by every module, so it may import nothing of the package
    "plugin": TOP,  # pytest hooks only
    "fixtures": TOP,  # pytest fixtures
    "cli": TOP,  # the `k8sai` command
    "runstate": TOP,  # the session's RunReport + ClusterHandle: needs report and clusters
    "interrupts": TOP,  # SIGINT/SIGTERM during the session: pytest hooks, reads RunState
    "calibrate": TOP,  # `k8sai calibrate`: runs pytest trials, proposes slo thresholds
    "mutantrun": TOP,  # `k8sai mutants run`: one pytest child per mutant, the table
    "controlruns": TOP,  # `k8sai mutants control`: the unmutated PR tier N times, false alarms
}

# What each group may import from the package besides itself. Read a row as "X may import".
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "clusters": frozenset({"core"}),
    "measure": frozenset({"core"}),  # generic watchers: never workloads, clusters or report
    "workloads": frozenset({"core", "clusters", "measure"}),
    "report": frozenset({"core", "measure"}),  # not clusters: it is given plain values
    "kueue": frozenset(GENERIC),
    "das": frozenset(GENERIC),
    "gaie": frozenset(GENERIC),
    "scale": frozenset(GENERIC),
    "top": frozenset({*GENERIC, *PARTS}),
}
# The only part -> part imports, each with its reason.
PART_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("das", "kueue"): (
        "the GPU slicing suite's Kueue + MIG arm creates Kueue queues with kueue.objects"
    ),
    ("scale", "kueue"): (
        "the scale tier builds its ResourceFlavor, ClusterQueues, LocalQueues and "
        "WorkloadPriorityClasses with kueue.objects, so one place spells Kueue's objects"
    ),
}

# --- pytest outcomes -----------------------------------------------------------------------
OUTCOME_MODULES = {"plugin.py", "fixtures.py"}  # package-root files that may make outcomes
OUTCOMES = frozenset({"skip", "fail", "xfail", "exit"})

# --- packaged data -------------------------------------------------------------------------
DATA_MODULE = "core/data.py"
DATA_SUFFIXES = (".yaml", ".yml", ".json", ".jsonl")
RESOURCE_MODULES = ("importlib.resources", "importlib_resources", "pkg_resources")
# Modules that may use __file__ for something that is not a data file, and why.
FILE_ALLOWED: dict[str, str] = {
    "gaie/stack.py": (
        "Path(__file__).resolve().parents[2] puts this copy of the package on the local "
        "gateway child process's PYTHONPATH; no data file is read through it"
    ),
}


def _group_of_file(rel: Path) -> str | None:
    if len(rel.parts) == 1:
        return ROOT_MODULES.get(rel.stem)
    return rel.parts[0] if rel.parts[0] in (*GENERIC, *PARTS) else None


def _group_of_name(dotted: str) -> str | None:
    """The group a pytest_k8sai.* name belongs to; None for the bare package itself."""
    parts = dotted.split(".")
    if parts[0] != PACKAGE or len(parts) < 2:
        return None
    head = parts[1]
    if head in (*GENERIC, *PARTS):
        return head
    if head in ROOT_MODULES:
        return ROOT_MODULES[head] if head != "__init__" else None
    # `from pytest_k8sai import __version__` and the like: names of the root __init__.
    return None if head.startswith("__") else f"unplaced module {PACKAGE}.{head}"


def _module_name(rel: Path) -> tuple[str, bool]:
    parts = [PACKAGE, *rel.with_suffix("").parts]
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str, list[str]]]:
    """(line, source text, absolute dotted names) of every import, relative ones resolved."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.append((node.lineno, ast.unparse(node), [a.name for a in node.names]))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            # `from pkg import sub` may name a submodule: count base.sub for each alias.
            found.append((node.lineno, ast.unparse(node), [f"{base}.{a.name}" for a in node.names]))
        elif (
            isinstance(node, ast.Call)
            and _dotted(node.func) in {"import_module", "importlib.import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, ast.unparse(node), [node.args[0].value]))
    return found


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def _layer_violations(where: str, group: str, tree: ast.AST, rel: Path) -> list[str]:
    module, is_package = _module_name(rel)
    out = []
    for line, text, names in _imports(tree, module, is_package):
        targets = {g for g in map(_group_of_name, names) if g is not None and g != group}
        for target in sorted(targets):
            if target in ALLOWED.get(group, ()):
                continue
            if (group, target) in PART_EXCEPTIONS:
                continue
            rule = "part imports another part" if group in PARTS and target in PARTS else "layer"
            out.append(f"{where}:{line}: {rule}: {group} may not import {target}: {text}")
    return out


def _outcome_violations(where: str, tree: ast.AST) -> list[str]:
    pytest_names = {"pytest"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            pytest_names |= {a.asname for a in node.names if a.name == "pytest" and a.asname}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            # pytest.skip(...) and raise pytest.skip.Exception(...)
            if isinstance(func, ast.Attribute) and func.attr == "Exception":
                func = func.value
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id in pytest_names
                and func.attr in OUTCOMES
            ):
                out.append(
                    f"{where}:{node.lineno}: pytest outcome in library code: {ast.unparse(node)}"
                )
        elif isinstance(node, ast.ImportFrom) and node.module in {"pytest", "_pytest.outcomes"}:
            bad = sorted(a.name for a in node.names if a.name in OUTCOMES)
            if bad:
                out.append(
                    f"{where}:{node.lineno}: pytest outcome in library code: {ast.unparse(node)}"
                )
    return out


def _data_violations(where: str, tree: ast.AST, text: str) -> list[str]:
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or "", *(f"{node.module}.{a.name}" for a in node.names)]
        if any(n == m or n.startswith(m + ".") for n in names for m in RESOURCE_MODULES):
            out.append(
                f"{where}:{node.lineno}: locates package data (only {DATA_MODULE} may): "
                f"{ast.unparse(node)}"
            )
    for lineno, src in enumerate(text.splitlines(), start=1):
        if "resources.files(" in src:
            out.append(
                f"{where}:{lineno}: locates package data (only {DATA_MODULE} may): {src.strip()}"
            )
    if where not in FILE_ALLOWED:
        # Any __file__ outside data.py is taken as finding files next to the module; name the
        # data-file suffixes the module mentions to make the message concrete.
        suffixes = sorted({s for s in DATA_SUFFIXES if s in text})
        also = f" (module mentions {', '.join(suffixes)})" if suffixes else ""
        lines = sorted(
            {n.lineno for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "__file__"}
        )
        src_lines = text.splitlines()
        for lineno in lines:
            out.append(
                f"{where}:{lineno}: uses __file__ (only {DATA_MODULE} locates data "
                f"files){also}: {src_lines[lineno - 1].strip()}"
            )
    return out


def violations(package_dir: Path) -> list[str]:
    """Every broken rule under ``package_dir``, as ``file:line: rule: import or call``."""
    found: list[str] = []
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir)
        if "__pycache__" in rel.parts:
            continue
        where = rel.as_posix()
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
        group = _group_of_file(rel)
        if group is None:
            found.append(
                f"{where}:1: layer: module is in no layer (add it to ROOT_MODULES "
                f"or move it into a layer folder)"
            )
            continue
        found += _layer_violations(where, group, tree, rel)
        if not (len(rel.parts) == 1 and rel.name in OUTCOME_MODULES):
            found += _outcome_violations(where, tree)
        if where != DATA_MODULE:
            found += _data_violations(where, tree, text)
    return sorted(found, key=_file_and_line)


def _file_and_line(violation: str) -> tuple[str, int]:
    where, line, _ = violation.split(":", 2)
    return where, int(line)


def test_the_package_keeps_its_architecture_rules():
    package = Path(pytest_k8sai.__file__).resolve().parent
    found = violations(package)
    assert not found, f"{len(found)} architecture violation(s) under {package}:\n" + "\n".join(
        found
    )


def test_the_rule_tables_are_consistent():
    groups = {*GENERIC, *PARTS, TOP}
    assert set(ALLOWED) == groups
    assert all(allowed <= groups for allowed in ALLOWED.values())
    assert "workloads" not in ALLOWED["measure"]
    assert all(not (ALLOWED[g] & {*PARTS, TOP}) for g in GENERIC)
    assert all(a in PARTS and b in PARTS and a != b for a, b in PART_EXCEPTIONS)


def _plant(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_reports_exactly_the_planted_violations(tmp_path):
    _plant(
        tmp_path,
        {
            "__init__.py": "__version__ = '0'\n",
            # violations
            "core/__init__.py": "",
            "core/bad.py": "from pytest_k8sai.kueue import objects\n",
            "core/later.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from ..report.results import Results\n"
                "def f():\n"
                "    import pytest_k8sai.clusters.base\n"
            ),
            "measure/watch.py": (
                "from pytest_k8sai.workloads import jobs\nfrom pytest_k8sai import fixtures\n"
            ),
            "report/session.py": "from pytest_k8sai.clusters.base import ClusterHandle\n",
            "gaie/run.py": (
                "import pytest\n"
                "from ..kueue.runs import run\n"
                "def f():\n"
                "    pytest.skip('no cluster')\n"
            ),
            "kueue/check.py": (
                "import pytest as pt\n"
                "from pytest import fail\n"
                "import importlib\n"
                "m = importlib.import_module('pytest_k8sai.gaie.pool')\n"
                "def f():\n"
                "    raise pt.xfail.Exception('x')\n"
            ),
            "cli.py": "import pytest\npytest.exit('bye')\n",
            "workloads/trace.py": (
                "from pathlib import Path\nTRACE = Path(__file__).with_name('trace.yaml')\n"
            ),
            "das/data.py": (
                "from importlib import resources\n"
                "P = resources.files('pytest_k8sai') / 'das' / 'x.json'\n"
            ),
            "stray.py": "",
            # allowed: none of these may be reported
            "core/data.py": (
                "from importlib import resources\n"
                "def data_file(*p):\n"
                "    return resources.files('pytest_k8sai').joinpath(*p)\n"
            ),
            "core/errors.py": "from .data import data_file\nfrom . import data\n",
            "clusters/local/provider.py": "from ...core.errors import NotApplicable\n",
            "workloads/jobs.py": (
                "from pytest_k8sai.clusters.objects import create\n"
                "from pytest_k8sai.measure import stats\n"
            ),
            "report/results.py": "from pytest_k8sai.measure.stats import summary\n",
            "das/runs.py": "from pytest_k8sai.kueue.objects import create_gpu_queue\n",
            "gaie/stack.py": (
                "from pathlib import Path\nHERE = Path(__file__).resolve().parents[2]\n"
            ),
            "gaie/pool.py": "import pytest\nfrom pytest_k8sai import __version__\n",
            "plugin.py": (
                "import pytest\n"
                "from pytest_k8sai.gaie import pool\n"
                "from pytest_k8sai.das.runs import x\n"
                "pytest.skip('the plugin may')\n"
            ),
            "fixtures.py": (
                "import pytest\nfrom pytest import fail\npytest.exit('the fixtures may')\n"
            ),
            "runstate.py": ("from .report.session import RunReport\nfrom .clusters import base\n"),
        },
    )
    assert violations(tmp_path) == [
        "cli.py:2: pytest outcome in library code: pytest.exit('bye')",
        "core/bad.py:1: layer: core may not import kueue: from pytest_k8sai.kueue import objects",
        "core/later.py:3: layer: core may not import report: from ..report.results import Results",
        "core/later.py:5: layer: core may not import clusters: import pytest_k8sai.clusters.base",
        "das/data.py:1: locates package data (only core/data.py may): "
        "from importlib import resources",
        "das/data.py:2: locates package data (only core/data.py may): "
        "P = resources.files('pytest_k8sai') / 'das' / 'x.json'",
        "gaie/run.py:2: part imports another part: gaie may not import kueue: "
        "from ..kueue.runs import run",
        "gaie/run.py:4: pytest outcome in library code: pytest.skip('no cluster')",
        "kueue/check.py:2: pytest outcome in library code: from pytest import fail",
        "kueue/check.py:4: part imports another part: kueue may not import gaie: "
        "importlib.import_module('pytest_k8sai.gaie.pool')",
        "kueue/check.py:6: pytest outcome in library code: pt.xfail.Exception('x')",
        "measure/watch.py:1: layer: measure may not import workloads: "
        "from pytest_k8sai.workloads import jobs",
        "measure/watch.py:2: layer: measure may not import top: from pytest_k8sai import fixtures",
        "report/session.py:1: layer: report may not import clusters: "
        "from pytest_k8sai.clusters.base import ClusterHandle",
        "stray.py:1: layer: module is in no layer (add it to ROOT_MODULES "
        "or move it into a layer folder)",
        "workloads/trace.py:2: uses __file__ (only core/data.py locates data files) "
        "(module mentions .yaml): TRACE = Path(__file__).with_name('trace.yaml')",
    ]
