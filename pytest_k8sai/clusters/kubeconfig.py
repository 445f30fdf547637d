"""Which kubeconfig file and context to use, with the same precedence as kubectl plus the profile.

Order: the --kubeconfig/--context flag, then the profile's ``reach`` fields, then $KUBECONFIG,
then ~/.kube/config (for the context: the file's current-context). Every error says which
source the value came from, so the user knows what to change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from pytest_k8sai.core.errors import ClusterError


@dataclass(frozen=True)
class Resolved:
    value: str
    origin: str  # e.g. "--kubeconfig", "profile reach.kubeconfig", "$KUBECONFIG"


def _expand(path: str) -> str:
    return os.path.expandvars(os.path.expanduser(path))


def resolve_kubeconfig(flag: str | None, profile_value: str | None, profile_name: str) -> Resolved:
    """Return the kubeconfig path (``a:b`` when $KUBECONFIG lists several, as kubectl merges)."""
    if flag:
        found = Resolved(_expand(flag), "--kubeconfig")
    elif profile_value:
        found = Resolved(_expand(profile_value), f"reach.kubeconfig of profile '{profile_name}'")
    elif os.environ.get("KUBECONFIG"):
        # kubectl skips missing entries of a $KUBECONFIG list; so do we, but one must exist.
        entries = [_expand(p) for p in os.environ["KUBECONFIG"].split(os.pathsep) if p]
        existing = [p for p in entries if Path(p).is_file()]
        if not existing:
            raise ClusterError(
                f"No kubeconfig found: $KUBECONFIG names {', '.join(entries)} but none of them "
                "exists. Pass --kubeconfig=PATH or fix $KUBECONFIG."
            )
        return Resolved(os.pathsep.join(existing), "$KUBECONFIG")
    else:
        found = Resolved(str(Path("~/.kube/config").expanduser()), "the default ~/.kube/config")
    if not Path(found.value).is_file():
        raise ClusterError(
            f"Kubeconfig {found.value} (from {found.origin}) does not exist or is not a file. "
            f"Pass --kubeconfig=PATH, set reach.kubeconfig in profile '{profile_name}', or "
            "export KUBECONFIG."
        )
    return found


def _read_contexts(kubeconfig: Resolved) -> tuple[list[str], str | None]:
    """Context names and the current-context, merged over a ``a:b`` list as kubectl does."""
    names: list[str] = []
    current: str | None = None
    for path in kubeconfig.value.split(os.pathsep):
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ClusterError(
                f"Cannot read kubeconfig {path} (from {kubeconfig.origin}): {_one_line(exc)}."
            ) from None
        if data is None:
            continue
        contexts = data.get("contexts") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(contexts, list | None):
            raise ClusterError(
                f"Cannot read kubeconfig {path} (from {kubeconfig.origin}): it is not a "
                "kubeconfig (expected a mapping with a 'contexts' list)."
            )
        names += [c["name"] for c in contexts or [] if isinstance(c, dict) and c.get("name")]
        # The first file that sets current-context wins, as with kubectl.
        current = current or data.get("current-context") or None
    return names, current


def resolve_context(
    kubeconfig: Resolved, flag: str | None, profile_value: str | None, profile_name: str
) -> Resolved:
    """Return a context that exists in ``kubeconfig``; errors list the contexts it does have."""
    names, current = _read_contexts(kubeconfig)
    known = ", ".join(names) or "none"
    if flag:
        wanted = Resolved(flag, "--context")
    elif profile_value:
        wanted = Resolved(profile_value, f"reach.context of profile '{profile_name}'")
    elif current:
        wanted = Resolved(current, "current-context")
    else:
        raise ClusterError(
            f"Kubeconfig {kubeconfig.value} (from {kubeconfig.origin}) has no current-context; "
            f"pass --context=NAME (known contexts: {known})."
        )
    if wanted.value not in names:
        raise ClusterError(
            f"Context '{wanted.value}' (from {wanted.origin}) is not in kubeconfig "
            f"{kubeconfig.value}; known contexts: {known}."
        )
    return wanted


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        # Never str(exc): it quotes the offending line, which may hold a token or a key.
        mark = exc.problem_mark
        return f"{exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.rstrip(".")
