"""head keeps a long text's start; head_tail keeps a quarter of max_length from its start and the rest from its
end, in training, evaluation and serving alike."""

from __future__ import annotations

import json
import random

import pytest
from transformers import AutoTokenizer

from mlcore.config import TrainConfig
from mlcore.data import TextDataset
from mlcore.encoding import encode
from mlcore.inference import Classifier
from mlcore.testing import _FILLER, _NEGATIVE, _POSITIVE, DEFAULT_WORDS
from mlcore.train import finetune

from .conftest import TINY_TRAINING

# Reliable on the long texts below: head_tail reaches 1.0 test accuracy on seeds 0-7 (3e-3 fails on 1 in 8).
SETTINGS = {"epochs": 6, "learning_rate": 2e-3}
WORDS = [w for w in DEFAULT_WORDS if w.isalpha()]  # one token each in the tiny BERT's vocabulary


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    return AutoTokenizer.from_pretrained(tiny_bert)


def ids_of(tokenizer, words: list[str]) -> list[int]:
    return tokenizer.convert_tokens_to_ids(words)


def test_head_truncation_gives_exactly_the_tokenizers_own_truncation(tokenizer):
    texts = [" ".join(WORDS[: n % len(WORDS)] * 2) for n in range(0, 60, 7)]
    rows, truncated = encode(tokenizer, texts, 16, truncation="head")
    expected = tokenizer(texts, truncation=True, max_length=16)["input_ids"]
    assert [r["input_ids"] for r in rows] == expected
    assert truncated == [len(tokenizer(t)["input_ids"]) > 16 for t in texts]


def test_head_tail_keeps_the_first_quarter_and_the_last_tokens_with_cls_and_sep(tokenizer):
    words = WORDS[:40]
    (row,), (cut,) = encode(tokenizer, [" ".join(words)], 16, truncation="head_tail")
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    # 16 = [CLS] + 4 head tokens (16 // 4) + 10 tail tokens + [SEP]
    assert row["input_ids"] == [cls, *ids_of(tokenizer, words[:4]), *ids_of(tokenizer, words[-10:]), sep]
    assert cut is True


def test_head_tail_at_512_keeps_128_head_and_382_tail_tokens_as_sun_et_al(tokenizer):
    words = [WORDS[i % len(WORDS)] for i in range(1000)]
    (row,), _ = encode(tokenizer, [" ".join(words)], 512, truncation="head_tail")
    ids = row["input_ids"]
    assert len(ids) == 512
    assert ids[1:129] == ids_of(tokenizer, words[:128])
    assert ids[129:511] == ids_of(tokenizer, words[-382:])


def test_a_text_that_fits_is_left_whole_by_both(tokenizer):
    text = " ".join(WORDS[:14])  # 14 + 2 special tokens = 16
    for truncation in ("head", "head_tail"):
        (row,), (cut,) = encode(tokenizer, [text], 16, truncation=truncation)
        assert row["input_ids"] == tokenizer(text)["input_ids"] and cut is False


def verdict_at_the_end(n: int, seed: int) -> TextDataset:
    """Long reviews whose only sentiment words are their last four: only a model that reads the tail learns them."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = ("negative", "positive")[i % 2]
        words = rng.choices(_NEGATIVE if label == "negative" else _POSITIVE, k=4)
        rows.append((" ".join(rng.choices(_FILLER, k=50) + words), label))
    return TextDataset.from_rows(rows)


@pytest.fixture(scope="module")
def tail_models(tiny_bert, tmp_path_factory):
    data = verdict_at_the_end(160, seed=0)
    out = tmp_path_factory.mktemp("truncation")
    return {
        cut: finetune(data, str(tiny_bert), out / cut, TrainConfig(**{**TINY_TRAINING, **SETTINGS, "truncation": cut}))
        for cut in ("head", "head_tail")
    }


def test_only_head_tail_training_and_evaluation_see_a_verdict_at_the_end(tail_models):
    assert tail_models["head_tail"].metrics["test/accuracy"] >= 0.9
    assert tail_models["head_tail"].metrics["val/accuracy"] >= 0.9
    assert tail_models["head"].metrics["test/accuracy"] <= 0.75


def test_the_classifier_serves_with_the_truncation_the_model_was_trained_with(tail_models):
    folder = tail_models["head_tail"].output_dir
    assert json.loads((folder / "distillery.json").read_text())["truncation"] == "head_tail"
    classifier = Classifier.load(folder)
    assert classifier.truncation == "head_tail"
    fresh = verdict_at_the_end(40, seed=99)
    predictions = classifier.predict(fresh.texts)
    correct = sum(p.label == fresh.label_names[y] for p, y in zip(predictions, fresh.labels, strict=True))
    assert correct / len(fresh) >= 0.9
    # Read head-only, the same model no longer sees the verdict.
    head_only = Classifier.load(folder, truncation="head").predict(fresh.texts)
    assert [p.probabilities for p in head_only] != [p.probabilities for p in predictions]


def test_a_model_without_a_truncation_setting_serves_head_first(finetuned):
    assert Classifier.load(finetuned.result.output_dir).truncation == "head"
