"""The offline tokenizer: built from the project's prompts without any download, byte for byte
the same on every build, reused from the cache, and loadable by AutoTokenizer offline."""

from __future__ import annotations

import importlib.util

import pytest

from pytest_k8sai.gaie import tokenizer as tok
from pytest_k8sai.gaie.prompts import load_transcripts

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None
    or importlib.util.find_spec("tokenizers") is None,
    reason="transformers/tokenizers not installed (they come with guidellm: pip install -e .)",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return tok.tokenizer_dir(root=tmp_path_factory.mktemp("cache"))


def test_build_is_deterministic_and_cached(built, tmp_path):
    again = tok.tokenizer_dir(root=tmp_path)
    assert again.name == built.name  # same inputs, same digest
    assert (again / "tokenizer.json").read_bytes() == (built / "tokenizer.json").read_bytes()
    stamp = (built / "tokenizer.json").stat().st_mtime_ns
    assert tok.tokenizer_dir(root=built.parents[1]) == built
    assert (built / "tokenizer.json").stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert not [p for p in built.parent.iterdir() if p.name.startswith(".build-")]


def test_autotokenizer_loads_it_offline_and_round_trips(built, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(str(built))
    text = load_transcripts()[0].text[:2000]
    ids = loaded.encode(text)
    assert loaded.decode(ids) == text  # byte-level: lossless
    assert len(ids) < len(text) / 2  # it learned the corpus' words, not just bytes
    chat = loaded.apply_chat_template(
        [{"role": "user", "content": [{"type": "text", "text": "Summarize."}]}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert chat == "<|user|>\nSummarize.\n<|assistant|>\n"
