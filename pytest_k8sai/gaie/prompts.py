"""The summarization workload of the paper's routing experiment, as data: prompts for GuideLLM.

Paper (section 4.3): 32 earnings-call transcripts of about 8,500 tokens each, every one sent 8
times (256 requests), at most 512 output tokens per summary. The transcripts live in
``gaie/prompts/earnings_calls.jsonl`` (synthetic, written by
``fixtures/make_earnings_calls.py``; a user can point ``transcripts_file`` at real ones in the
same format: one JSON object per line with ``id``, ``title`` and ``text``).

:class:`PromptSpec` says how much of it to send: the paper's defaults, or a scaled-down version
for a small cluster (fewer transcripts, each cut at a sentence end, fewer repetitions, shorter
summaries). :func:`write_guidellm_dataset` writes the requests, in a seeded shuffled order, as a
JSONL file GuideLLM 0.8.1 reads with ``--data kind=json_file,path=...``: one row per request with
the columns ``prompt`` and ``output_tokens_count`` (GuideLLM sends the latter as ``max_tokens``).

Token counts here (:func:`count_tokens`) are words and punctuation marks, the way
llm-d-inference-sim's built-in tokenizer splits text (its regex, ASCII word characters); that is
what the simulated replicas charge prefill time and KV-cache blocks for. A real BPE vocabulary
gives similar counts for English prose.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pytest_k8sai.core.data import data_file
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.yamlfiles import invalid_fields

TRANSCRIPTS_PATH = data_file("gaie", "prompts", "earnings_calls.jsonl")
DEFAULT_INSTRUCTION = (
    "Summarize the following earnings call transcript for an investor: the quarter's results, "
    "the outlook, and the main questions analysts asked.\n\n"
)

# One simulated token: a punctuation mark, or a run of ASCII word characters.
_TOKEN = re.compile(r"""[{}:,\-.?!;@#$%^&*()+_~/\\<>\[\]="']|\w+""", re.ASCII)
# Where a prompt may be cut: after . ? or ! followed by whitespace or the end (not the dot of
# "4.5"), or at the end of a line (a title, a speaker's name).
_SENTENCE_END = re.compile(r"[.?!](?=\s|$)|\S(?=\n)")


class PromptError(K8saiError):
    """The transcripts file or a prompt spec is unusable."""


def count_tokens(text: str) -> int:
    """Tokens as llm-d-inference-sim's built-in tokenizer counts them (see module docstring)."""
    return len(_TOKEN.findall(text))


def cut_at_sentence(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` that ends a sentence or a line and has at most
    ``max_tokens`` tokens (a hard cut at a token boundary if the first one is already longer)."""
    ends = [m.end() for m in _TOKEN.finditer(text)]
    if len(ends) <= max_tokens:
        return text
    limit = ends[max_tokens - 1] if max_tokens > 0 else 0
    last = None
    for m in _SENTENCE_END.finditer(text, 0, limit):
        last = m.end()
    return text[: last if last is not None else limit]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Transcript(_Strict):
    id: str = Field(min_length=1)
    title: str
    text: str = Field(min_length=1)


class PromptSpec(_Strict):
    """How much of the summarization workload to send. Defaults are the paper's."""

    transcripts: int = Field(32, ge=1, description="the first N transcripts of the file")
    repetitions: int = Field(8, ge=1, le=1000, description="times each prompt is sent")
    max_prompt_tokens: int | None = Field(
        None,
        ge=16,
        description="cut each prompt (instruction included) at the last sentence or line end "
        "within this many tokens; default: whole transcripts",
    )
    output_tokens: int = Field(512, ge=1, description="max_tokens of each request")
    seed: str = Field("pytest-k8sai/prompts/v1", description="request order (seeded shuffle)")
    instruction: str = DEFAULT_INSTRUCTION
    transcripts_file: Path | None = Field(None, description=f"default: {TRANSCRIPTS_PATH}")

    @property
    def requests(self) -> int:
        return self.transcripts * self.repetitions


class PromptRequest(_Strict):
    """One request of the workload, in send order."""

    transcript_id: str
    repetition: int
    prompt: str
    prompt_tokens: int
    output_tokens: int


class TokenStats(_Strict):
    min: int
    mean: float
    max: int


class WorkloadInfo(_Strict):
    """What a spec expands to; ``describe()`` says how it compares with the paper's."""

    requests: int
    distinct_prompts: int
    repetitions: int
    prompt_tokens: TokenStats  # per distinct prompt
    # Tokens of all distinct prompts together: what the replicas' KV caches must hold so that
    # every repeat can hit; size the per-replica cache below it to make random routing pay.
    working_set_tokens: int
    output_tokens: int
    source: str

    def describe(self) -> str:
        p = self.prompt_tokens
        return (
            f"{self.distinct_prompts} transcripts x {self.repetitions} = {self.requests} "
            f"requests; prompt {p.min}-{p.max} tokens (mean {p.mean:.0f}), working set "
            f"{self.working_set_tokens} tokens; <= {self.output_tokens} output tokens "
            f"(paper: 32 transcripts of ~8,500 tokens x 8 = 256 requests, <= 512 output tokens)"
        )


def load_transcripts(path: Path | None = None) -> list[Transcript]:
    """Read a transcripts JSONL file; errors name the file and the line."""
    path = path or TRANSCRIPTS_PATH
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise PromptError(f"Cannot read transcripts file {path}: {exc.strerror}.") from None
    out: list[Transcript] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append(Transcript.model_validate(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise PromptError(
                f"Transcripts file {path}, line {number}, is not valid JSON: {exc.msg}."
            ) from None
        except ValidationError as exc:
            raise PromptError(
                f"Transcripts file {path}, line {number}: {invalid_fields(exc)}."
            ) from None
    if not out:
        raise PromptError(f"Transcripts file {path} holds no transcripts.")
    ids = [t.id for t in out]
    if len(set(ids)) != len(ids):
        raise PromptError(f"Transcripts file {path} repeats an id; every 'id' must be unique.")
    return out


def _order_key(seed: str, transcript_id: str, repetition: int) -> str:
    return hashlib.sha256(f"{seed}/{transcript_id}/{repetition}".encode()).hexdigest()


def build_requests(spec: PromptSpec) -> list[PromptRequest]:
    """The spec's requests: N transcripts x k repetitions, in a seeded shuffled order."""
    path = spec.transcripts_file or TRANSCRIPTS_PATH
    available = load_transcripts(path)
    if spec.transcripts > len(available):
        raise PromptError(
            f"Prompt spec field 'transcripts' asks for {spec.transcripts} transcripts, but "
            f"{path} holds {len(available)}."
        )
    prompts: list[tuple[str, str, int]] = []
    for t in available[: spec.transcripts]:
        text = spec.instruction + t.text
        if spec.max_prompt_tokens is not None:
            text = cut_at_sentence(text, spec.max_prompt_tokens)
        prompts.append((t.id, text, count_tokens(text)))
    keyed = [
        (_order_key(spec.seed, tid, rep), tid, rep, text, tokens)
        for tid, text, tokens in prompts
        for rep in range(spec.repetitions)
    ]
    keyed.sort()
    return [
        PromptRequest(
            transcript_id=tid,
            repetition=rep,
            prompt=text,
            prompt_tokens=tokens,
            output_tokens=spec.output_tokens,
        )
        for _, tid, rep, text, tokens in keyed
    ]


def summarize(spec: PromptSpec, requests: list[PromptRequest]) -> WorkloadInfo:
    distinct = {r.transcript_id: r.prompt_tokens for r in requests}
    sizes = list(distinct.values())
    return WorkloadInfo(
        requests=len(requests),
        distinct_prompts=len(distinct),
        repetitions=spec.repetitions,
        prompt_tokens=TokenStats(min=min(sizes), mean=statistics.fmean(sizes), max=max(sizes)),
        working_set_tokens=sum(sizes),
        output_tokens=spec.output_tokens,
        source=str(spec.transcripts_file or TRANSCRIPTS_PATH),
    )


def write_guidellm_dataset(spec: PromptSpec, path: Path) -> WorkloadInfo:
    """Write the requests as GuideLLM's JSONL dataset (``prompt``, ``output_tokens_count``)."""
    requests = build_requests(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for r in requests:
            row = {"prompt": r.prompt, "output_tokens_count": r.output_tokens}
            out.write(json.dumps(row, ensure_ascii=True) + "\n")
    return summarize(spec, requests)
