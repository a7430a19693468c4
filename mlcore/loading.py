"""Loading models and tokenizers, with one clear error when that fails."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from mlcore.artifacts import check_label_names, check_manifest, read_manifest
from mlcore.catalogue import resolve_model


class ModelLoadError(ValueError):
    """A base model, teacher or trained model that cannot be loaded; the message names it and says why."""


def load_for_training(model_id: str, label_names: list[str]) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A sequence classifier with a new head for `label_names`, and its tokenizer, from a catalogue id,
    hub id or folder. The label names go into the model config so a saved model knows them."""
    try:
        source = resolve_model(model_id)
        tokenizer = _load_tokenizer(source)
        model = AutoModelForSequenceClassification.from_pretrained(
            source,
            num_labels=len(label_names),
            id2label=dict(enumerate(label_names)),
            label2id={name: i for i, name in enumerate(label_names)},
            # A fine-tuned folder may come with a head for other labels; it is replaced, not an error.
            ignore_mismatched_sizes=True,
            # transformers 5 keeps a checkpoint's stored dtype; training keeps fp32 master weights (bf16 is
            # autocast), so a bf16 copy of a model does not silently train in bf16.
            dtype=torch.float32,
        )
    except Exception as e:  # from_pretrained fails in many ways (OSError, ValueError, hub errors, ...)
        raise ModelLoadError(f"could not load model {model_id!r}: {e}") from e
    return model, tokenizer


def load_trained(
    model_dir: str | os.PathLike[str], *, strict: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, list[str], dict]:
    """A model saved by finetune() or distill(): (model, tokenizer, label names, distillery.json contents).

    strict, for a folder from outside (an import): distillery.json and the label names are checked against the
    model's config first (mlcore.artifacts.check_manifest), and a field that fails is a ModelLoadError naming it."""
    tokenizer, label_names, manifest = load_trained_parts(model_dir, strict=strict)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), dtype=torch.float32)
    except Exception as e:
        raise ModelLoadError(f"could not load model {str(model_dir)!r}: {e}") from e
    return model, tokenizer, label_names, manifest


def load_trained_parts(
    model_dir: str | os.PathLike[str], *, strict: bool = False
) -> tuple[PreTrainedTokenizerBase, list[str], dict]:
    """What a trained folder holds beside its weights: (tokenizer, label names, distillery.json contents);
    strict as in load_trained."""
    folder = Path(model_dir)
    try:
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"no config.json in {str(folder)!r}")
        manifest = read_manifest(folder)
        tokenizer = _load_tokenizer(str(folder))
        config = AutoConfig.from_pretrained(str(folder))
        if strict:
            positions = getattr(config, "max_position_embeddings", None)
            check_manifest(manifest, num_labels=config.num_labels, max_positions=positions)
        label_names = list(manifest.get("label_names") or [config.id2label[i] for i in range(len(config.id2label))])
        if strict:  # from config.json's id2label when distillery.json has none
            check_label_names(label_names, config.num_labels, "config.json's id2label")
    except Exception as e:
        raise ModelLoadError(f"could not load model {str(model_dir)!r}: {e}") from e
    return tokenizer, label_names, manifest


def check_max_length(model: PreTrainedModel, max_length: int) -> None:
    """Refuse a max_length beyond the model's position embeddings (it would fail mid-training)."""
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and max_length > limit:
        raise ModelLoadError(f"max_length {max_length} is more than this model supports ({limit} tokens)")


def _load_tokenizer(source: str) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(source)
    # Truncation flags and batching rely on the Rust tokenizer's encodings.
    if not tokenizer.is_fast:
        raise ValueError("it has no fast (tokenizers) tokenizer")
    return tokenizer
