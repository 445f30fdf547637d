"""The API client every suite talks through: bounded, patient with a busy API server, and able
to pick up a refreshed token.

A run against a shared cluster lasts hours (a 3-run rosa session takes most of a day) and
must survive what such a cluster does in that time:

- *No request without a bound.* A call that names no ``_request_timeout`` gets (the profile's
  connect timeout, READ_TIMEOUT_S). Streams (``watch=``, ``follow=``) keep their own bound
  (``timeoutSeconds``), set by their callers.
- *Throttling and restarts.* Reads (GET, HEAD) are retried the way client-go retries them, on
  429 and 5xx answers that carry Retry-After (the kubernetes client's ``client_go_retries``).
  Writes are retried on 429 only: API Priority and Fairness rejects them before any handling,
  so a retry cannot apply one twice. A 5xx write may have been applied, so it is not retried.
- *Token expiry.* On 401 the kubeconfig is read again. If it now holds another token (``oc
  login`` or a refresh job rewrote it beside the run), the request is sent once more with it,
  and the client keeps it. ``on_new_token`` is told, so the run masks it in its output too.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config

# Read timeout of a request that names none: no single answer of an API server takes this
# long, and without one a frozen API server (or a dropped connection) hangs the run forever.
READ_TIMEOUT_S = 120.0
WRITE_RETRIES_ON_429 = 5
MAX_RETRY_AFTER_S = 10.0
AUTH_HEADER = "authorization"


class BoundedApiClient(client.ApiClient):
    def __init__(
        self,
        configuration: client.Configuration,
        connect_timeout_s: float,
        kubeconfig: Path | str | None = None,
        context: str | None = None,
    ) -> None:
        configuration.client_go_retries = True  # reads: client-go's Retry-After retries
        super().__init__(configuration=configuration)
        self.default_timeout = (connect_timeout_s, READ_TIMEOUT_S)
        self._kubeconfig = kubeconfig
        self._context = context
        self.on_new_token: Callable[[str], None] | None = None
        self.sleep: Callable[[float], None] = time.sleep
        self.token_refreshes = 0
        self.write_retries = 0

    def call_api(
        self,
        method: str,
        url: str,
        header_params: dict[str, str] | None = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: float | tuple[float, float] | None = None,
    ) -> Any:
        if _request_timeout is None and "watch=" not in url and "follow=" not in url:
            _request_timeout = self.default_timeout

        def send(headers: dict[str, str] | None) -> Any:
            return super(BoundedApiClient, self).call_api(
                method, url, headers, body, post_params, _request_timeout=_request_timeout
            )

        resp = send(header_params)
        if resp.status == 401 and (fresh := self._reauthorize(header_params)) is not None:
            resp.read()  # release the connection
            resp = send(fresh)
            header_params = fresh
        tries = 0
        while resp.status == 429 and method not in ("GET", "HEAD") and tries < WRITE_RETRIES_ON_429:
            tries += 1
            self.write_retries += 1
            wait = _retry_after(resp.getheader("Retry-After"), default=float(2 ** (tries - 1)))
            resp.read()
            self.sleep(wait)
            resp = send(header_params)
        return resp

    def _reauthorize(self, sent: dict[str, str] | None) -> dict[str, str] | None:
        """The request's headers with the kubeconfig's current token, if it changed."""
        if self._kubeconfig is None:
            return None
        fresh = type.__call__(client.Configuration)
        try:
            config.load_kube_config(
                config_file=str(self._kubeconfig), context=self._context, client_configuration=fresh
            )
        except Exception:  # noqa: BLE001 - an unreadable kubeconfig: the 401 stands as it is
            return None
        token = authorization(fresh)
        old = (sent or {}).get(AUTH_HEADER)
        if not token or token == old:
            return None
        self.configuration.api_key = dict(fresh.api_key)
        self.configuration.api_key_prefix = dict(fresh.api_key_prefix)
        # The loader's refresh hook would put the old loader's token back on the next request.
        self.configuration.refresh_api_key_hook = fresh.refresh_api_key_hook
        self.token_refreshes += 1
        if self.on_new_token is not None:
            self.on_new_token(token)
        return {**(sent or {}), AUTH_HEADER: token}


def authorization(cfg: client.Configuration) -> str | None:
    """The Authorization header value a configuration sends (``Bearer ...``), if any. Read
    through auth_settings(): the key it is stored under differs between client versions."""
    for setting in cfg.auth_settings().values():
        if setting.get("in") == "header" and setting.get("key") == AUTH_HEADER:
            return str(setting.get("value") or "") or None
    return None


def _retry_after(value: str | None, default: float) -> float:
    try:
        seconds = float(value) if value is not None else default
    except ValueError:
        seconds = default
    return max(0.0, min(seconds, MAX_RETRY_AFTER_S))


def bounded_client(
    kubeconfig: Path | str, context: str | None, connect_timeout_s: float
) -> BoundedApiClient:
    """A client for ``kubeconfig`` (a fresh Configuration, never the process-wide default)."""
    cfg = type.__call__(client.Configuration)
    config.load_kube_config(config_file=str(kubeconfig), context=context, client_configuration=cfg)
    return BoundedApiClient(cfg, connect_timeout_s, kubeconfig, context)


def with_pool_size(api: client.ApiClient, size: int) -> client.ApiClient:
    """A client like ``api`` (same credentials, timeouts and token refresh) that keeps ``size``
    connections per host. The kubernetes client's default pool (5 x CPUs: 10 on 2 cores) makes
    more concurrent callers than that open a TLS connection per request and discard it ("pool
    is full"), which costs both ends a handshake. Close it when done."""
    cfg = copy.deepcopy(api.configuration)  # Configuration defines its own deep copy
    cfg.connection_pool_maxsize = size
    if not isinstance(api, BoundedApiClient):
        return client.ApiClient(cfg)
    clone = BoundedApiClient(cfg, api.default_timeout[0], api._kubeconfig, api._context)
    clone.on_new_token = api.on_new_token
    return clone
