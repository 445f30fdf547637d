"""The Workload watch of a scale run: the project's job-latency recorder's watch machinery
(initial list, resume from the last resourceVersion, relist on 410, outages kept as gaps,
per-event handling lag), with every Workload event handed to a sink instead of Job records.

The recorder also lists Jobs and Pods in the namespace; a scale run creates neither (its
Workloads have no pods), so those streams stay idle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client

from pytest_k8sai.measure.joblatency import JobLatencyRecorder

Sink = Callable[[str, dict[str, Any], float], None]


class WorkloadWatch(JobLatencyRecorder):
    def __init__(
        self, api: client.ApiClient, namespace: str, sink: Sink, kueue_version: str
    ) -> None:
        super().__init__(api, namespace, kueue=True, kueue_version=kueue_version)
        self._sink = sink

    def on_event(self, kind: str, event_type: str, obj: dict[str, Any], t: float) -> None:
        # Runs on the watch thread: the sink must be quick (it only records and queues).
        if kind == "Workload":
            self._sink(event_type, obj, t)
