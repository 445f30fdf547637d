"""Read a YAML file a user (or the package) provides into a pydantic model, with errors that
name the file and the field: the one loader every data file goes through."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from pytest_k8sai.core.errors import K8saiError

M = TypeVar("M", bound=BaseModel)


def printable(text: str) -> str:
    """``text`` with control characters (a newline in a quoted YAML key) written as escapes, so
    an error that names it stays one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def exists(path: Path) -> bool:
    """``path.exists()``, and False where the system cannot look the name up (too long)."""
    try:
        return path.exists()
    except OSError:
        return False


def read_yaml(path: Path, what: str, error: type[K8saiError] = K8saiError) -> object:
    """Parse ``path``; ``what`` names the file in errors ("Profile", "Whisper trace", ...)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise error(f"Cannot read {what} file {path}: {exc.strerror}.") from None
    except UnicodeDecodeError as exc:
        raise error(
            f"{what} {path} is not {exc.encoding} text (byte {exc.start}: {exc.reason}); it "
            "may not be a YAML file."
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        # One line: a ReaderError (a control character) has no problem and a two-line str.
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise error(f"{what} {path} is not valid YAML{where}: {problem}.") from None
    except RecursionError:
        raise error(f"{what} {path} nests lists or mappings too deeply to read.") from None


def invalid_fields(err: ValidationError) -> str:
    """ "field 'a.b': message; ..." for each error pydantic found."""
    return "; ".join(
        f"field '{printable('.'.join(str(x) for x in e['loc'])) or '(top level)'}': {e['msg']}"
        for e in err.errors()
    )


def validate(
    data: object,
    model: type[M],
    source: str,
    error: type[K8saiError] = K8saiError,
    *,
    expects: str = "",
    describe: Callable[[ValidationError, object], str] = lambda err, data: invalid_fields(err),
) -> M:
    """``model`` from already-parsed data; ``source`` ("Profile my.yaml") starts each error.

    ``expects`` ("with at least 'name' and 'provider'") is said when the top level is not a
    mapping; ``describe`` words the field errors (default: :func:`invalid_fields`)."""
    if not isinstance(data, dict):
        hint = f" {expects}" if expects else ""
        raise error(f"{source} must be a YAML mapping{hint}, but it holds {type(data).__name__}.")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise error(f"{source} is invalid: {describe(err, data)}.") from None


def load_model(
    path: Path,
    model: type[M],
    what: str,
    error: type[K8saiError] = K8saiError,
    *,
    expects: str = "",
    describe: Callable[[ValidationError, object], str] = lambda err, data: invalid_fields(err),
) -> M:
    """Read ``path`` and validate it as ``model``; ``what`` names the kind of file."""
    data = read_yaml(path, what, error)
    return validate(data, model, f"{what} {path}", error, expects=expects, describe=describe)
