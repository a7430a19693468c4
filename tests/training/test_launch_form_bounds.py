"""The launch form refuses exactly what a job's config refuses: every number field takes its bounds from
mlcore.config, at each end open or closed as the config says, with the config's message, and the choice fields
offer the config's choices."""

from __future__ import annotations

import math

import pytest
from django import forms

from jobs import forms as job_forms
from jobs.datasets import services as dataset_services
from jobs.forms import JobForm, ValuesField
from mlcore.config import (
    ConfigError,
    DistillConfig,
    TrainConfig,
    config_fields,
    config_from_dict,
    field_choices,
    field_range,
)

pytestmark = pytest.mark.django_db

VALUES_FIELDS = [name for name, f in JobForm.base_fields.items() if isinstance(f, ValuesField)]
# What else a value needs for the config to take it: a warm-up only comes with the linear schedule.
CONTEXT = {"warmup_ratio": {"scheduler": "linear"}}


@pytest.fixture
def dataset(user, sentiment_csv):
    return dataset_services.create_dataset(user, "reviews", sentiment_csv)


def _config(name: str) -> type[TrainConfig]:
    return DistillConfig if name in JobForm.DISTILL_FIELDS else TrainConfig


def _form_data(dataset, **fields) -> dict:
    base = {
        "kind": "finetune", "dataset": dataset.pk, "base_model": "all-MiniLM-L6-v2", "batch_size": "16",
        "learning_rate": "2e-5", "epochs": "1", "max_length": "64", "seed": "42", "truncation": "head",
        "scheduler": "linear", "warmup_ratio": "0", "weight_decay": "0",
    }  # fmt: skip
    return base | fields


def _probes(name: str) -> list[tuple[float, bool]]:
    """Values at each end of the config's range and just either side of it, each with whether it is inside."""
    bounds = field_range(_config(name), name)
    whole = {f["name"]: f["type"] for f in config_fields(_config(name))}[name].startswith("int")

    def step(value, direction):  # the next value a user can type, up or down
        return value + direction if whole else math.nextafter(value, direction * math.inf)

    probes = [(bounds.low, not bounds.low_open), (step(bounds.low, -1), False), (step(bounds.low, +1), True)]
    if math.isinf(bounds.high):  # no upper limit: a large value is taken
        return [*probes, (10**12, True)]
    return [*probes, (bounds.high, not bounds.high_open), (step(bounds.high, -1), True), (step(bounds.high, +1), False)]


def _config_verdict(name: str, value) -> str | None:
    try:
        config_from_dict(_config(name), {name: value, **CONTEXT.get(name, {})})
    except ConfigError as exc:
        return str(exc)
    return None


def test_every_number_field_of_the_form_is_checked_here():
    assert set(VALUES_FIELDS) == {
        "batch_size", "learning_rate", "epochs", "max_length", "max_train_samples", "max_eval_samples", "seed",
        "split_seed", "warmup_ratio", "weight_decay", "early_stopping_patience", "alpha", "temperature",
        "student_layers", "hidden_loss_weight", "checkpoint_every", "devices", "gpu_memory_gb",
    }  # fmt: skip


def test_the_base_form_data_is_valid(user, dataset):
    form = JobForm(data=_form_data(dataset), user=user)
    assert form.is_valid(), form.errors


@pytest.mark.parametrize("name", VALUES_FIELDS)
def test_the_form_and_the_config_agree_at_each_bound_and_just_outside_it(user, dataset, name):
    for value, inside in _probes(name):
        text = repr(value) if isinstance(value, float) else str(value)
        form = JobForm(data=_form_data(dataset, **{name: text}), user=user)
        form.is_valid()
        refused_by_config = _config_verdict(name, value)
        assert (name not in form.errors, refused_by_config is None) == (inside, inside), (text, form.errors)
        if not inside:  # the config's own message, word for word
            assert form.errors[name] == [refused_by_config]


@pytest.mark.parametrize(
    ("name", "text", "inside"),
    [
        ("temperature", "0.005", True),  # the form's old minimum was 0.01
        ("learning_rate", "0", False),  # the form had no open low bound and no upper one
        ("learning_rate", "1.5", False),
        ("weight_decay", "2", False),  # no upper bound in the form
        ("warmup_ratio", "1", False),  # the form took 1 itself
        ("student_layers", "1001", False),  # no upper bound in the form
        ("hidden_loss_weight", "1001", False),  # no upper bound in the form
    ],
)
def test_the_values_the_form_used_to_judge_otherwise_now_get_the_configs_verdict(user, dataset, name, text, inside):
    form = JobForm(data=_form_data(dataset, **{name: text}), user=user)
    form.is_valid()
    assert (name not in form.errors) is inside
    assert (_config_verdict(name, float(text) if "." in text else int(text)) is None) is inside


def test_one_value_out_of_a_sweeps_several_is_refused_with_the_configs_message():
    with pytest.raises(forms.ValidationError) as refused:
        JobForm.base_fields["temperature"].clean("1, 2, 0")
    assert refused.value.messages == ["temperature must be in (0, 100], got 0.0"]


def test_a_number_that_is_not_one_is_still_refused_before_its_range():
    with pytest.raises(forms.ValidationError) as refused:
        JobForm.base_fields["max_length"].clean("64, 1e3")
    assert refused.value.messages == ["'1e3' is not a whole number"]


def test_every_config_parameter_with_choices_is_a_choice_field_of_the_form():
    with_choices = {f["name"] for f in config_fields(TrainConfig) if f["choices"]}
    choice_fields = {name for name, f in JobForm.base_fields.items() if isinstance(f, forms.ChoiceField)}
    assert with_choices == {"truncation", "scheduler", "precision", "group_by_length"}
    assert with_choices <= choice_fields


@pytest.mark.parametrize("name", ["truncation", "scheduler", "precision"])
def test_the_choice_fields_offer_the_configs_choices_in_its_order(name):
    assert [value for value, _label in JobForm.base_fields[name].choices] == list(field_choices(TrainConfig, name))


def test_group_by_length_offers_the_configs_strings_then_on_and_off():
    field = JobForm.base_fields["group_by_length"]
    offered = [value for value, _label in field.choices]
    assert offered == [*field_choices(TrainConfig, "group_by_length"), "true", "false"]
    assert [field.clean(v) for v in ("auto", "true", "false")] == ["auto", True, False]


def test_a_choice_the_config_adds_is_offered_and_one_it_drops_is_not(monkeypatch):
    monkeypatch.setattr(job_forms, "field_choices", lambda config, name: ("linear", "cosine"))
    assert job_forms._choices(TrainConfig, "scheduler") == [("linear", "linear, after a warm-up"), ("cosine", "cosine")]
