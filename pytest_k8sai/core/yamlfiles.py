"""Read a YAML file a user (or the repository) provides, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from pytest_k8sai.core.errors import K8saiError


def read_yaml(path: Path, what: str, error: type[K8saiError] = K8saiError) -> object:
    """Parse ``path``; ``what`` names the file in errors ("Profile", "Whisper trace", ...)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise error(f"Cannot read {what} file {path}: {exc.strerror}.") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{what} {path} is not valid YAML{where}: {problem}.") from None


def invalid_fields(err: ValidationError) -> str:
    """ "field 'a.b': message; ..." for each error pydantic found."""
    return "; ".join(
        f"field '{'.'.join(str(x) for x in e['loc']) or '(top level)'}': {e['msg']}"
        for e in err.errors()
    )
