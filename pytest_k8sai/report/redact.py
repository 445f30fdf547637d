"""Keep credentials out of what a run writes: failure reports (terminal, JUnit XML, Allure),
results.json, summary.md, end-of-run notes and component logs (copied or attached).

The secrets this process knows of (the kubeconfig's tokens and client keys, the API client's
bearer token, the metrics endpoints' tokens) are registered once, in every form they can take
(a PEM key, its base64 lines, the base64 of the whole PEM as in ``client-key-data``), and
:func:`scrub` replaces them, or any long enough piece of them, wherever text from outside the
suites' own code is written (docs/reliability.md lists where). Patterns then catch what was
never registered: PEM private key blocks, ``Bearer`` values and credential fields printed as
YAML, JSON or Python locals.

The registry is per process, not per session: a secret one session knows stays masked in every
later one (nested pytester sessions, ``k8sai calibrate``), which can only hide more, never less.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Generator, Iterable, Mapping
from pathlib import Path
from typing import Any

import pluggy
import pytest
import yaml

MASK = "<redacted>"
# Shorter values are not masked: replacing e.g. "true" everywhere would garble every file,
# and a credential that short is no secret anyway.
MIN_SECRET_LEN = 12
# Fields of a kubeconfig user (and of auth-provider config) that hold credentials.
USER_SECRET_FIELDS = ("token", "password", "client-key-data")
AUTH_PROVIDER_SECRETS = ("id-token", "refresh-token", "access-token", "client-secret")
# Whole lines of a PEM body are 64 characters; its last one is shorter but rarely tiny.
MIN_PEM_LINE = 16
# pytest shortens long reprs to head...tail (e.g. a ``token`` argument in a traceback), and a
# log tail may start mid-line: a run of token characters sharing FRAGMENT characters with a
# known secret is masked whole. Checked every FRAGMENT // 2 characters, so any piece of
# 3/2 FRAGMENT characters or more is found.
FRAGMENT = 16

_known: set[str] = set()
_ordered: list[str] = []  # longest first, so a value never survives as a masked fragment
_windows: set[str] = set()  # every FRAGMENT-long piece of every known secret
# Characters of base64 (both alphabets), hex and JWTs: what a secret, or a piece of it, is made of.
_RUN = re.compile(rf"[A-Za-z0-9+/=_.~-]{{{FRAGMENT},}}")

_PEM_KEY = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
# Credential-shaped values, each matched where its (lower-case) keyword was found, since a
# scan of the whole text with a case-insensitive pattern costs more than writing the file.
# Bearer: 16+ characters (real tokens are longer; "bearer authentication" is prose).
# Fields as YAML (``token: x``), JSON (``"token": "x"``) or Python locals as pytest -l prints
# them (``metrics_token = 'x'``): values of MIN_SECRET_LEN characters or more; after "=" only
# a quoted one, since ``token=cluster.endpoints.get(...)`` in a traceback's source is code.
_VALUE_END = r"(?![A-Za-z0-9\-._~+/=(])"
_BEARER = re.compile(r"(?i)bearer\s+([A-Za-z0-9\-._~+/]{16,}=*)" + _VALUE_END)
_FIELD = re.compile(
    r"""(?i)(?:token|password|secret|client-key-data)["']?\s*(?::\s*["']?|=\s*["'])"""
    r"([A-Za-z0-9\-._~+/]{12,}=*)" + _VALUE_END
)
_SHAPES = {"bearer": _BEARER, "token": _FIELD, "password": _FIELD, "secret": _FIELD,
           "client-key-data": _FIELD}  # fmt: skip


def remember(value: str | None) -> None:
    """Mask ``value`` (and, if it is a PEM key, each of its forms) in all later output."""
    if not value:
        return
    value = value.strip()
    forms = {value}
    if "-----BEGIN" in value:
        forms |= _pem_forms(value)
    new = {f for f in forms if len(f) >= MIN_SECRET_LEN} - _known
    if not new:
        return
    _known.update(new)
    _ordered[:] = sorted(_known, key=len, reverse=True)
    for form in new:
        for piece in _RUN.findall(form):
            _windows.update(piece[i : i + FRAGMENT] for i in range(len(piece) - FRAGMENT + 1))


def _pem_forms(pem: str) -> set[str]:
    """A PEM as it may be written: each body line, the body unwrapped, base64 of the PEM."""
    lines = [ln.strip() for ln in pem.splitlines() if ln.strip() and "-----" not in ln]
    forms = {ln for ln in lines if len(ln) >= MIN_PEM_LINE}
    forms.add("".join(lines))
    text = pem.strip()
    for variant in (text, text + "\n"):
        forms.add(base64.b64encode(variant.encode()).decode())
    return forms


def remember_base64(data: str | None) -> None:
    """A ``*-data`` field of a kubeconfig: the base64 as written and what it decodes to."""
    if not data:
        return
    remember(data)
    try:
        decoded = base64.b64decode(data, validate=False).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return
    remember(decoded)


def remember_kubeconfig(paths: str | os.PathLike[str]) -> None:
    """Every credential of every user in a kubeconfig (``a:b`` lists as kubectl merges them):
    tokens, passwords, client keys inline or in files, token files, auth-provider tokens."""
    for path in str(paths).split(os.pathsep):
        if not path:
            continue
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            continue
        if not isinstance(data, dict):
            continue
        for entry in data.get("users") or []:
            user = entry.get("user") if isinstance(entry, dict) else None
            if isinstance(user, dict):
                _remember_user(user, Path(path).parent)


def _remember_user(user: Mapping[str, Any], base: Path) -> None:
    for field in USER_SECRET_FIELDS:
        value = user.get(field)
        if not isinstance(value, str):
            continue
        if field.endswith("-data"):
            remember_base64(value)
        else:
            remember(value)
    for field in ("client-key", "tokenFile"):
        if isinstance(name := user.get(field), str):
            remember(_read(base / os.path.expanduser(name)))
    provider = user.get("auth-provider")
    config = provider.get("config") if isinstance(provider, dict) else None
    if isinstance(config, dict):
        for field in AUTH_PROVIDER_SECRETS:
            if isinstance(config.get(field), str):
                remember(config[field])


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def remember_authorization(header: str | None) -> None:
    """An ``Authorization`` header value as a client sends it (``Bearer <token>``): the token
    an exec plugin or a token file produced, which the kubeconfig itself does not hold."""
    if header:
        remember(header.split(None, 1)[-1])


def remember_cluster(
    kubeconfig: str | os.PathLike[str], endpoints: Mapping[str, str], authorization: str | None
) -> None:
    """What a run holds of the cluster it attached to: the kubeconfig's credentials, the
    endpoints' tokens (e.g. Kueue's metrics token) and the header its API client sends."""
    remember_kubeconfig(kubeconfig)
    for name, value in endpoints.items():
        if name.endswith("token"):
            remember(value)
    remember_authorization(authorization)


def remember_handle(handle: Any) -> None:
    """:func:`remember_cluster` for a ClusterHandle, with the Authorization header of its API
    client (an exec plugin's or token file's token, which the kubeconfig does not hold)."""
    try:
        api = handle.api_client
        # Through auth_settings(): the api_key entry is "BearerToken" in recent clients.
        header = next(
            (
                str(s.get("value"))
                for s in api.configuration.auth_settings().values()
                if s.get("in") == "header" and s.get("key") == "authorization"
            ),
            None,
        )
    except Exception:  # noqa: BLE001 - a client that cannot be made fails the tests, not this
        api, header = None, None
    if hasattr(api, "on_new_token"):
        api.on_new_token = remember_authorization  # a token re-read on 401 is masked too
    remember_cluster(handle.kubeconfig, handle.endpoints, header)


def scrub(text: str) -> str:
    """``text`` with every known secret and every credential-shaped value replaced by MASK."""
    if not text:
        return text
    for value in _ordered:
        if value in text:
            text = text.replace(value, MASK)
    if _windows:
        # findall and a filter, not sub with a callback: results.json holds long runs of
        # sample digits, and a Python call for each would double the cost of every write.
        runs = {r for r in _RUN.findall(text) if not r.replace(".", "").isdigit()}
        for run in sorted(filter(_holds_fragment, runs), key=len, reverse=True):
            text = text.replace(run, MASK)
    if "PRIVATE KEY" in text:
        text = _PEM_KEY.sub(f"-----BEGIN \\1PRIVATE KEY----- {MASK}", text)
    return _mask_shapes(text)


def _mask_shapes(text: str) -> str:
    low = text.lower()
    spans: list[tuple[int, int]] = []
    for keyword, pattern in _SHAPES.items():
        at = low.find(keyword)
        while at >= 0:
            if m := pattern.match(text, at):
                spans.append(m.span(1))
            at = low.find(keyword, at + 1)
    out, done = [], 0
    for start, end in sorted(spans):
        if start >= done:  # a value found through two keywords is masked once
            out += [text[done:start], MASK]
            done = end
    return "".join(out) + text[done:] if out else text


def _holds_fragment(run: str) -> bool:
    starts = [*range(0, len(run) - FRAGMENT + 1, FRAGMENT // 2), len(run) - FRAGMENT]
    return any(run[i : i + FRAGMENT] in _windows for i in starts)


def scrub_data(value: Any) -> Any:
    """Scrub every string inside a JSON-like value (dicts, lists, tuples)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {scrub_data(k): scrub_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub_data(v) for v in value)
    return value


def scrub_files(files: Iterable[Path]) -> None:
    """Rewrite copied text files (component logs) in place with secrets masked; a file that
    did not change is left untouched."""
    for path in files:
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        text = raw.decode("utf-8", errors="surrogateescape")
        clean = scrub(text)
        if clean != text:
            path.write_bytes(clean.encode("utf-8", errors="surrogateescape"))


def _scrub_in_place(obj: Any, depth: int = 0) -> Any:
    """Scrub the strings of pytest's failure representation (dataclasses of lists, tuples
    and strings) in place, keeping its structure, so the terminal still colours it and the
    short summary still shows the crash message."""
    if isinstance(obj, str):
        return scrub(obj)
    if depth > 12 or obj is None or isinstance(obj, int | float | bool):
        return obj
    if isinstance(obj, list):
        obj[:] = [_scrub_in_place(v, depth + 1) for v in obj]
        return obj
    if isinstance(obj, tuple):
        return tuple(_scrub_in_place(v, depth + 1) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            clean = _scrub_in_place(value, depth + 1)
            if clean is not value:
                setattr(obj, f.name, clean)
    return obj


def scrub_report(report: pytest.TestReport, call: pytest.CallInfo[None] | None = None) -> None:
    """Mask secrets in a test's report before anyone renders it: the failure (tracebacks,
    -l locals, the assertion's explanation), captured output and the exception message
    Allure reads from ``call``."""
    longrepr = report.longrepr
    if isinstance(longrepr, str | tuple):
        report.longrepr = _scrub_in_place(longrepr)
    elif longrepr is not None:
        try:
            _scrub_in_place(longrepr)
        except (AttributeError, TypeError):  # an unknown repr: keep only its masked text
            report.longrepr = scrub(str(longrepr))
    report.sections = [(title, scrub(text)) for title, text in report.sections]
    exc = call.excinfo.value if call is not None and call.excinfo is not None else None
    if exc is not None:
        try:
            if (args := tuple(scrub_data(a) for a in exc.args)) != exc.args:
                exc.args = args
            if isinstance(msg := getattr(exc, "msg", None), str) and scrub(msg) != msg:
                exc.msg = scrub(msg)  # pytest.fail's message
        except (AttributeError, TypeError):  # an exception that will not be changed
            pass


class ReportScrubber:
    """pytest plugin: scrubs each test report as soon as it is made. ``trylast`` makes this
    the innermost wrapper, so it runs before allure-pytest's wrapper reads the report; the
    terminal, JUnit XML and results.json read it later still."""

    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
        outcome = yield
        scrub_report(outcome.get_result(), call)


def known_count() -> int:
    """How many secret forms are registered (for tests and diagnostics; never the values)."""
    return len(_known)


def forget_all() -> None:
    """Drop every registered secret (unit tests only)."""
    _known.clear()
    _ordered.clear()
    _windows.clear()
