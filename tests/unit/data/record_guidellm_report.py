"""Record ``tests/data/guidellm_report_small.json``: a real GuideLLM 0.8.1 report, kept small.

Run ``python tests/data/record_guidellm_report.py`` (needs guidellm installed). It starts the
test SSE server on 127.0.0.1 (50 ms to the first token, then 100 ms per token, so 0.75 s per
request; every 4th request fails at once with HTTP 500), writes a small dataset (4 transcripts
x 2, cut to 64 tokens, 8 output tokens) and runs GuideLLM at 1 and 4 streams, at most 4
requests and 2 s per level. At 1 stream the 4 requests would need about 3 s, so the 2 s limit
ends the level with a request in flight; at 4 streams all 4 finish. So the recording holds
successful, errored and incomplete requests, and both ways a level ends. The parser tests read
it.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "local"))

from openai_sse_server import SseServer  # noqa: E402

from pytest_k8sai.gaie.guidellm import GuidellmRun, run_guidellm  # noqa: E402
from pytest_k8sai.gaie.prompts import PromptSpec, write_guidellm_dataset  # noqa: E402

OUT = HERE / "guidellm_report_small.json"
SPEC = PromptSpec(transcripts=4, repetitions=2, max_prompt_tokens=64, output_tokens=8)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="record-guidellm-"))
    try:
        dataset = work / "dataset.jsonl"
        print(write_guidellm_dataset(SPEC, dataset).describe())
        with SseServer(ttft_s=0.05, itl_s=0.1, fail_every=4) as server:
            run = GuidellmRun(
                target=server.url,
                dataset=dataset,
                streams=[1, 4],
                max_requests=4,
                max_seconds=2.0,
                timeout_s=300,
            )
            report = run_guidellm(run, work)
        for level in report.levels:
            print(f"streams {level.streams}: {level.counts()}")
        shutil.copyfile(report.report_path, OUT)
        print(f"wrote {OUT} (GuideLLM {report.guidellm_version}, {report.wall_s:.1f} s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
