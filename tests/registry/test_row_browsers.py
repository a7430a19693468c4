"""Each test row's prediction is stored with a trained model; the error browser lists a confusion cell's rows by
confidence (JSON, CSV, page), the disagreement browser sets two models on the same rows side by side, and a model
stored without rows is evaluated on them by a worker's job. Real models (the tiny BERT), real values."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections import Counter

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.datasets import services as dataset_services
from jobs.models import Job, ModelRecord, RowPrediction
from jobs.registry import rows as stored
from jobs.registry import services as registry
from jobs.registry.storage import model_dir
from jobs.serving import evaluate
from jobs.training import lifecycle, runner
from mlcore.config import TrainConfig
from mlcore.data import TextDataset
from mlcore.inference import Classifier
from mlcore.testing import sentiment_rows
from mlcore.train import finetune, split_indices
from tests.conftest import FAST_PARAMS, csv_bytes
from tests.markup import assert_labelled_and_unique

pytestmark = pytest.mark.django_db

FORMULA = "=HYPERLINK(1) "  # some texts start so: a spreadsheet would run them


def _rows() -> list[tuple[str, str]]:
    return [(FORMULA + text if i % 5 == 0 else text, label) for i, (text, label) in enumerate(sentiment_rows(160))]


def _dataset() -> TextDataset:
    rows = _rows()
    names = sorted({label for _, label in rows})
    return TextDataset([t for t, _ in rows], [names.index(label) for _, label in rows], names)


# A strong model and a weak one (one epoch, another seed) split alike (split_seed): they disagree on some rows.
STRONG = TrainConfig(**(FAST_PARAMS | {"max_length": 10, "split_seed": 0, "test_fraction": 0.25}))
WEAK = dataclasses.replace(STRONG, epochs=1, seed=7, learning_rate=2e-3)


@pytest.fixture(scope="module")
def trained(tiny_bert, tmp_path_factory):
    """{name: (config, TrainResult)}: the two models, trained once for the module by mlcore."""
    data = _dataset()
    found = {}
    for name, config in (("strong", STRONG), ("weak", WEAK)):
        found[name] = (config, finetune(data, str(tiny_bert), tmp_path_factory.mktemp(name), config))
    return found


def _record(user, dataset, config, result, *, with_rows=True) -> ModelRecord:
    """The model registered as the worker registers it (runner._register), from a finished job."""
    job = Job.objects.create(
        owner=user, kind=Job.Kind.FINETUNE, dataset=dataset, base_model="tiny", params=dataclasses.asdict(config),
        status=Job.Status.RUNNING,
    )  # fmt: skip
    record = runner._register(job, result if with_rows else dataclasses.replace(result, test_rows=None))
    lifecycle.finish_job(job, Job.Status.SUCCEEDED, result_model=record)
    record.refresh_from_db()
    return record


@pytest.fixture
def dataset(user):
    return dataset_services.create_dataset(user, "reviews", SimpleUploadedFile("reviews.csv", csv_bytes(_rows())))


@pytest.fixture
def strong(user, dataset, trained):
    return _record(user, dataset, *trained["strong"])


@pytest.fixture
def weak(user, dataset, trained):
    return _record(user, dataset, *trained["weak"])


def test_a_trained_model_stores_every_test_row_at_its_position_in_the_dataset_file(strong, dataset):
    data = _dataset()
    positions = split_indices(data, STRONG)["test"]
    assert strong.test_rows_count == len(positions) == 40
    assert strong.test_rows_dataset == dataset
    rows = list(RowPrediction.objects.filter(model=strong).order_by("row"))
    assert [r.row for r in rows] == sorted(positions)
    assert all(r.text == data.texts[r.row] and r.label == data.labels[r.row] for r in rows)


def test_the_stored_predictions_are_the_models_classify_answers(strong):
    rows = list(RowPrediction.objects.filter(model=strong))
    answers = Classifier.load(model_dir(strong)).predict([r.text for r in rows])
    for row, answer in zip(rows, answers, strict=True):
        assert strong.label_names[row.predicted] == answer.label
        assert row.probabilities == pytest.approx(list(answer.probabilities.values()), abs=1e-4)
        assert row.confidence == pytest.approx(answer.probability, abs=1e-4)
        assert row.truncated == answer.truncated
    assert {r.truncated for r in rows} == {True, False}


def test_each_cell_lists_exactly_its_rows_and_counts_the_confusion_matrix(api, strong):
    report = strong.metrics["test/report"]["confusion_matrix"]
    assert stored.confusion(strong) == report
    names = strong.label_names
    for t, true in enumerate(names):
        for p, predicted in enumerate(names):
            body = api.get(f"/api/models/{strong.pk}/errors/", {"true": true, "predicted": predicted}).json()
            expected = RowPrediction.objects.filter(model=strong, label=t, predicted=p)
            assert body["count"] == report[t][p] == expected.count()
            assert {r["row"] for r in body["results"]} == set(expected.values_list("row", flat=True))
            assert all(r["true"] == true and r["predicted"] == predicted for r in body["results"])


def test_rows_come_most_confident_first_or_least_and_a_page_at_a_time(api, strong):
    everything = list(RowPrediction.objects.filter(model=strong).values_list("confidence", "row"))
    most = [row for _, row in sorted(everything, key=lambda cr: (-cr[0], cr[1]))]
    first = api.get(f"/api/models/{strong.pk}/errors/", {"limit": 15}).json()
    second = api.get(f"/api/models/{strong.pk}/errors/", {"limit": 15, "offset": 15}).json()
    assert [r["row"] for r in first["results"] + second["results"]] == most[:30]
    least = api.get(f"/api/models/{strong.pk}/errors/", {"order": "unsure", "limit": 100}).json()
    assert [r["row"] for r in least["results"]] == [row for _, row in sorted(everything, key=lambda cr: (cr[0], cr[1]))]
    confidences = [r["confidence"] for r in least["results"]]
    assert confidences == sorted(confidences) and confidences[0] < confidences[-1]


def test_an_unknown_label_or_order_is_a_400_naming_it(api, strong):
    assert api.get(f"/api/models/{strong.pk}/errors/", {"true": "maybe"}).json() == {
        "true": ["not one of the model's labels (negative, positive)"]
    }
    assert "order" in api.get(f"/api/models/{strong.pk}/errors/", {"order": "random"}).json()


def test_the_csv_is_the_cells_rows_with_every_formula_neutralised(api, client, user, strong):
    names = strong.label_names
    response = api.get(f"/api/models/{strong.pk}/errors/csv/", {"true": names[0], "predicted": names[0]})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(response.content.decode())))
    assert table[0] == ["row", "true", "predicted", "confidence", "p_negative", "p_positive", "truncated", "text"]
    expected = RowPrediction.objects.filter(model=strong, label=0, predicted=0).order_by("-confidence", "row")
    assert [int(line[0]) for line in table[1:]] == list(expected.values_list("row", flat=True))
    by_row = {r.row: r for r in expected}
    formulas = [line for line in table[1:] if by_row[int(line[0])].text.startswith("=")]
    assert formulas and all(line[-1] == "'" + by_row[int(line[0])].text for line in formulas)
    assert all(not line[-1].startswith("=") for line in table[1:])
    client.force_login(user)
    page_csv = client.get(f"/models/{strong.pk}/errors.csv", {"true": names[0], "predicted": names[0]})
    assert page_csv.content == response.content


def test_the_teacher_by_student_table_counts_each_pair_of_answers(api, strong, weak):
    a = {r: p for r, p in RowPrediction.objects.filter(model=strong).values_list("row", "predicted")}
    b = {r: p for r, p in RowPrediction.objects.filter(model=weak).values_list("row", "predicted")}
    counts = Counter((a[r], b[r]) for r in a)
    body = api.get(f"/api/models/{strong.pk}/disagreements/{weak.pk}/", {"limit": 100}).json()
    assert body["labels"] == ["negative", "positive"]
    assert body["table"] == [[counts[(i, j)] for j in range(2)] for i in range(2)]
    differing = sorted(r for r in a if a[r] != b[r])
    assert differing, "the weak model should disagree somewhere"
    assert body["disagreeing"] == body["count"] == len(differing)
    assert sorted(r["row"] for r in body["results"]) == differing
    strong_conf = dict(RowPrediction.objects.filter(model=strong).values_list("row", "confidence"))
    assert [r["row"] for r in body["results"]] == sorted(differing, key=lambda r: (-strong_conf[r], r))
    for row in body["results"]:
        assert row["a"]["predicted"] == strong.label_names[a[row["row"]]]
        assert row["b"]["predicted"] == weak.label_names[b[row["row"]]]


def test_a_cell_filters_the_disagreements_and_either_models_confidence_sorts_them(api, strong, weak):
    a = dict(RowPrediction.objects.filter(model=strong).values_list("row", "predicted"))
    b = dict(RowPrediction.objects.filter(model=weak).values_list("row", "confidence"))
    b_pred = dict(RowPrediction.objects.filter(model=weak).values_list("row", "predicted"))
    cell = [r for r in a if a[r] == 0 and b_pred[r] == 1]
    body = api.get(
        f"/api/models/{strong.pk}/disagreements/{weak.pk}/",
        {"a_label": "negative", "b_label": "positive", "order": "b_unsure", "limit": 100},
    ).json()
    assert [r["row"] for r in body["results"]] == sorted(cell, key=lambda r: (b[r], r))


def test_two_models_on_different_datasets_or_rows_are_refused_saying_why(api, user, strong, trained):
    other = dataset_services.create_dataset(user, "copy", SimpleUploadedFile("copy.csv", csv_bytes(_rows())))
    elsewhere = _record(user, other, *trained["weak"])
    response = api.get(f"/api/models/{strong.pk}/disagreements/{elsewhere.pk}/")
    assert response.status_code == 400
    assert "were tested on different datasets" in response.json()["detail"]
    moved = ModelRecord.objects.get(pk=elsewhere.pk)
    moved.test_rows_dataset = strong.test_rows_dataset
    moved.save()
    RowPrediction.objects.filter(model=moved, row=RowPrediction.objects.filter(model=moved).first().row).update(
        row=10_000
    )
    assert "were tested on different rows" in api.get(f"/api/models/{strong.pk}/disagreements/{moved.pk}/").json()[
        "detail"
    ]


def test_someone_elses_model_is_a_404_and_no_one_signed_in_is_refused(api, other_api, client, strong, weak):
    for url in (
        f"/api/models/{strong.pk}/errors/", f"/api/models/{strong.pk}/errors/csv/",
        f"/api/models/{strong.pk}/disagreements/{weak.pk}/",
    ):  # fmt: skip
        assert other_api.get(url).status_code == 404, url
        assert client.get(url).status_code == 401, url
    assert other_api.post(f"/api/models/{strong.pk}/evaluate/").status_code == 404
    assert other_api.post(f"/api/models/{strong.pk}/explain/", {"text": "good"}, format="json").status_code == 404
    assert client.post(f"/api/models/{strong.pk}/explain/", {"text": "good"}, format="json").status_code == 401
    for page in (
        f"/models/{strong.pk}/errors/", f"/models/{strong.pk}/errors.csv",
        f"/models/{strong.pk}/disagreements/{weak.pk}/",
    ):  # fmt: skip
        assert client.get(page).status_code == 302, page  # to the login page


def test_pages_of_another_user_are_404(client, other_user, strong, weak):
    client.force_login(other_user)
    for page in (
        f"/models/{strong.pk}/errors/", f"/models/{strong.pk}/errors.csv",
        f"/models/{strong.pk}/disagreements/{weak.pk}/", f"/models/{strong.pk}/disagreements/?other={weak.pk}",
    ):  # fmt: skip
        assert client.get(page).status_code == 404, page
    assert client.post(f"/models/{strong.pk}/evaluate/").status_code == 404


def test_explain_by_model_explains_with_that_model(api, strong, weak):
    text = RowPrediction.objects.filter(model=strong).first().text
    a = api.post(f"/api/models/{strong.pk}/explain/", {"text": text}, format="json").json()
    b = api.post(f"/api/models/{weak.pk}/explain/", {"text": text}, format="json").json()
    assert (a["model"], b["model"]) == (strong.pk, weak.pk)
    answers = {m.pk: Classifier.load(model_dir(m)).predict([text])[0] for m in (strong, weak)}
    assert a["label"] == answers[strong.pk].label and b["label"] == answers[weak.pk].label
    assert a["probability"] == pytest.approx(answers[strong.pk].probability, abs=1e-4)


def test_a_model_stored_without_rows_is_evaluated_by_a_job_storing_its_classify_answers(api, user, dataset, trained):
    config, result = trained["strong"]
    record = _record(user, dataset, config, result, with_rows=False)
    assert record.test_rows_count is None
    assert api.get(f"/api/models/{record.pk}/errors/").status_code == 409
    response = api.post(f"/api/models/{record.pk}/evaluate/")
    assert response.status_code == 202 and response.json()["kind"] == "evaluate"
    job = Job.objects.get(pk=response.json()["id"])
    assert job.queue == "cpu" and job.model == record
    assert api.post(f"/api/models/{record.pk}/evaluate/").json()["id"] == job.pk  # the one already queued

    claimed = lifecycle.claim_job(job.pk, worker="test")
    evaluate.run(claimed)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    record.refresh_from_db()
    assert record.test_rows_count == len(result.test_rows) and record.test_rows_dataset == dataset
    kept = {r["row"]: r for r in result.test_rows}  # what training's own pass predicted
    for row in RowPrediction.objects.filter(model=record):
        assert row.predicted == kept[row.row]["predicted"] and row.text == kept[row.row]["text"]
        assert row.probabilities == pytest.approx(kept[row.row]["probabilities"], abs=1e-4)
    assert stored.confusion(record) == record.metrics["test/report"]["confusion_matrix"]


def test_an_imported_model_cannot_be_evaluated_and_says_why(api, user, tiny_model_dir):
    record = registry.import_model(user, tiny_model_dir, name="brought")
    response = api.post(f"/api/models/{record.pk}/evaluate/")
    assert response.status_code == 400
    assert "imported model's test rows are not known" in response.json()["detail"]


def test_the_pages_show_the_cell_its_csv_link_the_pair_table_and_label_every_field(logged_in, strong, weak):
    names = strong.label_names
    model_page = logged_in.get(f"/models/{strong.pk}/").content.decode()
    assert f'data-errors-url="/models/{strong.pk}/errors/"' in model_page and 'id="disagreement-picker"' in model_page
    assert_labelled_and_unique(model_page, "model with rows")
    cell = logged_in.get(f"/models/{strong.pk}/errors/", {"true": names[1], "predicted": names[0]})
    html = cell.content.decode()
    assert_labelled_and_unique(html, "errors")
    assert f"{stored.confusion(strong)[1][0]} row" in html and 'id="errors-csv"' in html
    pair = logged_in.get(f"/models/{strong.pk}/disagreements/{weak.pk}/").content.decode()
    assert_labelled_and_unique(pair, "disagreements")
    assert 'id="pair-table"' in pair and "Explain both" in pair
    picked = logged_in.get(f"/models/{strong.pk}/disagreements/", {"other": weak.pk})
    assert picked.status_code == 302 and picked["Location"] == f"/models/{strong.pk}/disagreements/{weak.pk}/"


def test_a_model_without_rows_offers_the_evaluation_on_its_page(logged_in, user, dataset, trained):
    record = _record(user, dataset, *trained["strong"], with_rows=False)
    page = logged_in.get(f"/models/{record.pk}/").content.decode()
    assert 'id="no-test-rows"' in page and 'id="evaluate-button"' in page and 'data-errors-url="' not in page
    assert_labelled_and_unique(page, "model without rows")
    assert 'id="evaluate-button"' in logged_in.get(f"/models/{record.pk}/errors/").content.decode()


def test_an_evaluation_jobs_page_names_its_model_and_labels_every_field(logged_in, user, strong):
    job = Job.objects.create(owner=user, kind=Job.Kind.EVALUATE, model=strong, base_model=strong.name, params={})
    response = logged_in.get(f"/jobs/{job.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Evaluate on test rows job" in html
    assert f'id="evaluated-model">{strong.name}<' in html and f"its {strong.test_rows_count} test rows" in html
    assert_labelled_and_unique(html, "evaluation job")
    assert logged_in.get("/runs/").status_code == 200
