"""Texts to tensor batches: tokenise each split once, then pad every batch only to its own longest row.

A batch is a dict: "labels" (LongTensor) plus one dict of model inputs per tokenizer, "inputs" for the model
being trained and "teacher_inputs" for a teacher whose tokenizer differs from its student's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from transformers import PreTrainedTokenizerBase

from mlcore.data import TextDataset

Encoding = dict[str, list[int]]
Batch = dict[str, Any]


def encode(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int
) -> tuple[list[Encoding], list[bool]]:
    """Token ids (head-truncated to max_length) per text, and whether each text had to be truncated."""
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    keys = list(enc.keys())
    rows = [{k: enc[k][i] for k in keys} for i in range(len(texts))]
    if enc.encodings is not None:
        # A fast tokenizer keeps the cut-off tokens in `overflowing`, which saves tokenising twice.
        truncated = [bool(e.overflowing) for e in enc.encodings]
    else:  # pragma: no cover - only slow tokenizers, which load_tokenizer never returns
        truncated = [len(r["input_ids"]) >= max_length for r in rows]
    return rows, truncated


class EncodedRows(Dataset[dict[str, Any]]):
    """Labels plus one or more aligned encodings per row (e.g. inputs=..., teacher_inputs=...)."""

    def __init__(self, labels: Sequence[int], **encodings: Sequence[Encoding]) -> None:
        if any(len(rows) != len(labels) for rows in encodings.values()):
            raise ValueError("every encoding needs one row per label")
        self.labels = labels
        self.encodings = encodings

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"labels": self.labels[i], **{name: rows[i] for name, rows in self.encodings.items()}}

    def length(self, i: int) -> int:
        return max(len(rows[i]["input_ids"]) for rows in self.encodings.values())


@dataclass(frozen=True)
class Collator:
    """Pads each encoding of a batch to the batch's longest row; pad_ids maps encoding name to pad token id."""

    pad_ids: dict[str, int]

    def __call__(self, rows: list[dict[str, Any]]) -> Batch:
        batch: Batch = {"labels": torch.tensor([r["labels"] for r in rows], dtype=torch.long)}
        for name, pad_id in self.pad_ids.items():
            batch[name] = pad([r[name] for r in rows], pad_id)
        return batch


def pad(encodings: list[Encoding], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest: input_ids with pad_id, attention_mask and token_type_ids with 0."""
    longest = max(len(e["input_ids"]) for e in encodings)
    return {
        key: torch.tensor(
            [e[key] + [pad_id if key == "input_ids" else 0] * (longest - len(e[key])) for e in encodings],
            dtype=torch.long,
        )
        for key in encodings[0]
    }


def make_loader(
    rows: EncodedRows, pad_ids: dict[str, int], batch_size: int, *, shuffle: bool, seed: int = 0
) -> DataLoader:
    """A loader that reshuffles every epoch from `seed` when shuffle, else runs shortest rows first.

    Evaluation order does not change any metric, and grouping similar lengths cuts padding (CPU time).
    """
    collate = Collator(pad_ids)
    if shuffle:
        generator = torch.Generator().manual_seed(seed)
        return DataLoader(rows, batch_size=batch_size, shuffle=True, generator=generator, collate_fn=collate)
    order = sorted(range(len(rows)), key=rows.length)
    return DataLoader(rows, batch_size=batch_size, sampler=order, collate_fn=collate)


def to_device(batch: Batch, device: torch.device) -> Batch:
    """The batch with every tensor (nested one level in input dicts) on `device`."""
    return {
        key: value.to(device) if isinstance(value, torch.Tensor) else {k: v.to(device) for k, v in value.items()}
        for key, value in batch.items()
    }


def split_loaders(
    splits: dict[str, TextDataset],
    tokenizers: dict[str, PreTrainedTokenizerBase],
    *,
    max_length: int,
    batch_size: int,
    seed: int,
) -> dict[str, DataLoader]:
    """One loader per split; "train" is shuffled. `tokenizers` maps an input name ("inputs",
    "teacher_inputs") to the tokenizer that encodes it."""
    pad_ids = {name: tok.pad_token_id if tok.pad_token_id is not None else 0 for name, tok in tokenizers.items()}
    loaders = {}
    for split_name, ds in splits.items():
        encodings = {name: encode(tok, ds.texts, max_length)[0] for name, tok in tokenizers.items()}
        rows = EncodedRows(ds.labels, **encodings)
        loaders[split_name] = make_loader(rows, pad_ids, batch_size, shuffle=split_name == "train", seed=seed)
    return loaders
