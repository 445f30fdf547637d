"""The summarization prompts: the committed transcripts are what their generator writes and match
the paper's sizes; specs expand to N x k requests in a seeded order, scale down as they say,
become GuideLLM's JSONL dataset; bad transcript files fail naming the file and the line."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from pytest_k8sai.gaie.prompts import (
    TRANSCRIPTS_PATH,
    PromptError,
    PromptSpec,
    build_requests,
    count_tokens,
    cut_at_sentence,
    load_transcripts,
    summarize,
    write_guidellm_dataset,
)

GENERATOR = Path(__file__).resolve().parents[2] / "fixtures" / "make_earnings_calls.py"
# Paper section 4.3, typed in here so the test checks the generator against the paper.
PAPER_TRANSCRIPTS, PAPER_MEAN_TOKENS, PAPER_TOTAL_TOKENS = 32, 8500, 272_000


def _generator():
    spec = importlib.util.spec_from_file_location("make_earnings_calls", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def transcripts():
    return load_transcripts()


def test_committed_file_is_what_the_generator_writes():
    assert TRANSCRIPTS_PATH.read_text() == _generator().render(), (
        "pytest_k8sai/gaie/prompts/earnings_calls.jsonl is stale: "
        "python fixtures/make_earnings_calls.py"
    )


def test_transcripts_match_the_paper_sizes(transcripts):
    sizes = [count_tokens(t.text) for t in transcripts]
    assert len(sizes) == PAPER_TRANSCRIPTS
    assert abs(sum(sizes) / len(sizes) - PAPER_MEAN_TOKENS) < 0.005 * PAPER_MEAN_TOKENS
    assert abs(sum(sizes) - PAPER_TOTAL_TOKENS) < 0.005 * PAPER_TOTAL_TOKENS
    # Spread as documented: 0.75x .. 1.25x the mean, to within a sentence.
    assert min(sizes) > 0.74 * PAPER_MEAN_TOKENS and max(sizes) < 1.26 * PAPER_MEAN_TOKENS


def test_transcripts_diverge_from_their_first_tokens(transcripts):
    # The prefix cache must tell transcripts apart: no two share their first line.
    titles = [t.text.splitlines()[0] for t in transcripts]
    assert len(set(titles)) == len(titles)
    assert all(t.text.rstrip().endswith("You may now disconnect.") for t in transcripts)


def test_count_tokens_splits_words_and_punctuation():
    # Revenue / was / $ / 4 / . / 5 / million / , / up / 3 / % / . -> 12
    assert count_tokens("Revenue was $4.5 million, up 3%.") == 12
    assert count_tokens("") == 0


def test_cut_at_sentence_keeps_whole_sentences():
    text = "Revenue was $4.5 million. Margin rose. Guidance is unchanged."
    assert cut_at_sentence(text, 9) == "Revenue was $4.5 million."  # 4.5 is not a sentence end
    assert cut_at_sentence(text, 12) == "Revenue was $4.5 million. Margin rose."
    assert cut_at_sentence(text, 100) == text
    assert cut_at_sentence(text, 3) == "Revenue was $"  # no sentence fits: cut at a token
    # A line end is a boundary too (a title, a speaker's name).
    call = "Acme Q1 Call\n\nOperator:\nGood day to all."
    assert cut_at_sentence(call, 4) == "Acme Q1 Call"
    assert cut_at_sentence(call, 6) == "Acme Q1 Call\n\nOperator:"


def test_paper_spec_is_256_requests_each_transcript_eight_times():
    spec = PromptSpec()
    requests = build_requests(spec)
    assert len(requests) == spec.requests == 256
    assert set(Counter(r.transcript_id for r in requests).values()) == {8}
    assert {r.output_tokens for r in requests} == {512}
    info = summarize(spec, requests)
    assert info.distinct_prompts == 32
    distinct = {r.transcript_id: r.prompt_tokens for r in requests}
    assert info.working_set_tokens == sum(distinct.values())
    assert "32 transcripts x 8 = 256 requests" in info.describe()


def test_order_is_seeded_and_shuffled():
    spec = PromptSpec(transcripts=8, repetitions=4, max_prompt_tokens=200)
    first = [(r.transcript_id, r.repetition) for r in build_requests(spec)]
    assert first == [(r.transcript_id, r.repetition) for r in build_requests(spec)]
    assert first != sorted(first)  # not grouped by transcript
    reseeded = [
        (r.transcript_id, r.repetition)
        for r in build_requests(spec.model_copy(update={"seed": "other"}))
    ]
    assert sorted(reseeded) == sorted(first) and reseeded != first


def test_scaled_down_spec_takes_the_first_transcripts_cut_short(transcripts):
    spec = PromptSpec(transcripts=4, repetitions=2, max_prompt_tokens=300, output_tokens=32)
    requests = build_requests(spec)
    assert len(requests) == 8
    assert {r.transcript_id for r in requests} == {t.id for t in transcripts[:4]}
    full = {t.id: spec.instruction + t.text for t in transcripts}
    for r in requests:
        assert r.prompt.startswith(spec.instruction)
        assert 250 < r.prompt_tokens <= 300 == spec.max_prompt_tokens
        # Cut at a sentence or line end of the whole prompt.
        assert full[r.transcript_id].startswith(r.prompt)
        assert full[r.transcript_id][len(r.prompt)].isspace()
        assert count_tokens(r.prompt) == r.prompt_tokens


def test_even_very_short_prompts_stay_distinct():
    # Overhead-style prompts: each still carries its transcript's title, so none repeats.
    spec = PromptSpec(transcripts=32, repetitions=2, max_prompt_tokens=50, output_tokens=16)
    requests = build_requests(spec)
    assert len({r.prompt for r in requests}) == 32
    assert max(r.prompt_tokens for r in requests) <= 50


def test_guidellm_dataset_has_one_row_per_request_in_order(tmp_path):
    spec = PromptSpec(transcripts=3, repetitions=2, max_prompt_tokens=100, output_tokens=16)
    path = tmp_path / "sub" / "data.jsonl"
    info = write_guidellm_dataset(spec, path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert info.requests == len(rows) == 6
    assert rows == [{"prompt": r.prompt, "output_tokens_count": 16} for r in build_requests(spec)]


def test_more_transcripts_than_the_file_holds_names_the_field():
    with pytest.raises(PromptError, match=r"'transcripts' asks for 33 transcripts.*holds 32"):
        build_requests(PromptSpec(transcripts=33))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a", "title": "t", "text": "x"}\n{oops\n', r"line 2, is not valid JSON"),
        ('{"id": "a", "title": "t"}\n', r"line 1: field 'text'"),
        ("\n", r"holds no transcripts"),
        (
            '{"id": "a", "title": "t", "text": "x"}\n{"id": "a", "title": "u", "text": "y"}\n',
            r"repeats an id",
        ),
    ],
)
def test_bad_transcripts_file_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "calls.jsonl"
    path.write_text(content)
    with pytest.raises(PromptError, match=message) as err:
        load_transcripts(path)
    assert str(path) in str(err.value)


def test_missing_transcripts_file_is_named(tmp_path):
    with pytest.raises(PromptError, match=r"Cannot read transcripts file .*nope\.jsonl"):
        build_requests(PromptSpec(transcripts_file=tmp_path / "nope.jsonl"))
