"""The mutant mechanism, proven in CI on one cheap mutant: with preemption switched off in the
"+ Preemption" setup (catalogue ``kueue-preemption-off``), the Kueue suite's preemption test
must turn its "workloads preempted" verdict red (one setup run, ~1.5 min). The whole catalogue
runs with ``k8sai mutants run`` (hours; not in CI), see docs/mutants.md; the inference suite's
``epp-prefix-weight-zero`` is caught by the hit-rate verdicts there (~5 min, too long for CI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # the checkout: suites/ is run by path
MUTANT = "kueue-preemption-off"
KEY = "kueue_preemptions_min"
TIMEOUT_S = 900  # one run of the 32-job trace at x60 takes ~70 s


@pytest.mark.pr
def test_preemption_off_turns_the_preemption_verdict_red(tmp_path, k8sai_profile):
    if k8sai_profile.provider != "local":
        pytest.skip(f"starts a local cluster; profile '{k8sai_profile.name}' is not local")
    results = tmp_path / "results"
    cmd = [
        sys.executable, "-m", "pytest", "--cluster=local", "suites/kueue",
        "-k", "test_preemption_happens", "--mutant", MUTANT,
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
    red = [v for v in verdicts if v.get("key") == KEY and v.get("passed") is False]
    assert red, (
        f"no FAILED verdict with key {KEY} under --mutant {MUTANT}; verdicts: "
        f"{[(v.get('key'), v.get('figure'), v.get('passed')) for v in verdicts]}\n{tail}"
    )
    assert all(v.get("threshold") is not None for v in red)
