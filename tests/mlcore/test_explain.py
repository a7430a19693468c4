"""explain() reports what the model read, its last-layer attention and gradient x input importance, agrees
with Classifier.predict, and leaves the model exactly as it found it."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from mlcore.encoding import encode
from mlcore.explain import explain
from mlcore.inference import Classifier

LONG = " ".join(["the movie was great and i loved it"] * 6) + " but the ending was awful"  # > 32 tokens
TEXTS = ["great film", "the plot was dull and the acting poor", "wonderful music , boring script !", LONG]


@pytest.fixture(scope="module")
def classifier(finetuned):
    return Classifier.load(finetuned.result.output_dir)


def test_tokens_are_the_word_pieces_the_model_reads(classifier):
    assert explain(classifier, "Great film").tokens == ["[CLS]", "great", "film", "[SEP]"]
    rows, _ = encode(classifier.tokenizer, [TEXTS[2]], classifier.max_length, truncation=classifier.truncation)
    assert explain(classifier, TEXTS[2]).tokens == classifier.tokenizer.convert_ids_to_tokens(rows[0]["input_ids"])


@pytest.mark.parametrize("text", TEXTS)
def test_every_per_token_list_has_one_entry_per_token(classifier, text):
    result = explain(classifier, text)
    n = len(result.tokens)
    assert len(result.attention) == n
    assert all(len(row) == n for row in result.attention)
    assert len(result.cls_attention) == n
    assert len(result.importance) == n


@pytest.mark.parametrize("text", TEXTS)
def test_attention_rows_are_distributions_and_cls_attention_is_the_first_row(classifier, text):
    result = explain(classifier, text)
    for row in result.attention:
        assert sum(row) == pytest.approx(1.0, abs=1e-4)
        assert min(row) >= 0
    assert result.cls_attention == result.attention[0]
    # Averaged over heads, not one head's row: not every token puts all its weight on one place.
    assert max(result.cls_attention) < 1.0


@pytest.mark.parametrize("text", TEXTS)
def test_importance_is_signed_and_scaled_to_a_peak_of_one(classifier, text):
    result = explain(classifier, text)
    assert max(abs(v) for v in result.importance) == pytest.approx(1.0, abs=1e-6)
    assert result.method == "gradient_x_input"


def test_the_prediction_is_the_one_classifier_predict_gives(classifier):
    predictions = classifier.predict(TEXTS)
    for text, prediction in zip(TEXTS, predictions, strict=True):
        result = explain(classifier, text)
        assert result.label == prediction.label
        assert list(result.probabilities) == classifier.label_names
        assert result.probabilities == pytest.approx(prediction.probabilities, abs=1e-5)
        assert result.probability == result.probabilities[result.label]
        assert result.truncated == prediction.truncated
    assert {explain(classifier, t).label for t in TEXTS[:2]} == {"positive", "negative"}


def test_importance_matches_finite_differences_of_the_predicted_log_probability(classifier, finetuned):
    """Gradient x input for token i is the derivative of the label's log-probability as token i's word embedding
    is scaled by (1 + t), at t = 0; a float64 copy of the model measures it by central differences, without
    autograd."""
    model = AutoModelForSequenceClassification.from_pretrained(finetuned.result.output_dir, dtype=torch.float64)
    model.eval()
    labels, signs = set(), set()
    for text in TEXTS[:3]:
        result = explain(classifier, text)
        rows, _ = encode(classifier.tokenizer, [text], classifier.max_length)
        ids = torch.tensor([rows[0]["input_ids"]])
        target = classifier.label_names.index(result.label)
        h = 1e-4
        with torch.no_grad():
            embeds = model.get_input_embeddings()(ids)

            def logit(i: int, scale: float, embeds=embeds, target=target) -> float:
                scaled = embeds.clone()
                scaled[0, i] *= scale
                return model(inputs_embeds=scaled).logits[0].log_softmax(dim=-1)[target].item()

            raw = torch.tensor([(logit(i, 1 + h) - logit(i, 1 - h)) / (2 * h) for i in range(ids.shape[1])])
        expected = (raw / raw.abs().max()).tolist()
        assert result.importance == pytest.approx(expected, abs=2e-3)
        labels.add(result.label)
        signs |= {v > 0 for v in expected}
    # Both labels and both signs were checked, so a wrong label or a sign slip would fail.
    assert labels == {"negative", "positive"}
    assert signs == {True, False}


def test_another_label_can_be_explained_and_two_labels_mirror_each_other(classifier):
    text = TEXTS[0]
    predicted = explain(classifier, text)
    other = next(name for name in classifier.label_names if name != predicted.label)
    flipped = explain(classifier, text, label=other)
    assert (predicted.explained_label, flipped.explained_label) == (predicted.label, other)
    assert flipped.label == predicted.label and flipped.probabilities == predicted.probabilities
    # With two labels, log p(a) = -log(1 + exp(z_b - z_a)): its gradient is the other's times -p(b)/p(a), so the
    # scaled importances are exact opposites.
    assert flipped.importance == pytest.approx([-v for v in predicted.importance], abs=1e-5)
    with pytest.raises(ValueError, match="no label 'maybe'"):
        explain(classifier, text, label="maybe")


def test_attention_is_the_last_layers_softmax_of_queries_and_keys(classifier):
    """Recomputed from the input to the last layer and that layer's query and key weights."""
    text = TEXTS[1]
    result = explain(classifier, text)
    bert = classifier.model.bert
    rows, _ = encode(classifier.tokenizer, [text], classifier.max_length)
    with torch.no_grad():
        hidden = bert(torch.tensor([rows[0]["input_ids"]]), output_hidden_states=True).hidden_states[-2][0]
        layer = bert.encoder.layer[-1].attention.self
        heads, size = layer.num_attention_heads, layer.attention_head_size
        q = layer.query(hidden).view(-1, heads, size).transpose(0, 1)
        k = layer.key(hidden).view(-1, heads, size).transpose(0, 1)
        expected = (q @ k.transpose(1, 2) / size**0.5).softmax(dim=-1).mean(dim=0)
    torch.testing.assert_close(torch.tensor(result.attention), expected, atol=1e-5, rtol=0)


def test_the_model_is_left_exactly_as_it_was(finetuned):
    classifier = Classifier.load(finetuned.result.output_dir)
    model = classifier.model
    model.get_input_embeddings().weight.requires_grad_(False)  # a mix of flags, to see each one kept
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    implementation = model.config._attn_implementation
    before = classifier.predict(TEXTS)

    explain(classifier, TEXTS[1])

    assert model.config._attn_implementation == implementation
    assert all(m.config._attn_implementation == implementation for m in model.modules() if hasattr(m, "config"))
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
    assert all(p.grad is None for p in model.parameters())
    assert model.training is False
    assert [p.probabilities for p in classifier.predict(TEXTS)] == [p.probabilities for p in before]


def test_the_attention_implementation_is_restored_when_the_forward_pass_fails(finetuned, monkeypatch):
    classifier = Classifier.load(finetuned.result.output_dir)
    implementation = classifier.model.config._attn_implementation

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(classifier.model, "forward", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        explain(classifier, "great film")
    assert classifier.model.config._attn_implementation == implementation
    assert not classifier._lock.locked()


def test_a_long_text_is_flagged_as_truncated_and_cut_to_max_length(classifier):
    result = explain(classifier, LONG)
    assert result.truncated is True
    assert len(result.tokens) == classifier.max_length == 32
    assert (result.tokens[0], result.tokens[-1]) == ("[CLS]", "[SEP]")
    # "head": 30 text tokens, 3 sentences and 6 words into the 4th; the end ("... ending was awful") is not read.
    assert result.tokens[-3:] == ["and", "i", "[SEP]"]
    assert explain(classifier, "great film").truncated is False


def test_head_tail_truncation_explains_the_end_of_the_text_too(finetuned):
    classifier = Classifier.load(finetuned.result.output_dir, truncation="head_tail")
    result = explain(classifier, LONG)
    assert len(result.tokens) == 32
    assert result.tokens[-3:] == ["was", "awful", "[SEP]"]


def test_it_works_inside_inference_mode_and_no_grad(classifier):
    expected = explain(classifier, TEXTS[1])
    with torch.inference_mode():
        assert explain(classifier, TEXTS[1]).importance == pytest.approx(expected.importance, abs=1e-6)
    with torch.no_grad():
        assert explain(classifier, TEXTS[1]).importance == pytest.approx(expected.importance, abs=1e-6)


def test_to_dict_is_json_with_every_field(classifier):
    data = json.loads(json.dumps(explain(classifier, "great film").to_dict()))
    assert set(data) == {
        "tokens", "label", "probability", "probabilities", "attention", "cls_attention", "importance", "method",
        "truncated", "explained_label",
    }  # fmt: skip
    assert data["tokens"] == ["[CLS]", "great", "film", "[SEP]"]
    assert len(data["attention"]) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [(None, "must be a string"), (3, "must be a string"), (["great"], "must be a string"), ("", "empty"),
     ("  \n\t ", "empty")],
)  # fmt: skip
def test_bad_input_is_refused(classifier, text, message):
    with pytest.raises(ValueError, match=message):
        explain(classifier, text)


def test_an_int8_model_is_refused_with_a_clear_message(finetuned):
    classifier = Classifier.load(finetuned.result.output_dir, precision="int8")
    with pytest.raises(ValueError, match="need an fp32 model"):
        explain(classifier, "great film")
    assert classifier.model.config._attn_implementation == "sdpa"
