"""An offline tokenizer directory for GuideLLM, built by the project: never a hub download.

GuideLLM loads tokenizers with ``AutoTokenizer.from_pretrained(...)``; given a model name it would
fetch one from the Hugging Face hub, which this project never does. :func:`tokenizer_dir`
trains a byte-level BPE (the ``tokenizers`` library) on the project's own prompt text, the
earnings-call transcripts and the summarization instruction, and saves it with ``transformers``
so that ``AutoTokenizer.from_pretrained(DIR)`` loads it with ``HF_HUB_OFFLINE=1``.

It is built on first use (a few seconds) under the project cache, in a directory named after a
digest of everything that shapes it (training text, vocabulary size, library versions), so a
change of any of them builds a new one and an unchanged one is reused. Training is
deterministic: the same inputs give the same ``tokenizer.json`` bytes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

from pytest_k8sai.clusters.local.build import cache_root
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.gaie.prompts import DEFAULT_INSTRUCTION, load_transcripts

VOCAB_SIZE = 4096
EOS = "<|endoftext|>"
# A plain role-tagged template: enough for apply_chat_template, nothing model specific.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'text' %}"
    "{{ part['text'] }}{% endif %}{% endfor %}{% endif %}{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
# Bump when the recipe below changes in a way the digest would not see.
RECIPE = "byte-level-bpe/v1"


class TokenizerError(K8saiError):
    """The offline tokenizer cannot be built or loaded."""


def _versions() -> str:
    try:
        return f"tokenizers {metadata.version('tokenizers')}, transformers " + metadata.version(
            "transformers"
        )
    except metadata.PackageNotFoundError as exc:
        raise TokenizerError(
            f"Building the offline tokenizer needs the Python package '{exc.name}', which is "
            "not installed; it comes with GuideLLM: pip install -e . (pyproject dependencies)."
        ) from None


def training_texts(transcripts_file: Path | None = None) -> list[str]:
    """The text the tokenizer learns from: the instruction and every transcript."""
    return [DEFAULT_INSTRUCTION] + [t.text for t in load_transcripts(transcripts_file)]


def tokenizer_dir(transcripts_file: Path | None = None, root: Path | None = None) -> Path:
    """A directory ``AutoTokenizer.from_pretrained`` loads offline; built once, then reused."""
    texts = training_texts(transcripts_file)
    digest = hashlib.sha256()
    for part in (RECIPE, str(VOCAB_SIZE), EOS, CHAT_TEMPLATE, _versions(), *texts):
        digest.update(part.encode())
        digest.update(b"\0")
    base = (root or cache_root()) / "tokenizers"
    target = base / f"earnings-bpe-{digest.hexdigest()[:16]}"
    if (target / "tokenizer.json").is_file():
        return target
    base.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename: a concurrent or interrupted build never leaves a
    # half-written directory where a reader would take it for a finished one.
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=base))
    try:
        _train(texts, tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared like the Go builds
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "tokenizer.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _train(texts: list[str], out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, pad_token=EOS, model_max_length=131072
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(out))
