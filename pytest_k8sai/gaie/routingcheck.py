"""Which replica served each request: read from the replicas' own response header, so a check
that the EPP routed a request does not trust the gateway's word for it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pytest_k8sai.gaie.gateway import ENDPOINT_HEADER
from pytest_k8sai.gaie.probe import StreamClient

POD_HEADER = "x-inference-pod"  # llm-d-inference-sim names its Pod (env POD_NAME)


@dataclass
class RoutingSample:
    """Requests sent through a gateway and where they landed."""

    pods: Counter[str] = field(default_factory=Counter)
    # The gateway's endpoint header, per serving Pod (must be that Pod's ip:port).
    endpoints: dict[str, set[str]] = field(default_factory=dict)
    # Pods that served each repeat of one long prompt (prefix affinity).
    repeat_pods: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return sum(self.pods.values())


def sample_routing(
    gateway_url: str, model: str, distinct: int, repeated_prompt: str, repeats: int
) -> RoutingSample:
    """``distinct`` short different prompts, then ``repeats`` sends of one long prompt."""
    out = RoutingSample()
    client = StreamClient(gateway_url)
    try:
        for i in range(distinct):
            _, headers = client.first_event_s(model, f"Routing check {i}: say hello.", 1)
            pod = headers.get(POD_HEADER, "(no x-inference-pod header)")
            out.pods[pod] += 1
            out.endpoints.setdefault(pod, set()).add(headers.get(ENDPOINT_HEADER, "?"))
        for _ in range(repeats):
            _, headers = client.first_event_s(model, repeated_prompt, 1)
            out.repeat_pods.append(headers.get(POD_HEADER, "(no x-inference-pod header)"))
    finally:
        client.close()
    return out


def warm_up(
    gateway_url: str, model: str, prompts: list[str], concurrency: int, pace_s: float
) -> Counter[str]:
    """Send each prompt once through the gateway (1 output token), at most ``concurrency`` at
    a time and one new request every ``pace_s`` seconds: the replicas' caches then hold what
    this routing configuration puts there, as on a service that has been running. Returns
    requests per serving Pod.

    Why paced: a fresh EPP hit by a burst of distinct prompts that share an instruction prefix
    sends them all to one replica. Its approximate prefix scorer records each pick at once
    (the shared prefix then scores a little on that replica), while the load it would weigh
    against that comes from metrics scraped every 50 ms, which a burst outruns. A running
    service's traffic arrives spread out; the measured load that follows is not paced."""
    local = threading.local()
    clients: list[StreamClient] = []

    def send(prompt: str) -> str:
        if not hasattr(local, "client"):
            local.client = StreamClient(gateway_url)
            clients.append(local.client)
        return local.client.first_event_s(model, prompt, 1)[1].get(POD_HEADER, "?")

    try:
        with ThreadPoolExecutor(concurrency) as pool:
            futures = []
            for prompt in prompts:
                futures.append(pool.submit(send, prompt))
                time.sleep(pace_s)
            pods = [f.result() for f in futures]
    finally:
        for client in clients:
            client.close()
    return Counter(pods)
