"""Record when each pod of a namespace is first seen in each phase, as watch events arrive.

Timestamps are taken from a monotonic clock at event arrival (milliseconds matter here), not
from the API's one-second lastTransitionTime. A wait that times out names what it waited for
and each pod's last seen state (phase, the condition that is not True, e.g. Unschedulable with
kube-scheduler's reason); a watch that fails is retried, and its errors are named there too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from kubernetes import client, watch

from pytest_k8sai.measure.laststate import pod_state


@dataclass
class PodTimes:
    phases: dict[str, float] = field(default_factory=dict)  # phase -> monotonic seconds
    node: str | None = None
    last: str = ""  # the state last seen, in words (laststate.pod_state)


class PodPhaseRecorder:
    """Runs one watch in a thread from start() until stop()."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.pods: dict[str, PodTimes] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="pod-phases")
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.errors: list[str] = []  # the last few watch failures

    def start(self) -> PodPhaseRecorder:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._watch_once()
            except Exception as exc:  # API trouble: keep watching; a timeout message says it
                if self._stop.is_set():
                    return
                with self._cond:
                    self.errors = [*self.errors[-4:], f"{type(exc).__name__}: {exc}"]
                self._stop.wait(1.0)

    def _watch_once(self) -> None:
        w = watch.Watch()
        # Short server-side timeouts let stop() end the thread promptly.
        for ev in w.stream(
            self.core.list_namespaced_pod, self.namespace, timeout_seconds=2, _request_timeout=30
        ):
            now = time.monotonic()
            pod = ev["object"]
            with self._cond:
                times = self.pods.setdefault(pod.metadata.name, PodTimes())
                times.node = pod.spec.node_name or times.node
                phase = pod.status.phase if pod.status else None
                if phase and phase not in times.phases:
                    times.phases[phase] = now
                times.last = pod_state(ev.get("raw_object") or {})
                self._cond.notify_all()
            if self._stop.is_set():
                w.stop()
                break

    def _seen(self, prefix: str = "") -> str:
        """Each pod's phases and last state, and the watch's errors (call with the lock)."""
        pods = {n: t for n, t in self.pods.items() if n.startswith(prefix)}
        text = "; ".join(
            f"{n}: phases {'/'.join(sorted(t.phases)) or 'none'}, last {t.last}"
            for n, t in sorted(pods.items())
        )
        text = text or "no pod seen"
        if self.errors:
            text += ". Watch errors: " + "; ".join(self.errors)
        return text

    def wait_phase(self, phase: str, timeout_s: float) -> dict[str, PodTimes]:
        """Block until some pod has reached ``phase``; return a snapshot of all pods."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not any(phase in t.phases for t in self.pods.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"no pod in {self.namespace} reached {phase} within "
                        f"{timeout_s:.0f}s; seen: {self._seen()}"
                    )
                self._cond.wait(left)
            return dict(self.pods)

    def wait_finished(self, prefix: str, count: int, timeout_s: float) -> dict[str, PodTimes]:
        """Block until ``count`` pods named ``prefix``... have ended (Succeeded or Failed)."""
        deadline = time.monotonic() + timeout_s

        def ended() -> int:
            return sum(
                1
                for n, t in self.pods.items()
                if n.startswith(prefix) and {"Succeeded", "Failed"} & t.phases.keys()
            )

        with self._cond:
            while ended() < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{ended()} of {count} pods {prefix}* in {self.namespace} ended "
                        f"(Succeeded or Failed) within {timeout_s:.0f}s; seen: "
                        f"{self._seen(prefix)}"
                    )
                self._cond.wait(left)
            return dict(self.pods)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
