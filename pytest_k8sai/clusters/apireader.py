"""Plain API calls for preflight and the sweep: raw JSON (the client's strict models reject
servers that omit optional fields), a timeout on every call, failures kept as readable text."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_k8sai.clusters.existing import why_failed

JSON = dict[str, Any]


class ReadError(Exception):
    """One call that did not answer with JSON; ``status`` is the HTTP status when there was one."""

    def __init__(self, path: str, why: str, status: int | None = None) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.why = why
        self.status = status

    @property
    def forbidden(self) -> bool:
        return self.status in (401, 403)

    @property
    def absent(self) -> bool:
        return self.status == 404


class Reader:
    """GET, POST and DELETE of JSON against one API server, each bounded by ``timeout_s``."""

    def __init__(self, api: client.ApiClient, timeout_s: float = 10.0) -> None:
        self.api = api
        self.timeout_s = timeout_s
        self.calls = 0

    def _call(
        self,
        method: str,
        path: str,
        body: JSON | None = None,
        query: list[tuple[str, str]] | None = None,
    ) -> JSON:
        self.calls += 1
        try:
            request = self.api.param_serialize(
                method=method,
                resource_path=path,
                query_params=query,
                header_params={"Accept": "application/json", "Content-Type": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
            )
            resp = self.api.call_api(*request, _request_timeout=self.timeout_s)
            data = resp.read()
        except ApiException as exc:
            raise ReadError(path, why_failed(exc, self.timeout_s), exc.status) from None
        except Exception as exc:  # noqa: BLE001 - every failure becomes one readable line
            raise ReadError(path, why_failed(exc, self.timeout_s)) from None
        if not 200 <= resp.status < 300:
            hint = {401: " (credentials rejected)", 403: " (forbidden)"}.get(resp.status, "")
            why = f"the server answered HTTP {resp.status} {resp.reason or ''}".rstrip() + hint
            raise ReadError(path, why, resp.status)
        try:
            return dict(json.loads(data or b"{}"))
        except ValueError:
            raise ReadError(path, "the answer is not JSON") from None

    def get(self, path: str, query: list[tuple[str, str]] | None = None) -> JSON:
        return self._call("GET", path, query=query)

    def delete(self, path: str) -> JSON:
        """Delete one object; its dependents are removed in the background."""
        return self._call("DELETE", path, {"propagationPolicy": "Background"})

    def post(self, path: str, body: JSON) -> JSON:
        return self._call("POST", path, body)
