"""Every page, in every state a test can reach cheaply, has each element id once and a label on every field (the
checks of tests/markup.py): with repeated ids a `label for` names the first field of that id, so a click on
"Name" under "Import from the Hub" filled in the upload's name."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.datasets import quality
from jobs.datasets import services as dataset_services
from jobs.models import Job, LabelIssues, MetricPoint, ModelRecord, Sweep
from jobs.registry import history
from jobs.registry import services as registry
from tests.markup import assert_labelled_and_unique, markup_problems

pytestmark = pytest.mark.django_db


def test_the_checker_finds_a_repeated_id_an_unlabelled_field_and_a_label_for_nothing():
    html = """
      <label for="id_name">Name</label><input id="id_name" name="name">
      <input id="id_name" name="other"><textarea name="text"></textarea>
      <label for="gone">Gone</label>
      <label>Inside <select name="pick"></select></label>
      <input type="hidden" name="held"><input type="submit" value="Go">
      <input name="q" aria-label="Search"><input name="r" aria-labelledby="nowhere">
    """
    assert markup_problems(html) == [
        "id 'id_name' appears 2 times",
        "<label for='gone'> names no element",
        "<textarea name='text'> has no label",
        "<input name='r'> is labelled by missing ids ['nowhere']",
    ]


@pytest.fixture
def everything(user, sentiment_csv, settings, tmp_path: Path, monkeypatch):
    """A user with a dataset, jobs of every kind and state, a sweep, two models (one promoted), and a server folder
    and the hub to import from: every card of the dashboard shows."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    root = tmp_path / "roots"
    for split, label in (("train", "pos"), ("train", "neg")):
        (root / "imdb" / split / label).mkdir(parents=True)
        (root / "imdb" / split / label / "0_1.txt").write_text(f"a {label} review")
    settings.DISTILLERY_DATASET_ROOTS = [root.resolve()]
    dataset = dataset_services.create_dataset(user, "reviews", sentiment_csv)
    sweep = Sweep.objects.create(
        owner=user, kind=Job.Kind.FINETUNE, dataset=dataset, name="lr", grid={"seed": [1, 2]}, params={}
    )
    common = {"owner": user, "dataset": dataset, "base_model": "tiny", "params": {"batch_size": 16}}
    running = Job.objects.create(**common, kind=Job.Kind.FINETUNE, status="running", progress=0.5, sweep=sweep)
    MetricPoint.objects.create(job=running, seq=1, step=1, kind="train", values={"train/loss": 0.7, "lr": 1e-3})
    failed = Job.objects.create(**common, kind=Job.Kind.FINETUNE, status="failed", error="it broke", sweep=sweep)
    models = [
        ModelRecord.objects.create(
            owner=user, name=f"model-{i}", kind=ModelRecord.Kind.FINETUNE, base_model="tiny", dataset=dataset,
            params={"batch_size": 16}, label_names=["negative", "positive"], num_parameters=1234, size_bytes=5678,
            metrics={"test/accuracy": 0.9, "val/accuracy": 0.85},
        )
        for i in range(2)
    ]  # fmt: skip
    registry.promote(models[0])
    failing = ModelRecord.objects.create(
        owner=user, name="student", kind=ModelRecord.Kind.DISTILL, teacher=models[0], dataset=dataset, params={},
        label_names=["negative", "positive"], num_parameters=1, size_bytes=1, metrics={"test/accuracy": 0.5},
    )  # fmt: skip
    history.promote(models[1])  # a history with a rollback to offer
    quality.compute_report(dataset.pk)  # the dataset page with its report, the model page with label errors
    LabelIssues.objects.create(
        model=models[0], dataset=dataset,
        summary={"count": 1, "rows": 160, "folds": 5, "thresholds": {"negative": 0.9}},
        suspects=[{"row": 3, "text": "bad", "given": "positive", "suggested": "negative", "confidence": 0.1,
                   "suggested_probability": 0.9}],
    )  # fmt: skip
    classify = Job.objects.create(owner=user, kind=Job.Kind.CLASSIFY, model=models[0], params={}, status="queued")
    return {"dataset": dataset, "running": running, "failed": failed, "classify": classify, "sweep": sweep,
            "models": models, "failing": failing}  # fmt: skip


def test_every_page_has_unique_ids_and_a_label_on_every_field(logged_in, everything):
    dashboard = logged_in.get("/").content.decode()
    for card in ('id="folder-form"', 'id="hub-form"', 'id="model-import"', 'id="sweeps"', 'id="new-job"'):
        assert card in dashboard, card
    models = everything["models"]
    pages = {
        "dashboard": "/",
        "dataset": f"/datasets/{everything['dataset'].pk}/",
        "running job": f"/jobs/{everything['running'].pk}/",
        "failed job": f"/jobs/{everything['failed'].pk}/",
        "classify job": f"/jobs/{everything['classify'].pk}/",
        "sweep": f"/sweeps/{everything['sweep'].pk}/",
        "model": f"/models/{models[0].pk}/",
        "compare": f"/compare/?models={models[0].pk}&models={models[1].pk}",
        "classify": "/classify/",
        "account": "/account/token/",
        "promotions": "/promotions/",
        "failing model": f"/models/{everything['failing'].pk}/",
    }
    for name, url in pages.items():
        response = logged_in.get(url)
        assert response.status_code == 200, (name, response.status_code)
        assert_labelled_and_unique(response.content.decode(), name)


def test_the_dashboard_with_its_forms_refused_keeps_unique_ids_and_labels(logged_in, everything):
    held = SimpleUploadedFile("odd.csv", b"words,verdict\nfine film,pos\nbad film,neg\n")
    for url, data in (
        ("/datasets/upload/", {"file": held, "name": "odd"}),  # comes back holding the file, its columns offered
        ("/datasets/hub/", {"hub_id": "/etc", "split": "train"}),
        ("/datasets/import/", {"server_path": "nowhere"}),
        ("/jobs/new/", {"kind": "finetune"}),
        ("/models/import/", {}),
    ):
        response = logged_in.post(url, data)
        assert response.status_code == 400, url
        assert_labelled_and_unique(response.content.decode(), url)


def test_the_login_page_and_classify_without_a_model_have_labels(client, user):
    assert_labelled_and_unique(client.get("/accounts/login/").content.decode(), "login")
    client.force_login(user)
    assert_labelled_and_unique(client.get("/classify/").content.decode(), "classify, nothing promoted")
