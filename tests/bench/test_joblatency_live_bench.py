"""The job latency recorder against a live API server: does it keep up with Jobs created as fast
as the API accepts them?

N suspended Jobs (no pods, no Kueue: only the watch path is under test) are created from several
threads while the recorder watches the namespace. For each Job, the delivery lag is the arrival of
its first watch event minus the return of its create call (negative when the watch beats the
HTTP response). A recorder that falls behind shows a lag that grows with N, so the lag of the last
tenth of the Jobs is reported beside the first tenth. Its busy share is the time spent handling
events over the wall time: below 1 it keeps up, and 1/busy is its headroom over this event rate.

N is $K8SAI_COLLECTOR_JOBS (default 500 in `make test`; `make bench` runs 10,000). The test
asserts that every Job and event was recorded, never a time: the figures go to the benchmark's
extra_info and are printed.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from kubernetes import client

from pytest_k8sai.measure import stats
from pytest_k8sai.measure.joblatency import JobLatencyRecorder
from pytest_k8sai.workloads.jobs import gpu_job

pytest.importorskip("pytest_benchmark")

JOBS = int(os.environ.get("K8SAI_COLLECTOR_JOBS", "500"))
CREATORS = 8  # client threads; the API server, not the client, should be the limit
WAIT_S = 120.0


@pytest.fixture(autouse=True)
def _local_tier_only(k8sai_profile):
    # Creates thousands of Jobs: fine on the throw-away local cluster, rude on a shared one.
    if k8sai_profile.provider != "local":
        pytest.skip(f"local-tier benchmark; profile '{k8sai_profile.name}' is not local")


def _create_all(api: client.ApiClient, namespace: str, names: list[str]) -> dict[str, float]:
    batch = client.BatchV1Api(api)
    returned: dict[str, float] = {}
    lock = threading.Lock()

    def create(name: str) -> None:
        body = gpu_job(name, namespace, run_seconds=1.0)
        body["spec"]["suspend"] = True  # no pods: the watch path alone is measured
        # Raw response: the harness must not spend CPU building client models.
        batch.create_namespaced_job(namespace, body, _preload_content=False, _request_timeout=30)
        t = time.monotonic()
        with lock:
            returned[name] = t

    with ThreadPoolExecutor(CREATORS) as pool:
        for fut in [pool.submit(create, n) for n in names]:
            fut.result()
    return returned


def _wait_seen(rec: JobLatencyRecorder, names: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(rec.records()) >= len(names):
            return
        time.sleep(0.1)
    missing = set(names) - set(rec.records())
    raise AssertionError(f"{len(missing)} of {len(names)} Jobs never seen by the watch")


@pytest.mark.benchmark(group="joblatency-live")
def test_recorder_keeps_up_with_live_job_creation(benchmark, cluster, k8s_namespace):
    api = cluster.api_client  # its connection pool holds 5 per CPU, enough for CREATORS
    names = [f"bench-{i:05d}" for i in range(JOBS)]
    rec = JobLatencyRecorder(api, k8s_namespace, kueue=False, watch_timeout_s=30).start()
    try:
        t0 = time.monotonic()
        returned = benchmark.pedantic(
            _create_all, args=(api, k8s_namespace, names), rounds=1, iterations=1
        )
        create_s = time.monotonic() - t0
        _wait_seen(rec, names, WAIT_S)
        wall_s = time.monotonic() - t0
    finally:
        rec.stop()

    records = rec.records()
    assert set(records) == set(names)
    lag = rec.lag()
    assert lag.events >= JOBS  # at least each Job's ADDED

    delivery_ms = [(records[n].created - returned[n]) * 1000 for n in names]
    order = sorted(names, key=returned.__getitem__)
    tenth = max(1, JOBS // 10)
    first = [(records[n].created - returned[n]) * 1000 for n in order[:tenth]]
    last = [(records[n].created - returned[n]) * 1000 for n in order[-tenth:]]
    benchmark.extra_info.update(
        jobs=JOBS,
        events=lag.events,
        create_rate_per_s=round(JOBS / create_s, 1),
        event_rate_per_s=round(lag.events / wall_s, 1),
        busy_share=round(lag.busy_s / wall_s, 4),
        handling_p50_ms=round(lag.p50_ms, 4),
        handling_p99_ms=round(lag.p99_ms, 4),
        delivery_lag_p50_ms=round(stats.percentile(delivery_ms, 50), 2),
        delivery_lag_p99_ms=round(stats.percentile(delivery_ms, 99), 2),
        delivery_lag_max_ms=round(max(delivery_ms), 2),
        delivery_lag_first_tenth_p50_ms=round(stats.percentile(first, 50), 2),
        delivery_lag_last_tenth_p50_ms=round(stats.percentile(last, 50), 2),
    )
    print(f"\njoblatency live: {benchmark.extra_info}")
