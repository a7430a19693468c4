"""The launch form as the dashboard renders it: each number input carries its parameter's bounds from mlcore.config
(for the page's inline check), the base model has the catalogue as suggestions, the engine settings sit in an
Advanced section, each recipe's values are listed before it is chosen, and with no dataset the form is disabled
with a first step that links to the upload card."""

from __future__ import annotations

import math
import re

import pytest
from django import forms

from jobs.forms import JobForm, ValuesField
from mlcore import catalogue, recipes
from mlcore.config import DistillConfig, TrainConfig, field_range

from .html_form import controls

pytestmark = pytest.mark.django_db

NUMBERS = [name for name, f in JobForm.base_fields.items() if isinstance(f, ValuesField)]


def _html(client, query: str = "") -> str:
    return client.get("/" + query).content.decode()


@pytest.fixture
def page(logged_in, trained_model):
    """The dashboard of a user with a dataset and a model."""
    return _html(logged_in)


@pytest.mark.parametrize("name", NUMBERS)
def test_each_number_input_carries_its_parameters_bounds_from_the_config(page, name):
    attrs = controls(page, "job-form")[name].attrs
    config = DistillConfig if name in JobForm.DISTILL_FIELDS else TrainConfig
    bounds = field_range(config, name)
    assert float(attrs["data-low"]) == bounds.low
    assert float(attrs.get("data-high", math.inf)) == bounds.high
    assert ("data-low-open" in attrs, "data-high-open" in attrs) == (bounds.low_open, bounds.high_open)
    assert attrs["data-requirement"] == bounds.requirement(name)
    assert attrs["data-kind"] == ("int" if JobForm.base_fields[name].kind is int else "float")
    assert ("data-single" in attrs) is (name in ("checkpoint_every", "devices", "gpu_memory_gb"))


def test_the_requirement_is_the_start_of_the_servers_own_refusal():
    with pytest.raises(forms.ValidationError) as refused:
        JobForm.base_fields["max_length"].clean("1000")
    assert refused.value.messages == [field_range(TrainConfig, "max_length").requirement("max_length") + ", got 1000"]


def test_the_base_model_suggests_the_catalogues_available_models_and_takes_free_text(page):
    base_model = controls(page, "job-form")["base_model"]
    assert base_model.attrs["list"] == "base-model-catalogue" and base_model.attrs.get("type") == "text"
    datalist = re.search(r'<datalist id="base-model-catalogue">(.*?)</datalist>', page, re.S).group(1)
    offered = re.findall(r'<option value="([^"]+)"', datalist)
    assert offered == [e["id"] for e in catalogue.catalogue() if e["available"]]


def test_the_engine_settings_are_in_the_advanced_section_and_the_hyperparameters_are_not(page):
    start = page.index('<details id="engine-settings"')
    section = page[start : page.index("</details>", start)]
    inside = set(re.findall(r'name="([^"]+)"', section))
    assert inside == set(JobForm.ENGINE_FIELDS)
    assert not inside & set(JobForm.TRAIN_FIELDS + JobForm.DISTILL_FIELDS)


def test_an_engine_setting_with_an_error_opens_the_advanced_section(logged_in, trained_model):
    data = {"kind": "finetune", "dataset": trained_model.dataset_id, "checkpoint_every": "5, 10"}
    html = logged_in.post("/jobs/new/", data).content.decode()
    assert '<details id="engine-settings" open>' in html
    assert "checkpoint_every takes one value, not several" in html


@pytest.mark.parametrize("name", list(recipes.RECIPES))
def test_each_recipes_values_are_listed_before_it_is_chosen(page, name):
    start = page.index(f'<dd data-recipe="{name}">')
    listed = page[start : page.index("</dd>", start)]
    for kind in recipes.KINDS:
        sets = recipes.RECIPES[name].params(kind)
        for parameter, value in sets.items():
            assert f"<code>{parameter} {JobForm.base_fields[parameter].prepare_value(str(value))}</code>" in listed
        if not sets:
            assert "the defaults" in listed


def test_without_a_dataset_the_form_is_disabled_and_says_to_upload_one_first(logged_in):
    html = _html(logged_in)
    assert all(c.disabled for c in controls(html, "job-form").values() if c.name != "csrfmiddlewaretoken")
    first_step = re.search(r'<p class="notice" id="launch-first-step">(.*?)</p>', html, re.S).group(1)
    assert '<a href="#upload">upload a dataset</a>' in first_step
    assert 'id="upload"' in html  # the card it links to


def test_with_a_dataset_nothing_is_disabled(page):
    assert not any(c.disabled for c in controls(page, "job-form").values())
    assert 'id="launch-first-step"' not in page
