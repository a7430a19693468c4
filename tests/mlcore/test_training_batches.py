"""Training batches come from one up-front tokenisation, grouped by length and padded to their own longest row."""

from __future__ import annotations

import random

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from mlcore.batching import Collator, pad, pad_arrays, split_loaders
from mlcore.data import TextDataset
from mlcore.testing import DEFAULT_WORDS


def varied_dataset(n: int = 192) -> TextDataset:
    rng = random.Random(0)
    rows = [
        (" ".join(rng.choices(DEFAULT_WORDS, k=rng.randint(2, 60))), ("negative", "positive")[i % 2]) for i in range(n)
    ]
    return TextDataset.from_rows(rows)


def train_batches(tiny_bert, *, group: bool):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    loaders = split_loaders(
        {"train": varied_dataset()}, {"inputs": tokenizer},
        max_length=64, batch_size=8, seed=0, group_by_length=group,
    )  # fmt: skip
    return loaders["train"]


def test_each_batch_is_padded_to_its_own_longest_row_with_a_matching_attention_mask(tiny_bert):
    batches = train_batches(tiny_bert, group=True)
    for batch in batches.epoch(0):
        inputs = batch["inputs"]
        if "attention_mask" not in inputs:  # every row as long as the batch: nothing to mask
            assert (inputs["input_ids"] != 0).all()
            continue
        real = inputs["attention_mask"].sum(dim=1)
        assert inputs["input_ids"].shape[1] == int(real.max())
        # Padding (id 0 in the tiny BERT's vocabulary) sits exactly where the mask is 0.
        assert torch.equal(inputs["input_ids"] != 0, inputs["attention_mask"].bool())
        assert not inputs["attention_mask"].all()


def test_a_batch_without_padding_gives_the_model_no_mask_and_the_same_logits(tiny_bert):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert).eval()
    collate = Collator({"inputs": tokenizer.pad_token_id})
    rows = [{"labels": 0, "inputs": {"input_ids": [2, 10 + i, 11, 12, 3]}} for i in range(4)]
    assert set(collate(rows)["inputs"]) == {"input_ids"}
    assert set(collate([*rows, {"labels": 1, "inputs": {"input_ids": [2, 3]}}])["inputs"]) == {
        "input_ids", "attention_mask",
    }  # fmt: skip
    batch = collate(rows)
    ids = batch["inputs"]["input_ids"]
    with torch.no_grad():
        unmasked = model(input_ids=ids).logits
        masked = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    assert torch.equal(unmasked, masked)


def test_pad_right_pads_every_key_to_the_longest_row() -> None:
    rows = [{"input_ids": [5, 6, 7], "token_type_ids": [0, 1, 1]}, {"input_ids": [8], "token_type_ids": [1]}]
    arrays = pad_arrays(rows, pad_id=3)
    assert arrays["input_ids"].tolist() == [[5, 6, 7], [8, 3, 3]]
    assert arrays["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert arrays["token_type_ids"].tolist() == [[0, 1, 1], [1, 0, 0]]
    tensors = pad(rows, pad_id=3)
    assert {k: v.dtype for k, v in tensors.items()} == dict.fromkeys(arrays, torch.int64)
    assert {k: v.tolist() for k, v in tensors.items()} == {k: v.tolist() for k, v in arrays.items()}


def test_grouped_training_batches_carry_at_most_70_percent_of_the_tokens_of_random_ones(tiny_bert):
    def tokens(group: bool) -> int:
        return sum(b["inputs"]["input_ids"].numel() for b in train_batches(tiny_bert, group=group).epoch(0))

    assert tokens(True) < 0.7 * tokens(False)


def test_a_resumed_epoch_yields_the_rest_of_the_same_batches(tiny_bert):
    batches = train_batches(tiny_bert, group=True)
    whole = [b["labels"].tolist() + b["inputs"]["input_ids"].flatten().tolist() for b in batches.epoch(1)]
    rest = [b["labels"].tolist() + b["inputs"]["input_ids"].flatten().tolist() for b in batches.epoch(1, start=5)]
    assert len(whole) == len(batches) == 24 and rest == whole[5:]


def test_auto_grouping_is_decided_from_the_rows_and_reported_to_the_callback(tiny_bert, long_reviews, tmp_path):
    from mlcore.config import TrainConfig
    from mlcore.testing import RecordingCallback
    from mlcore.train import finetune

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    varied = split_loaders({"train": varied_dataset()}, {"inputs": tokenizer}, max_length=64, batch_size=8, seed=0)
    assert varied["train"].group_by_length is True  # 2 to 60 words: grouping cuts the padding
    full = split_loaders({"train": long_reviews}, {"inputs": tokenizer}, max_length=16, batch_size=8, seed=0)
    assert full["train"].group_by_length is False  # every row is cut to 16 tokens: nothing to save
    for data, max_length, grouped in ((varied_dataset(), 64, True), (long_reviews, 16, False)):
        callback = RecordingCallback()
        config = TrainConfig(max_length=max_length, batch_size=8, epochs=1, max_train_samples=32, device="cpu")
        finetune(data, str(tiny_bert), tmp_path / f"m{max_length}", config, callback)
        assert callback.info["group_by_length"] is grouped
