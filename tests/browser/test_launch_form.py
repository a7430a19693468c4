"""The launch form's script in a real browser: each number is checked as it is typed, with the server's own words
(the bounds come from mlcore.config through the inputs' attributes), and a launch with a wrong one is held back;
choosing a teacher for a distillation fills in its max_length, truncation and batch size and says what the student
will be, following the student-layer field as it changes."""

from __future__ import annotations

import re

import pytest
from django import forms
from django.core.exceptions import ValidationError

from jobs.forms import JobForm
from jobs.models import Job
from jobs.registry.students import student_plan

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def user(browser_user):
    """The browser's user owns the session's tiny trained model (tests.conftest.trained_model) and its dataset."""
    return browser_user


@pytest.fixture
def teacher(trained_model):
    trained_model.params = {**trained_model.params, "max_length": 48, "truncation": "head_tail", "batch_size": 24}
    trained_model.save()
    return trained_model


def _servers_message(name: str, text: str) -> str:
    with pytest.raises(forms.ValidationError) as refused:
        JobForm.base_fields[name].clean(text)
    return refused.value.messages[0]


def _problem(form, name: str):
    return form.locator(f'[name="{name}"]').locator("xpath=..").locator(".errorlist.client")


@pytest.mark.parametrize(
    ("label", "name", "text"),
    [
        ("Max length", "max_length", "1000"),
        ("Learning rate", "learning_rate", "2e-5, 0"),
        ("Learning rate", "learning_rate", "0.00001, 1.5"),
        ("Epochs", "epochs", "two"),
        ("Batch size", "batch_size", "16, 32, 16"),
        ("Seed", "seed", "4294967296"),
        ("Weight decay", "weight_decay", "1e-9, 2"),
    ],
)
def test_a_wrong_number_is_pointed_at_as_it_is_typed_in_the_servers_words(teacher, signed_in, label, name, text):
    form = signed_in.locator("#job-form")
    field = form.get_by_label(label, exact=True)
    field.fill(text)
    assert _problem(form, name).inner_text().strip() == _servers_message(name, text)
    assert field.get_attribute("aria-invalid") == "true"
    field.fill(str(JobForm.defaults()[name]))
    assert _problem(form, name).inner_text().strip() == ""
    assert field.get_attribute("aria-invalid") is None


def test_a_launch_with_a_wrong_number_is_held_back_at_the_field(teacher, signed_in):
    form = signed_in.locator("#job-form")
    form.get_by_label("Dataset", exact=True).select_option(str(teacher.dataset_id))
    advanced = signed_in.locator("#engine-settings > summary")
    advanced.click()
    form.get_by_label("Checkpoint every", exact=True).fill("5, 10")
    advanced.click()  # closed again: the launch opens it to show what is wrong
    before = Job.objects.count()
    form.get_by_role("button", name="Launch").click()
    assert signed_in.locator("#engine-settings").get_attribute("open") is not None  # opened to show it
    assert _problem(form, "checkpoint_every").inner_text().strip() == "checkpoint_every takes one value, not several"
    assert signed_in.evaluate("document.activeElement.name") == "checkpoint_every"
    assert signed_in.url.endswith("/") and Job.objects.count() == before


def test_choosing_a_teacher_fills_in_its_settings_and_the_student_follows_the_layer_count(teacher, signed_in):
    form = signed_in.locator("#job-form")
    plan = signed_in.locator("#student-plan")
    form.get_by_label("Kind", exact=True).select_option("distill")
    form.get_by_label("Dataset", exact=True).select_option(str(teacher.dataset_id))
    assert "Choose a teacher" in plan.inner_text()
    form.get_by_label("Teacher", exact=True).select_option(str(teacher.pk))
    signed_in.wait_for_function("() => document.querySelector('[name=max_length]').value === '48'")
    values = [form.locator(f'[name="{n}"]').input_value() for n in ("max_length", "truncation", "batch_size")]
    assert values == ["48", "head_tail", "24"]
    assert re.search(
        r"The student: 2 of the teacher's 4 layers \(its layers 0, 2\), hidden size 32, ", plan.inner_text()
    )

    layers = form.get_by_label("Student layers", exact=True)
    layers.fill("3")
    signed_in.wait_for_function("() => document.getElementById('student-plan').textContent.includes('0, 2, 3')")
    assert "3 of the teacher's 4 layers" in plan.inner_text()
    layers.fill("5")  # more than the teacher has: said at once, in the words the API and the launch use
    signed_in.wait_for_function("() => document.getElementById('student-plan').textContent.includes('No student')")
    with pytest.raises(ValidationError) as refused:  # what the API and a launch answer
        student_plan(teacher, 5)
    refusal = refused.value.message_dict["student_layers"][0]
    assert plan.inner_text() == f"No student: {refusal}"

    layers.fill("3")
    form.get_by_role("button", name="Launch").click()
    signed_in.wait_for_url(re.compile(r"/jobs/\d+/$"))
    job = Job.objects.get(kind="distill")
    assert (job.kind, job.teacher_id, job.params["student_layers"]) == ("distill", teacher.pk, 3)
    assert (job.params["max_length"], job.params["truncation"], job.params["batch_size"]) == (48, "head_tail", 24)
