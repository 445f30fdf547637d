"""Reading ``--baseline``: one results file, or a directory holding results files (searched
recursively, e.g. an archive of nightly results directories)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from pytest_k8sai.core.yamlfiles import exists, invalid_fields
from pytest_k8sai.report.results import RESULTS_FILE, SCHEMA, SCHEMA_VERSION, Results


class BaselineError(Exception):
    """One baseline file (or path) that cannot be used; the message names it."""


@dataclass
class Baseline:
    """The usable baseline runs and one sentence per file that was not usable."""

    runs: list[Results] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def read_results(path: Path) -> Results:
    """Load one results file, checking its schema name and version before its fields."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BaselineError(f"Baseline {path} cannot be read: {exc.strerror or exc}.") from None
    except UnicodeDecodeError:
        raise BaselineError(f"Baseline {path} is not a text (UTF-8 JSON) file.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(
            f"Baseline {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}); it may be truncated or not a pytest-k8sai results file."
        ) from None
    except RecursionError:
        raise BaselineError(
            f"Baseline {path} nests arrays or objects too deeply to be a pytest-k8sai results file."
        ) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise BaselineError(
            f"Baseline {path} is not a pytest-k8sai results file (its 'schema' is {got!r}, "
            f"expected {SCHEMA!r})."
        )
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BaselineError(
            f"Baseline {path} has results schema version {version!r}; this pytest-k8sai reads "
            f"version {SCHEMA_VERSION}. Compare against a baseline written by a matching "
            "version, or re-run the baseline."
        )
    try:
        return Results.model_validate(data)
    except ValidationError as err:
        raise BaselineError(
            f"Baseline {path} does not match results schema version {SCHEMA_VERSION}: "
            f"{invalid_fields(err)}."
        ) from None


def find_results(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(path.rglob(RESULTS_FILE))
    return [path]


def load_baseline(path: Path, flag: str = "--baseline") -> Baseline:
    """Every results file at ``path``; unusable ones become errors, not exceptions, so the run
    goes on and still writes its own results."""
    out = Baseline()
    if not exists(path):
        out.errors.append(f"{flag}={path}: no such file or directory.")
        return out
    files = find_results(path)
    if not files:
        out.errors.append(f"{flag}={path}: the directory holds no {RESULTS_FILE}.")
    for f in files:
        try:
            out.runs.append(read_results(f))
            out.files.append(f)
        except BaselineError as exc:
            out.errors.append(str(exc))
    return out
