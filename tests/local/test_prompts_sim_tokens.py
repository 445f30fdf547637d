"""The prompts' token counts are the model server's: llm-d-inference-sim (built from its Go module
by the local tier) counts every transcript exactly as ``count_tokens`` does, so the sizes the
suite prints and the KV-cache sizing it derives are in the replicas' own unit. Skipped, with the
reason, when the sim has not been built on this machine."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from pytest_k8sai.clusters.local.build import Builder, load_components
from pytest_k8sai.gaie.prompts import DEFAULT_INSTRUCTION, count_tokens, load_transcripts

MODEL = "Qwen/Qwen3-8B"


def _sim_binary():
    comp = load_components().get("inference-sim")
    if comp is None:
        return None
    try:
        built = Builder().cached(comp)
    except Exception:  # no Go toolchain: nothing can have been built either
        return None
    return next(iter(built.binaries.values()), None) if built else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def sim_url(tmp_path_factory):
    binary = _sim_binary()
    if binary is None:
        pytest.skip("llm-d-inference-sim is not built here (k8sai local build builds it)")
    port = _free_port()
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(binary), "--port", str(port), "--model", MODEL, "--force-dummy-tokenizer"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/v1/models", timeout=1).close()  # noqa: S310
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"llm-d-inference-sim did not start; its log {log}:\n"
                        f"{log.read_text()[-2000:]}"
                    )
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_sim_counts_prompts_as_count_tokens_does(sim_url):
    texts = [DEFAULT_INSTRUCTION + t.text for t in load_transcripts()[:3]]
    for text in texts:
        body = _post(f"{sim_url}/tokenize", {"model": MODEL, "prompt": text})
        assert body["count"] == count_tokens(text) > 6000
