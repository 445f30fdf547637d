"""GuideLLM for real: it runs as a subprocess against a tiny streaming server on 127.0.0.1, sends
the project's prompts as they were written, and its report comes back parsed. Bounded (a few
requests, a timeout) and not time-sensitive: the only timing checks are lower bounds the server
enforces by sleeping. Skipped, with the reason, when GuideLLM is not installed."""

from __future__ import annotations

import importlib.util
import math
import socket

import pytest
from openai_sse_server import SseServer

from pytest_k8sai.gaie.guidellm import GuidellmRun, LoadGenError, run_guidellm
from pytest_k8sai.gaie.prompts import PromptSpec, build_requests, write_guidellm_dataset
from pytest_k8sai.gaie.tokenizer import tokenizer_dir

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("guidellm") is None,
    reason="GuideLLM is not installed (pip install -e . brings guidellm==0.8.1)",
)

SPEC = PromptSpec(transcripts=3, repetitions=2, max_prompt_tokens=120, output_tokens=6)
TTFT_S, ITL_S = 0.03, 0.005


def test_guidellm_drives_the_server_and_its_report_is_parsed(tmp_path):
    dataset = tmp_path / "prompts.jsonl"
    info = write_guidellm_dataset(SPEC, dataset)
    with SseServer(ttft_s=TTFT_S, itl_s=ITL_S) as server:
        run = GuidellmRun(
            target=server.url,
            request_format="/v1/chat/completions",
            model="Qwen/Qwen3-8B",  # a hub id: must not make anything reach for the hub
            dataset=dataset,
            streams=[1, 2],
            max_requests=info.requests,
            tokenizer=tokenizer_dir(),  # loaded offline by GuideLLM's AutoTokenizer
            timeout_s=240,
        )
        report = run_guidellm(run, tmp_path / "out")
        seen, models = server.completions, server.models
    assert seen == 2 * info.requests and models == {"Qwen/Qwen3-8B"}
    assert report.report_path == tmp_path / "out" / "guidellm.json"
    assert report.wall_s is not None and report.command is not None
    sent = sorted(r.prompt_tokens for r in build_requests(SPEC))
    for level, streams in zip(report.levels, [1, 2], strict=True):
        assert level.streams == streams and level.strategy == "concurrent"
        assert (level.successful, level.errored, level.incomplete) == (info.requests, 0, 0)
        assert level.stopped_by == ["max_requests"]
        assert (level.planned, level.not_sent) == (info.requests, 0)
        # The server counted each prompt's tokens as the dataset did: prompts arrive intact.
        assert sorted(s.prompt_tokens for s in level.samples) == sent
        assert {s.output_tokens for s in level.samples} == {SPEC.output_tokens}
        # Lower bounds the server enforces: never less than its sleeps.
        assert level.ttft_ms.min >= TTFT_S * 1000
        assert level.e2e_ms.min >= (TTFT_S + (SPEC.output_tokens - 1) * ITL_S) * 1000
        assert level.ttft_ms.n == level.e2e_ms.n == info.requests


def test_failed_requests_are_counted_not_dropped(tmp_path):
    dataset = tmp_path / "prompts.jsonl"
    write_guidellm_dataset(SPEC, dataset)
    with SseServer(fail_every=1) as server:
        run = GuidellmRun(
            target=server.url, dataset=dataset, streams=[1], max_requests=3, timeout_s=180
        )
        report = run_guidellm(run, tmp_path / "out")
    (level,) = report.levels
    assert (level.successful, level.errored, level.incomplete) == (0, 3, 0)
    assert level.ttft_ms.n == 0 and math.isnan(level.ttft_ms.mean)  # no number from nothing
    assert "500 Internal Server Error" in level.first_errors()[0]


def test_unreachable_target_is_a_clear_error(tmp_path):
    dataset = tmp_path / "prompts.jsonl"
    write_guidellm_dataset(SPEC, dataset)
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    run = GuidellmRun(target=url, dataset=dataset, streams=[1], max_requests=3, timeout_s=180)
    with pytest.raises(LoadGenError) as err:
        run_guidellm(run, tmp_path / "out")
    msg = str(err.value)
    assert "GuideLLM exited with code 1 after" in msg and f"against {url}: " in msg
    assert "Backend validation request failed" in msg
    assert f"Last lines of {tmp_path / 'out' / 'guidellm.log'}" in msg


def test_api_key_reaches_every_request_but_not_the_command_or_report(tmp_path):
    dataset = tmp_path / "prompts.jsonl"
    write_guidellm_dataset(SPEC, dataset)
    token = "sk-k8sai-test-4f1d9c"  # noqa: S105 - a test token the stub server checks
    with SseServer(token=token) as server:
        run = GuidellmRun(target=server.url, dataset=dataset, streams=[1], max_requests=3,
                          timeout_s=180, api_key=token)  # fmt: skip
        report = run_guidellm(run, tmp_path / "out")
        refused, seen = server.refused, server.completions
    (level,) = report.levels
    # The stub answers 401 to anything without the token: every request (and the backend
    # validation before them) carried it.
    assert (refused, seen, level.successful, level.errored) == (0, 3, 3, 0)
    assert report.command is not None and token not in " ".join(report.command)
    out = tmp_path / "out"
    assert not any(token in p.read_text() for p in out.iterdir())  # report and log
    assert token not in run.model_dump_json() and token not in repr(run)


def test_without_the_key_a_protected_route_fails_naming_the_refusal(tmp_path):
    dataset = tmp_path / "prompts.jsonl"
    write_guidellm_dataset(SPEC, dataset)
    with SseServer(token="sk-needed") as server:  # noqa: S106
        run = GuidellmRun(target=server.url, dataset=dataset, streams=[1], max_requests=3,
                          timeout_s=180)  # fmt: skip
        with pytest.raises(LoadGenError, match=r"caused by .*401 Unauthorized"):
            run_guidellm(run, tmp_path / "out")
