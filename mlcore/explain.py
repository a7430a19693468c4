"""Why did the classifier say that? One text's prediction with its last-layer attention and per-token
gradient x input importance, computed on demand (one forward and one backward pass on one text).

Attention shows where the model looked, not why it decided: the classification head reads the first token's
final state, so `cls_attention` is the most relevant row, but attention weights are not attributions (Jain &
Wallace 2019, "Attention is not Explanation"). Gradient x input (Shrikumar et al. 2016) is a signed, first-order
estimate of each token's contribution to the explained label's log-probability: cheap, and exact for how it moves
when a token's embedding is scaled a little. The log-probability, not the raw logit: it rises only as the label
gains on the others, so a positive value means "towards this label" whichever label is explained (for two labels,
explaining one is the mirror image of explaining the other), and a raw logit that every label's rises with says
nothing of the choice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from mlcore.encoding import encode
from mlcore.inference import Classifier


@dataclass
class Explanation:
    """One text's prediction and why: every per-token list is aligned with `tokens`."""

    tokens: list[str]  # the word pieces the model read, special tokens included, in order
    label: str  # predicted label
    probability: float  # of `label`
    probabilities: dict[str, float]  # every label, in label order
    attention: list[list[float]]  # last layer, averaged over heads: len(tokens) x len(tokens), rows sum to 1
    cls_attention: list[float]  # row 0 of `attention`: what the token the classification head reads attends to
    importance: list[float]  # signed gradient x input per token, scaled so the largest |value| is 1
    method: str  # how `importance` was computed
    truncated: bool  # the text had more than max_length tokens, so only part of it was read
    explained_label: str = ""  # whose log-probability `importance` is about: `label` unless another was asked for

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready types (lists, dicts, str, float, bool)."""
        return asdict(self)


def explain(classifier: Classifier, text: str, label: str | None = None) -> Explanation:
    """Explain the classifier's prediction for one text: importance towards `label` (one of its label names;
    default: the predicted label).

    1. Encode the text exactly as Classifier.predict does (same max_length and truncation).
    2. Under the classifier's lock, switch the model to "eager" attention for one forward pass: transformers 5
       models load with "sdpa", whose fused kernel never materialises the attention weights.
    3. Feed the word embeddings as a leaf tensor that requires grad and differentiate the explained label's
       log-probability with torch.autograd.grad, which returns the gradient for that tensor only: no parameter gets a
       .grad and no requires_grad flag is touched.
    4. Restore the previous attention implementation, whatever happened.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, not {type(text).__name__}")
    if not text.strip():
        raise ValueError("text is empty: give some words to explain")

    if label is not None and label not in classifier.label_names:
        raise ValueError(f"the model has no label {label!r}; its labels are {', '.join(classifier.label_names)}")
    if classifier.precision != "fp32":
        # Dynamically quantised linear layers have no backward: autograd would warn and return nothing useful.
        raise ValueError(f"explanations need an fp32 model; this one is {classifier.precision}")

    model = classifier.model
    with classifier._lock:
        rows, truncated = encode(classifier.tokenizer, [text], classifier.max_length, truncation=classifier.truncation)
        ids = rows[0]["input_ids"]
        tokens = classifier.tokenizer.convert_ids_to_tokens(ids)
        previous = model.config._attn_implementation
        # Callers may be inside torch.inference_mode() or no_grad(); this computation needs autograd, and every
        # tensor it saves for backward must be made here (an inference-mode tensor cannot be).
        with torch.inference_mode(False), torch.enable_grad():
            input_ids = torch.tensor([ids], device=classifier.device)
            try:
                model.set_attn_implementation("eager")
                # "Input" is the word embedding alone: the model adds position and segment embeddings to it,
                # which say where a token is, not which token it is.
                embeds = model.get_input_embeddings()(input_ids).detach().requires_grad_(True)
                # output_attentions makes transformers install its dormant output-capturing hooks once;
                # they record nothing unless a caller asks for outputs, so predict() is unaffected.
                out = model(inputs_embeds=embeds, attention_mask=torch.ones_like(input_ids), output_attentions=True)
            finally:
                model.set_attn_implementation(previous)
            if not out.attentions:
                raise ValueError(f"{type(model).__name__} does not return attention weights")
            logits = out.logits[0].float() / classifier.temperature  # what predict() serves: a calibrated T
            probs = logits.detach().softmax(dim=-1).cpu().tolist()
            best = max(range(len(probs)), key=probs.__getitem__)  # as predict() picks, ties included
            target = best if label is None else classifier.label_names.index(label)
            (grad,) = torch.autograd.grad(logits.log_softmax(dim=-1)[target], embeds)

    attention = out.attentions[-1][0].detach().float().mean(dim=0).cpu()  # (heads, n, n) -> (n, n)
    return Explanation(
        tokens=tokens,
        label=classifier.label_names[best],
        probability=probs[best],
        probabilities=dict(zip(classifier.label_names, probs, strict=True)),
        attention=attention.tolist(),
        cls_attention=attention[0].tolist(),
        importance=_scaled((grad * embeds.detach())[0].sum(dim=-1).float().cpu()),
        method="gradient_x_input",
        truncated=truncated[0],
        explained_label=classifier.label_names[target],
    )


def _scaled(values: torch.Tensor) -> list[float]:
    """values / max |value|, so the strongest token is +-1 whatever the logit's scale; all zeros stay zeros."""
    peak = values.abs().max()
    return (values / peak if peak > 0 else values).tolist()
