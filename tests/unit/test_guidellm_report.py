"""The GuideLLM report parser and the subprocess wrapper's error paths, on a real recorded report.

``tests/data/guidellm_report_small.json`` was recorded by ``tests/data/record_guidellm_report.py``
(GuideLLM 0.8.1 against the test SSE server): level 1 stream ran out of time (2 ok, 1 incomplete,
ended by max_duration), level 4 streams ran its 4 requests (3 ok, 1 errored with HTTP 500).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import pytest

from pytest_k8sai.gaie import guidellm as gl
from pytest_k8sai.gaie.guidellm import GuidellmRun, LoadGenError, parse_report
from pytest_k8sai.measure import stats

RECORDED = Path(__file__).parent / "data" / "guidellm_report_small.json"


@pytest.fixture(scope="module")
def raw():
    return json.loads(RECORDED.read_text())


@pytest.fixture(scope="module")
def report():
    return parse_report(RECORDED)


def test_levels_counts_and_how_each_ended(report):
    assert report.guidellm_version == "0.8.1"
    assert report.request_format == "/v1/completions"
    assert [lv.streams for lv in report.levels] == [1, 4]
    one, four = report.level(1), report.level(4)
    assert (one.successful, one.errored, one.incomplete, one.total) == (2, 0, 1, 3)
    assert (four.successful, four.errored, four.incomplete, four.total) == (3, 1, 0, 4)
    assert one.stopped_by == ["max_duration"] and four.stopped_by == ["max_requests"]
    # Level 1 planned 4 requests; time ran out after 3 were sent.
    assert (one.planned, one.not_sent, one.not_successful) == (4, 1, 2)
    assert (four.planned, four.not_sent, four.not_successful) == (4, 0, 1)
    assert one.counts() == "2 ok, 0 errored, 1 incomplete of 3, 1 of 4 planned never sent"
    assert four.counts() == "3 ok, 1 errored, 0 incomplete of 4"
    assert all(lv.samples_complete and lv.strategy == "concurrent" for lv in report.levels)
    with pytest.raises(LoadGenError, match=r"has no level 8: \[1, 4\]"):
        report.level(8)


def test_every_request_is_kept_with_its_status_and_error(report):
    for lv in report.levels:
        got = [s.status for s in lv.samples]
        assert got.count("successful") == lv.successful
        assert got.count("errored") == lv.errored
        assert got.count("incomplete") == lv.incomplete
    assert report.level(1).first_errors() == ["Request was cancelled"]
    (error,) = report.level(4).first_errors()
    assert "500 Internal Server Error" in error and "\\n" not in error


@pytest.mark.parametrize(
    ("ours", "theirs", "scale"),
    [
        ("ttft_ms", "time_to_first_token_ms", 1.0),
        ("e2e_ms", "request_latency", 1000.0),  # GuideLLM: seconds; ours: ms
    ],
)
def test_distributions_from_samples_agree_with_guidellm(report, raw, ours, theirs, scale):
    for lv, bench in zip(report.levels, raw["benchmarks"], strict=True):
        got = getattr(lv, ours)
        summary = bench["metrics"][theirs]["successful"]
        assert got.n == summary["count"] == lv.successful
        assert got.mean == pytest.approx(summary["mean"] * scale, rel=1e-9)
        assert got.guidellm_mean == pytest.approx(summary["mean"] * scale, rel=1e-9)
        # GuideLLM's own 95 % interval of the mean is a t-interval too.
        assert got.ci_low == pytest.approx(summary["mean_ci"]["lower"] * scale, rel=1e-9)
        assert got.ci_high == pytest.approx(summary["mean_ci"]["upper"] * scale, rel=1e-9)
        assert got.ci_half_width == pytest.approx(
            stats.mean_ci([r[theirs] * scale for r in bench["requests"]["successful"]]).half_width
        )
        values = [r[theirs] * scale for r in bench["requests"]["successful"]]
        assert got.p99 == pytest.approx(stats.percentile(values, 99))
        assert got.min == min(values) and got.max == max(values)


def test_itl_is_the_mean_of_per_request_itl(report, raw):
    for lv, bench in zip(report.levels, raw["benchmarks"], strict=True):
        values = [r["inter_token_latency_ms"] for r in bench["requests"]["successful"]]
        assert lv.itl_ms.mean == pytest.approx(sum(values) / len(values))
        assert lv.itl_ms.n == lv.successful


def test_samples_carry_times_tokens_and_ms(report, raw):
    first = raw["benchmarks"][1]["requests"]["successful"][0]
    sample = report.level(4).samples[0]
    assert sample.status == "successful"
    assert sample.e2e_ms == pytest.approx(first["request_latency"] * 1000)
    assert sample.start_s == first["request_start_time"] and sample.end_s > sample.start_s
    assert sample.prompt_tokens == first["prompt_tokens"] and sample.output_tokens == 8
    # The whole report, samples included, serializes for the results file.
    assert json.loads(report.model_dump_json())["levels"][1]["samples"][0]["output_tokens"] == 8


def test_measured_concurrency_and_throughput_come_from_guidellm(report, raw):
    for lv, bench in zip(report.levels, raw["benchmarks"], strict=True):
        m = bench["metrics"]
        assert lv.measured_concurrency == m["request_concurrency"]["successful"]["mean"]
        assert lv.requests_per_second == m["requests_per_second"]["successful"]["mean"]
        assert lv.duration_s == bench["duration"]


def test_single_and_empty_samples_give_nan_intervals():
    one = gl.Distribution.of([5.0], 5.0, 0.95)
    assert one.n == 1 and one.mean == 5.0 and math.isnan(one.ci_low)
    none = gl.Distribution.of([], None, 0.95)
    assert none.n == 0 and math.isnan(none.mean) and math.isnan(none.max)


# --- bad reports ---------------------------------------------------------------------------


def test_missing_report_is_named(tmp_path):
    with pytest.raises(LoadGenError, match=r"GuideLLM wrote no report at .*none\.json"):
        parse_report(tmp_path / "none.json")


def test_truncated_report_is_named(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text(RECORDED.read_text()[:5000])
    with pytest.raises(LoadGenError, match=r"cut\.json is not valid JSON .*cut short"):
        parse_report(path)


def test_report_missing_a_field_names_it(tmp_path, raw):
    broken = json.loads(json.dumps(raw))
    del broken["benchmarks"][1]["metrics"]["request_totals"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(LoadGenError, match=r"field 'benchmarks\.1\.metrics\.request_totals'"):
        parse_report(path)


def test_other_schema_version_is_refused(tmp_path, raw):
    other = json.loads(json.dumps(raw))
    other["metadata"]["version"] = 3
    path = tmp_path / "v3.json"
    path.write_text(json.dumps(other))
    with pytest.raises(LoadGenError, match=r"schema version 3 .*reads version 2"):
        parse_report(path)


# --- the command and the subprocess ------------------------------------------------------


def _run(tmp_path, **kw) -> GuidellmRun:
    dataset = tmp_path / "d.jsonl"
    dataset.write_text('{"prompt": "hi", "output_tokens_count": 4}\n')
    args = {"target": "http://127.0.0.1:9", "dataset": dataset, "streams": [1, 4, 8]} | kw
    return GuidellmRun(**args)


def test_command_uses_concurrent_streams_and_constraints(tmp_path):
    run = _run(tmp_path, max_requests=64, max_seconds=30, tokenizer=tmp_path / "tok")
    cmd = gl.guidellm_command(run, tmp_path / "r.json")
    assert cmd[0] == "run"
    joined = " ".join(cmd)
    assert "--profile kind=concurrent,streams=1 --override profile.streams 1,4,8" in joined
    assert "kind=openai_http,target=http://127.0.0.1:9,request_format=/v1/completions" in joined
    assert "--constraint kind=max_requests,count=64" in joined
    assert "--constraint kind=max_duration,seconds=30" in joined
    assert f"--tokenizer kind=huggingface_auto,model={tmp_path / 'tok'}" in joined
    assert f"--output kind=json,path={tmp_path / 'r.json'}" in joined
    env = gl.guidellm_env(run, tmp_path / "hf")
    assert env["HF_HUB_OFFLINE"] == "1" and env["GUIDELLM__MAX_WORKER_PROCESSES"] == "2"
    assert env["HF_HOME"] == str(tmp_path / "hf")


def test_bad_run_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="streams"):
        _run(tmp_path, streams=[])
    with pytest.raises(ValueError, match="stream count must be >= 1"):
        _run(tmp_path, streams=[1, 0])
    with pytest.raises(ValueError, match="target"):
        _run(tmp_path, target="127.0.0.1:8000")


def test_guidellm_missing_says_how_to_install(monkeypatch):
    monkeypatch.setattr(gl.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(gl.shutil, "which", lambda name: None)
    with pytest.raises(LoadGenError, match=r"GuideLLM is not installed.*pip install -e \."):
        gl.guidellm_executable()


def test_nonzero_exit_reports_code_command_and_log_tail(tmp_path, monkeypatch):
    script = "import sys; print('line one'); print('Cannot compile GenerativeMetrics'); sys.exit(1)"
    monkeypatch.setattr(gl, "guidellm_executable", lambda: [sys.executable, "-c", script])
    with pytest.raises(LoadGenError) as err:
        gl.run_guidellm(_run(tmp_path), tmp_path / "out")
    msg = str(err.value)
    assert "exited with code 1" in msg and "http://127.0.0.1:9" in msg
    assert "Command: " in msg and "--override profile.streams 1,4,8" in msg
    assert msg.rstrip().endswith("line one\nCannot compile GenerativeMetrics")


def test_timeout_stops_the_whole_process_group(tmp_path, monkeypatch):
    # The child starts a grandchild (as GuideLLM starts workers); both must be gone afterwards.
    pid_file = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"open({str(pid_file)!r}, 'w').write(str(p.pid)); print('started', flush=True); "
        "time.sleep(60)"
    )
    monkeypatch.setattr(gl, "guidellm_executable", lambda: [sys.executable, "-c", script])
    with pytest.raises(LoadGenError, match=r"did not finish within 2 s .*timeout_s.*started"):
        gl.run_guidellm(_run(tmp_path, timeout_s=2), tmp_path / "out")
    pid = int(pid_file.read_text())
    # The grandchild got SIGTERM; once reaped by init it no longer exists.
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists() or "Z" in _state(pid):
            break
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except OSError:
        return "gone"


def test_missing_dataset_is_named(tmp_path):
    run = _run(tmp_path)
    run.dataset.unlink()
    with pytest.raises(LoadGenError, match=r"dataset .*d\.jsonl does not exist"):
        gl.run_guidellm(run, tmp_path / "out")
