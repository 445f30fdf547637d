"""The GPU slicing suite refuses a bad slicing profile at collection: one paragraph, exit 4,
nothing started (runs pytest on the suite in a subprocess)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "caps,suite,expect",
    [
        ("gpu_nodes: {product: NVIDIA-T4}", "{}", "known products: A100-40GB"),
        ("", "{slices: {medium: 3g.40gb, large: 3g.20gb}}", "known profiles: 1g.5gb"),
        ("", "{slices: {medium: 1g.10gb, large: 3g.20gb}}", "No fitted slowdown"),
    ],
)
def test_suite_refuses_bad_slicing_profile_before_any_cluster(tmp_path, caps, suite, expect):
    """Collection fails with one paragraph and exit 4; nothing is started."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    prof = tmp_path / "p.yaml"
    prof.write_text(
        "name: p\nprovider: local\ncapabilities:\n  mig: {enabled: true}\n"
        + (f"  {caps}\n" if caps else "")
        + f"das_suite: {suite}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(root), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "pytest_k8sai.plugin", "-p", "no:cacheprovider",
         f"--cluster={prof}", "--collect-only", "-q", str(root / "suites" / "das")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert out.returncode == 4, out.stdout + out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and expect in errors[0], out.stderr
    assert "Traceback" not in out.stdout + out.stderr
