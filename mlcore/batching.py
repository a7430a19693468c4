"""Token ids to tensor batches: each split is tokenised once, then every batch is padded only to its own
longest row.

A batch is a dict: "labels" (LongTensor) plus one dict of model inputs per tokenizer, "inputs" for the model
being trained and "teacher_inputs" for a teacher whose tokenizer differs from its student's; a training batch
also carries "index", its rows' positions in the training split. Training batches
come from TrainBatches (length-grouped, reproducible per epoch, see mlcore.sampling); evaluation batches from a
DataLoader that runs shortest rows first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from transformers import PreTrainedTokenizerBase

from mlcore.data import TextDataset
from mlcore.devices import pin
from mlcore.encoding import Encoding, encode
from mlcore.sampling import batch_order, resolve_grouping

__all__ = [
    "Batch",
    "Collator",
    "EncodedRows",
    "Encoding",
    "TrainBatches",
    "encode",
    "pad",
    "pad_arrays",
    "split_loaders",
]

Batch = dict[str, Any]
Sharding = Callable[[list[int]], tuple[list[int], float]]


class EncodedRows(Dataset[dict[str, Any]]):
    """Labels plus one or more aligned encodings per row (e.g. inputs=..., teacher_inputs=...)."""

    def __init__(self, labels: Sequence[int], **encodings: Sequence[Encoding]) -> None:
        if any(len(rows) != len(labels) for rows in encodings.values()):
            raise ValueError("every encoding needs one row per label")
        self.labels = labels
        self.encodings = encodings
        self.truncated: list[bool] = [False] * len(labels)  # each row cut at max_length (split_loaders sets it)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"labels": self.labels[i], **{name: rows[i] for name, rows in self.encodings.items()}}

    def length(self, i: int) -> int:
        return max(len(rows[i]["input_ids"]) for rows in self.encodings.values())


class Collator:
    """Pads each encoding of a batch to the batch's longest row; pad_ids maps encoding name to pad token id.

    An encoding whose rows all have the same length (most batches of long texts once grouped by length) goes
    without an attention mask: to a transformers model no mask means every token counts, which is what an
    all-ones mask says, with the same numbers. With a mask the model would check on every forward pass whether
    it is all ones (`mask.all()` in transformers' masking_utils), and that check makes the host wait for the
    GPU; the collator knows the answer for free from the row lengths.
    """

    def __init__(self, pad_ids: dict[str, int]) -> None:
        self.pad_ids = pad_ids

    def __call__(self, rows: list[dict[str, Any]]) -> Batch:
        batch: Batch = {"labels": torch.tensor([r["labels"] for r in rows], dtype=torch.long)}
        for name, pad_id in self.pad_ids.items():
            encodings = [r[name] for r in rows]
            batch[name] = pad(encodings, pad_id)
            if len({len(e["input_ids"]) for e in encodings}) == 1:
                del batch[name]["attention_mask"]
        return batch


def pad(encodings: list[Encoding], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest: input_ids with pad_id; attention_mask is 1 on real tokens, 0 on padding.

    Any other key an encoding carries (token_type_ids from an older caller) is padded with 0.
    """
    return {key: torch.from_numpy(array) for key, array in pad_arrays(encodings, pad_id).items()}


def pad_arrays(encodings: list[Encoding], pad_id: int) -> dict[str, np.ndarray]:
    """pad() as int64 NumPy arrays: what ONNX Runtime takes, and pad()'s tensors share their memory."""
    longest = max(len(e["input_ids"]) for e in encodings)
    shape = (len(encodings), longest)
    out = {"input_ids": np.full(shape, pad_id, dtype=np.int64), "attention_mask": np.zeros(shape, dtype=np.int64)}
    others = {key: np.zeros(shape, dtype=np.int64) for key in encodings[0].keys() - out.keys()}
    for i, e in enumerate(encodings):
        n = len(e["input_ids"])
        out["input_ids"][i, :n] = e["input_ids"]
        out["attention_mask"][i, :n] = 1
        for key, array in others.items():
            array[i, : len(e[key])] = e[key]
    return out | others


class TrainBatches:
    """The training rows as batches, epoch by epoch; len() is the number of batches per epoch.

    epoch(e, start) yields epoch e's batches from batch index `start` on, which is how a resumed run picks up
    where its checkpoint left off; by_length(n) every row once, shortest first, for a pass that does not train.
    Each batch's "index" holds its rows' positions. With pin_memory (CUDA) each batch comes back page-locked.
    """

    def __init__(
        self,
        rows: EncodedRows,
        pad_ids: dict[str, int],
        batch_size: int,
        *,
        seed: int,
        group_by_length: bool | str,
        pin_memory: bool = False,
        cuda_graphs: bool = False,
    ) -> None:
        self.rows = rows
        self.collate = Collator(pad_ids)
        self.batch_size = batch_size
        self.seed = seed
        self.pin_memory = pin_memory
        self.lengths = [rows.length(i) for i in range(len(rows))]
        # Decided once from the rows' lengths, so a resumed run decides the same.
        self.group_by_length = resolve_grouping(
            group_by_length, self.lengths, batch_size, seed=seed, cuda_graphs=cuda_graphs
        )
        self.dataset = rows  # as on a DataLoader, so len(batches.dataset) counts rows

    def __len__(self) -> int:
        return -(-len(self.rows) // self.batch_size)

    def order(self, epoch: int) -> list[list[int]]:
        return batch_order(
            self.lengths, self.batch_size, seed=self.seed, epoch=epoch, group_by_length=self.group_by_length
        )

    def epoch(self, epoch: int, start: int = 0, shard: Sharding | None = None) -> Iterator[Batch]:
        """With `shard` (mlcore.parallel.Group.shard: this rank's rows of a global batch and their share of it),
        each batch is this rank's part of the global batch, with its share as a 0-d tensor under "share"."""
        for indices in self.order(epoch)[start:]:
            if shard is None:
                yield self._batch(indices)
                continue
            mine, share = shard(indices)
            yield self._batch(mine) | {"share": torch.tensor(share)}

    def by_length(self, batch_size: int) -> Iterator[Batch]:
        order = sorted(range(len(self.rows)), key=self.lengths.__getitem__)
        for begin in range(0, len(order), batch_size):
            yield self._batch(order[begin : begin + batch_size])

    def _batch(self, indices: list[int]) -> Batch:
        batch = self.collate([self.rows[i] for i in indices])
        batch["index"] = torch.tensor(indices, dtype=torch.long)
        return pin(batch) if self.pin_memory else batch


def make_loader(rows: EncodedRows, pad_ids: dict[str, int], batch_size: int, *, pin_memory: bool = False) -> DataLoader:
    """An evaluation loader that runs shortest rows first: order changes no metric, and similar lengths side by
    side cut padding."""
    order = sorted(range(len(rows)), key=rows.length)
    return DataLoader(rows, batch_size=batch_size, sampler=order, collate_fn=Collator(pad_ids), pin_memory=pin_memory)


def split_loaders(
    splits: dict[str, TextDataset],
    tokenizers: dict[str, PreTrainedTokenizerBase],
    *,
    max_length: int,
    batch_size: int,
    seed: int,
    truncation: str = "head",
    group_by_length: bool | str = "auto",
    pin_memory: bool = False,
    cuda_graphs: bool = False,
) -> dict[str, Any]:
    """{"train": TrainBatches, "valid": DataLoader, "test": DataLoader}. `tokenizers` maps an input name
    ("inputs", "teacher_inputs") to the tokenizer that encodes it; each split is tokenised once, here.
    cuda_graphs: unpadded training batches will replay from CUDA graphs (it weighs in group_by_length "auto")."""
    pad_ids = {name: tok.pad_token_id if tok.pad_token_id is not None else 0 for name, tok in tokenizers.items()}
    loaders: dict[str, Any] = {}
    for split_name, ds in splits.items():
        encoded = {name: encode(tok, ds.texts, max_length, truncation=truncation) for name, tok in tokenizers.items()}
        rows = EncodedRows(ds.labels, **{name: enc for name, (enc, _) in encoded.items()})
        rows.truncated = encoded["inputs"][1] if "inputs" in encoded else rows.truncated
        if split_name == "train":
            loaders[split_name] = TrainBatches(
                rows, pad_ids, batch_size, seed=seed, group_by_length=group_by_length, pin_memory=pin_memory,
                cuda_graphs=cuda_graphs,
            )
        else:
            loaders[split_name] = make_loader(rows, pad_ids, batch_size, pin_memory=pin_memory)
    return loaders
