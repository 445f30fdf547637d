"""The endpoint picker and one model-server replica killed during an inference level.

The inference suite's level is GuideLLM through the local gateway, the real EPP and
llm-d-inference-sim replicas (``gaie.stack.LocalStack``, what the suite runs). Killing the EPP
and a replica mid-level is a platform failure the suite must report, not hide:

- every planned request is accounted for (successful + errored + incomplete + never sent), so
  none is lost or counted twice, and the failures are there with their errors;
- the level's failed-request share, the suite's verdict on it, then exceeds its bound (red,
  because the platform dropped requests);
- the rest of the run goes on: the next level, on a fresh EPP and replicas as the suite starts
  each level, serves every request.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import urllib3

from pytest_k8sai.gaie.epp import configs_path, load_configs
from pytest_k8sai.gaie.experiments import short_dataset
from pytest_k8sai.gaie.guidellm import GuidellmRun, LevelResult, run_guidellm
from pytest_k8sai.gaie.replicas import SUCCESS_METRIC, get, metric_sum
from pytest_k8sai.gaie.stack import LocalStack
from pytest_k8sai.gaie.tokenizer import tokenizer_dir

REPLICAS = 2
REQUESTS = 64
STREAMS = 2
OUTPUT_TOKENS = 32
# Requests the replicas must have completed before the fault: the level is under way.
FAULT_AFTER_REQUESTS = 8


def _served(stack: LocalStack) -> float:
    """Requests the replicas completed so far (0 while they are not up yet)."""
    total = 0.0
    for r in stack.replicas:
        try:
            status, body = get(f"{r.url}/metrics", 1.0)
        except (OSError, urllib3.exceptions.HTTPError):
            continue
        if status == 200:
            total += metric_sum(body.decode(errors="replace"), SUCCESS_METRIC)
    return total


def _kill(stack: LocalStack, names: list[str]) -> list[str]:
    """SIGKILL the named stack processes (a crash: no shutdown) and say what was killed."""
    done = []
    for rec in stack.sup.records:
        if rec.name in names:
            os.killpg(rec.pid, signal.SIGKILL)
            done.append(f"{rec.name} (pid {rec.pid})")
    return done


def _level(stack: LocalStack, tag: str, data: Path, out: Path) -> LevelResult:
    configs = load_configs(configs_path(stack.settings.epp_configs))
    stack.stop_processes("gateway-")
    stack.stop_processes("epp-")
    stack.start_replicas(kv_blocks=None, tag=tag)
    gw = stack.start_gateway(tag, epp_port=stack.start_epp(tag, configs["prefix-aware"]))
    run = GuidellmRun(
        target=gw,
        model=stack.settings.model,
        dataset=data,
        streams=[STREAMS],
        max_requests=REQUESTS,
        tokenizer=tokenizer_dir(),
        timeout_s=stack.settings.load_timeout_s(REQUESTS, [STREAMS], OUTPUT_TOKENS),
    )
    (level,) = run_guidellm(run, out, name=f"guidellm-{tag}").levels
    return level


def test_epp_and_a_replica_killed_during_a_level(
    cluster, k8sai_run_id, k8s_namespace, tmp_path, fault_log
):
    settings = cluster.profile.gaie_suite
    stack = LocalStack(
        cluster, k8s_namespace, k8sai_run_id, settings, "gaie-faults", REPLICAS, tmp_path, print
    )
    killed: list[str] = []
    try:
        stack.create_objects()
        data = short_dataset(tmp_path / "prompts.jsonl", REQUESTS, OUTPUT_TOKENS)

        def inject() -> None:
            deadline = time.monotonic() + 120
            while _served(stack) < FAULT_AFTER_REQUESTS and time.monotonic() < deadline:
                time.sleep(0.1)
            killed.extend(_kill(stack, ["epp-faulted", "sim-1-faulted"]))

        th = threading.Thread(target=inject, daemon=True)
        th.start()
        hit = _level(stack, "faulted", data, tmp_path)
        th.join(timeout=10)
        after = _level(stack, "after", data, tmp_path)
    finally:
        stack.close()
    figures = {
        "killed": killed,
        "faulted_level": hit.counts(),
        "faulted_errors": hit.first_errors(),
        "after_level": after.counts(),
        "ttft_mean_ms": {"faulted": hit.ttft_ms.mean, "after": after.ttft_ms.mean},
    }
    fault_log({"fault": "EPP + sim replica SIGKILL", **figures})

    assert len(killed) == 2, f"the fault was not injected (killed: {killed})"
    # Every planned request accounted for exactly once.
    assert hit.successful + hit.errored + hit.incomplete == hit.total
    assert hit.total + hit.not_sent == REQUESTS
    # The failures are reported, with their errors, not hidden ...
    assert hit.not_successful > 0, f"a dead EPP and replica cost nothing? {hit.counts()}"
    assert hit.errored == 0 or hit.first_errors()
    # ... so the suite's failed-request verdict on this level is red.
    assert hit.not_successful / REQUESTS > cluster.profile.slo.gaie_failed_request_share_max
    # The rest of the run goes on: the next level, on a fresh EPP and replicas, serves all.
    assert after.successful == REQUESTS, after.counts()
