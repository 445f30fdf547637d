"""The mutant mechanism, proven in CI on one cheap mutant: with the prefix-cache scorer at
weight 0 (catalogue ``epp-prefix-weight-zero``), the inference suite's routing test must turn
its prefix-cache hit-rate verdict red. The whole catalogue runs with ``k8sai mutants run``
(hours; not in CI), see docs/mutants.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_k8sai.gaie.extra import missing_reason

ROOT = Path(__file__).resolve().parents[2]  # the checkout: suites/ is run by path
MUTANT = "epp-prefix-weight-zero"
HIT_RATE_KEY = "gaie_prefix_hit_rate_min"
TIMEOUT_S = 1800  # the routing experiment takes ~4-5 min on 2 cores; a cold sim/EPP build more


@pytest.mark.pr
def test_prefix_weight_zero_turns_the_hit_rate_verdict_red(tmp_path, k8sai_profile):
    if reason := missing_reason():
        pytest.skip(reason)
    if k8sai_profile.provider != "local":
        pytest.skip(f"starts a local cluster; profile '{k8sai_profile.name}' is not local")
    results = tmp_path / "results"
    cmd = [
        sys.executable, "-m", "pytest", "--cluster=local", "suites/gaie",
        "-k", "prefix_aware_routing", "--mutant", MUTANT,
        "--results-dir", str(results), "-p", "no:cacheprovider",
    ]  # fmt: skip
    # Its own local cluster: never the session's, and never one kept from another run.
    env = {**os.environ, "K8SAI_LOCAL_CLUSTER": "mutant-ci"}
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
    assert proc.returncode == 1, f"expected the mutant run to fail (exit 1):\n{tail}"
    verdicts = [
        json.loads(line)
        for line in (results / "verdicts.jsonl").read_text().splitlines()
        if line.strip()
    ]
    red = [v for v in verdicts if v.get("key") == HIT_RATE_KEY and v.get("passed") is False]
    assert red, (
        f"no FAILED verdict with key {HIT_RATE_KEY} under --mutant {MUTANT}; verdicts: "
        f"{[(v.get('key'), v.get('figure'), v.get('passed')) for v in verdicts]}\n{tail}"
    )
    assert all(v.get("threshold") is not None for v in red)
