"""Serving a trained model: load its folder once, classify batches of texts."""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from mlcore.batching import pad, pad_arrays
from mlcore.data import TextDataset
from mlcore.devices import resolve_device
from mlcore.encoding import TRUNCATIONS, encode
from mlcore.loading import load_trained, load_trained_parts
from mlcore.quantize import quantize_dynamic_int8

DEFAULT_MAX_LENGTH = 128  # tokens, for folders without distillery.json
TOKEN_BUDGET = 8192  # padded tokens per forward pass: long texts go in smaller chunks than short ones
PRECISIONS = ("fp32", "int8")
RUNTIMES = ("torch", "onnx")  # what runs the forward pass: PyTorch, or ONNX Runtime (CPU; mlcore.onnxrt)


@dataclass
class Prediction:
    label: str
    probability: float  # of `label`
    probabilities: dict[str, float]  # every label, in label order; sums to 1
    truncated: bool  # the text had more than max_length tokens, so only part of it was read (see truncation)


class Classifier:
    """A trained model ready to classify; safe to share between threads (calls are serialised)."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        label_names: list[str],
        max_length: int,
        model_dir: Path,
        device: torch.device,
        truncation: str = "head",
        precision: str = "fp32",
        runtime: str = "torch",
        temperature: float = 1.0,
    ) -> None:
        number = isinstance(temperature, int | float) and not isinstance(temperature, bool)
        if not (number and math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a number above 0, got {temperature!r}")
        self.model = model  # a PreTrainedModel, or an mlcore.onnxrt.OnnxModel called the same way
        self.precision = precision
        self.runtime = runtime
        self.tokenizer = tokenizer
        self.label_names = label_names
        self.max_length = max_length
        self.model_dir = model_dir
        self.device = device
        self.truncation = truncation  # as in training (mlcore.encoding), so the model reads what it learnt on
        # Probabilities are softmax(logits / temperature): a calibrated model's fitted T (mlcore.calibration), 1
        # otherwise. The top label is the same at any T; how sure the answer says it is changes.
        self.temperature = float(temperature)
        # The Rust tokenizer keeps truncation settings as mutable state, so concurrent calls could clash.
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        model_dir: str | os.PathLike[str],
        *,
        device: str = "cpu",
        max_length: int | None = None,
        truncation: str | None = None,
        precision: str = "fp32",
        runtime: str = "torch",
        threads: int = 0,
        onnx_dir: str | os.PathLike[str] | None = None,
        spin: bool = False,
        temperature: float | None = None,
    ) -> Classifier:
        """Load a folder written by finetune() or distill() (or any HF sequence-classification folder).

        max_length and truncation default to the ones the model was trained with (distillery.json), else
        DEFAULT_MAX_LENGTH and "head". precision "int8" quantises the linear layers dynamically (CPU only).
        runtime "onnx" runs the model in ONNX Runtime on CPU with `threads` threads (0: one per core),
        exporting it the first time into `onnx_dir` (default `<model_dir>/.onnx`; see mlcore.onnxrt), its
        idle threads spinning a moment between calls with `spin` (onnxrt.OnnxModel). temperature defaults to the
        one calibration fitted (distillery.json), else 1.
        """
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        if runtime == "onnx":
            from mlcore import onnxrt

            torch_device = resolve_device(device)
            if torch_device.type != "cpu":
                raise ValueError("the onnx runtime serves on CPU only")
            model = onnxrt.OnnxModel(onnxrt.export(model_dir, precision, onnx_dir), threads, spin=spin)
            tokenizer, label_names, manifest = load_trained_parts(model_dir)
        else:
            model, tokenizer, label_names, manifest = load_trained(model_dir)
            torch_device = resolve_device(device)
            model.to(torch_device).eval()
            if precision == "int8":
                if torch_device.type != "cpu":
                    raise ValueError("int8 dynamic quantisation runs on CPU only")
                model = quantize_dynamic_int8(model)
        length = max_length or int(manifest.get("max_length") or DEFAULT_MAX_LENGTH)
        cut = truncation or manifest.get("truncation") or "head"
        if cut not in TRUNCATIONS:
            raise ValueError(f"truncation must be one of {', '.join(TRUNCATIONS)}, got {cut!r}")
        return cls(
            model,
            tokenizer,
            label_names,
            length,
            Path(model_dir),
            torch_device,
            truncation=cut,
            precision=precision,
            runtime=runtime,
            temperature=temperature if temperature is not None else manifest.get("temperature", 1.0),
        )

    def predict(self, texts: list[str], batch_size: int = 32) -> list[Prediction]:
        """One Prediction per text, in input order."""
        if isinstance(texts, str) or not texts:
            raise ValueError("give a non-empty list of texts")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValueError(f"text {i} is not a string but {type(text).__name__}")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")

        with self._lock:
            rows, truncated = encode(self.tokenizer, texts, self.max_length, truncation=self.truncation)
            # Similar lengths side by side: each batch is padded only to its own longest text.
            order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
            pad_id = self.tokenizer.pad_token_id or 0
            results: list[Prediction | None] = [None] * len(rows)
            for chunk in _chunks(order, [len(r["input_ids"]) for r in rows], batch_size, TOKEN_BUDGET):
                probabilities = self._probabilities([rows[i] for i in chunk], pad_id)
                for i, probs in zip(chunk, probabilities, strict=True):
                    best = max(range(len(probs)), key=probs.__getitem__)
                    results[i] = Prediction(
                        label=self.label_names[best],
                        probability=probs[best],
                        probabilities=dict(zip(self.label_names, probs, strict=True)),
                        truncated=truncated[i],
                    )
        return [r for r in results if r is not None]

    def _probabilities(self, rows: list[dict[str, list[int]]], pad_id: int) -> list[list[float]]:
        """Each row's label probabilities, softmax(logits / temperature), rows padded to the longest."""
        if self.runtime == "onnx":
            return self.model.probabilities(**pad_arrays(rows, pad_id), temperature=self.temperature)
        with torch.inference_mode():
            inputs = {k: v.to(self.device) for k, v in pad(rows, pad_id).items()}
            logits = self.model(**inputs).logits.float()
            if self.temperature != 1.0:
                logits = logits / self.temperature
            return logits.softmax(dim=-1).cpu().tolist()


def accuracy(classifier: Classifier, dataset: TextDataset, *, chunk: int = 2048) -> float | None:
    """The share of `dataset`'s rows whose predicted label is the row's own (None for no rows), predicting at
    most `chunk` texts at a time (their token ids are held together) in batches of 32."""
    if not len(dataset):
        return None
    correct = 0
    for start in range(0, len(dataset), chunk):
        predictions = classifier.predict(dataset.texts[start : start + chunk], batch_size=32)
        labels = dataset.labels[start : start + chunk]
        correct += sum(p.label == dataset.label_names[y] for p, y in zip(predictions, labels, strict=True))
    return correct / len(dataset)


def _chunks(order: list[int], lengths: list[int], max_rows: int, token_budget: int) -> list[list[int]]:
    """Split indices sorted by ascending length into chunks of at most max_rows rows and, padded to their
    longest row, at most token_budget tokens (always at least one row)."""
    chunks: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) >= max_rows or (len(current) + 1) * lengths[i] > token_budget):
            chunks.append(current)
            current = []
        current.append(i)
    if current:
        chunks.append(current)
    return chunks
