"""Helpers for tests (mlcore's and the platform's): a tiny random BERT, a learnable toy dataset, a gzip
decompression bomb, and a callback that records what it is told. Nothing here is used in production."""

from __future__ import annotations

import gzip
import os
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlcore.callbacks import Callback, Phase

_POSITIVE = ("good", "great", "excellent", "wonderful", "amazing", "brilliant", "loved", "enjoyed", "fun", "beautiful")
_NEGATIVE = ("bad", "awful", "terrible", "boring", "hated", "worst", "dull", "poor", "waste", "disappointing")
_NEUTRAL = ("okay", "average", "fine", "mixed", "decent", "ordinary")
_FILLER = (
    "the", "a", "movie", "film", "plot", "acting", "story", "was", "is", "it", "this", "i", "really", "very",
    "and", "with", "cast", "ending", "script", "scenes", "music", "characters", "but", "so", "quite", "overall",
    "watched", "again", "time", "of",
)  # fmt: skip
_SENTIMENT = {"positive": _POSITIVE, "negative": _NEGATIVE, "neutral": _NEUTRAL}
DEFAULT_WORDS = (*_FILLER, *_POSITIVE, *_NEGATIVE, *_NEUTRAL, ",", ".", "!")
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def make_tiny_bert(
    path: str | os.PathLike[str],
    *,
    words: Iterable[str] = DEFAULT_WORDS,
    num_layers: int = 4,
    hidden_size: int = 32,
    num_heads: int = 2,
    intermediate_size: int = 64,
    max_position: int = 128,
    seed: int = 0,
) -> Path:
    """Write a randomly initialised BERT classifier folder (config, safetensors, vocab.txt, fast tokenizer)
    that AutoModelForSequenceClassification and AutoTokenizer load like a real one, in well under a second."""
    import torch  # local: mlcore.testing is also imported for sentiment_rows by torch-free tests
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = list(dict.fromkeys((*SPECIAL_TOKENS, *(w.lower() for w in words))))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=True, model_max_length=max_position)
    tokenizer.save_pretrained(folder)

    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position,
        pad_token_id=0,
    )
    # A private RNG stream: the caller's torch seed is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertForSequenceClassification(config)
    model.save_pretrained(folder)
    return folder


def sentiment_rows(n: int, seed: int = 0, *, num_labels: int = 2) -> list[tuple[str, str]]:
    """n (text, label) pairs of short reviews whose label follows from their sentiment words, with labels
    "positive", "negative" (and "neutral" when num_labels is 3), balanced and shuffled."""
    if num_labels not in (2, 3):
        raise ValueError("num_labels must be 2 or 3")
    labels = ("positive", "negative", "neutral")[:num_labels]
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = labels[i % num_labels]
        words = rng.sample(_FILLER, rng.randint(3, 7)) + rng.sample(_SENTIMENT[label], rng.randint(1, 2))
        rng.shuffle(words)
        rows.append((" ".join(words) + rng.choice((".", "!", " .")), label))
    rng.shuffle(rows)
    return rows


def write_gzip_bomb(path: str | os.PathLike[str], cell_mib: int) -> Path:
    """Write a gzip CSV (header text,label) of one row whose text is `cell_mib` MiB of "a": a decompression
    bomb, written a MiB at a time. 500 MiB comes to about 510 KB, as in the upload that raised issue 16."""
    chunk = b"a" * 2**20
    with gzip.GzipFile(path, "wb", compresslevel=9, mtime=0) as gz:
        gz.write(b"text,label\n")
        for _ in range(cell_mib):
            gz.write(chunk)
        gz.write(b",pos\n")
    return Path(path)


def learnt(batches: list[tuple[int, int, dict[str, float]]]) -> list[tuple[int, int, dict[str, float]]]:
    """Batch reports without what the wall clock and the process decide (throughput, memory: mlcore.usage), which
    no two runs share: what training computed, for comparing runs."""
    return [
        (step, total, {k: v for k, v in m.items() if k != "train/samples_per_s" and not k.startswith("system/")})
        for step, total, m in batches
    ]


class RecordingCallback(Callback):
    """Keeps every call; should_stop() turns True once stop_after batches have ended."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after = stop_after
        self.info: dict[str, Any] | None = None
        self.batches: list[tuple[int, int, dict[str, float]]] = []
        self.evaluations: list[tuple[str, int, dict[str, float]]] = []
        self.checkpoints: list[tuple[int, str]] = []
        self.phases: list[Phase] = []

    def on_phase(self, phase: Phase) -> None:
        self.phases.append(phase)

    def on_train_begin(self, info: dict[str, Any]) -> None:
        self.info = info

    def on_batch_end(self, step: int, total_steps: int, metrics: dict[str, float]) -> None:
        self.batches.append((step, total_steps, metrics))

    def on_evaluate(self, split: str, step: int, metrics: dict[str, float]) -> None:
        self.evaluations.append((split, step, metrics))

    def on_checkpoint(self, step: int, path: str) -> None:
        self.checkpoints.append((step, path))

    def should_stop(self) -> bool:
        return self.stop_after is not None and len(self.batches) >= self.stop_after
