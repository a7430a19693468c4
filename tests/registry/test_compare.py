"""Comparing models: GET /api/models/compare/ as JSON, CSV and PNG, and the compare page."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import Job, MetricPoint, ModelRecord
from jobs.registry import compare

pytestmark = pytest.mark.django_db

URL = "/api/models/compare/"


def _model(owner, name, *, teacher=None, test_acc=0.9, samples_per_s=100.0, size=1000, steps=0, loss=0.7):
    """A model record and, with steps, the job that produced it with one train point per step (loss falling
    linearly from `loss`, accuracy rising) and a validation point at the end."""
    record = ModelRecord.objects.create(
        owner=owner, name=name, kind="distill" if teacher else "finetune", base_model="tiny", teacher=teacher,
        params={}, label_names=["negative", "positive"], num_parameters=size // 4, size_bytes=size,
        metrics={"test/accuracy": test_acc, "val/accuracy": test_acc - 0.01, "train/avg_accuracy": 0.8,
                 "train/avg_loss": 0.4, "test/macro_f1": test_acc - 0.02, "cpu/latency_ms_b1": 1000 / samples_per_s,
                 "cpu/samples_per_s_b32": samples_per_s, "test/report": {"accuracy": test_acc}},
    )  # fmt: skip
    if steps:
        job = Job.objects.create(
            owner=owner, kind=record.kind, params={}, status=Job.Status.SUCCEEDED, progress=1.0, result_model=record
        )
        MetricPoint.objects.bulk_create(
            [MetricPoint(job=job, seq=s, step=s, kind="train",
                         values={"train/loss": loss - s * 0.001, "train/accuracy": 0.5 + s / (2 * steps), "lr": 1e-3})
             for s in range(1, steps + 1)]
            + [MetricPoint(job=job, seq=steps + 1, step=steps, kind="val", values={"val/accuracy": test_acc - 0.01})]
        )  # fmt: skip
    return record


@pytest.fixture
def pair(user):
    teacher = _model(user, "teacher", test_acc=0.90, samples_per_s=100.0, size=4000, steps=30, loss=0.7)
    student = _model(user, "student", teacher=teacher, test_acc=0.88, samples_per_s=190.0, size=2000, steps=20)
    return teacher, student


def test_the_comparison_lists_the_models_in_the_order_asked_with_ratios_against_the_first(api, pair):
    teacher, student = pair
    response = api.get(URL, {"ids": f"{teacher.pk},{student.pk}"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["reference"] == teacher.pk
    first, second = body["models"]
    assert (first["id"], second["id"]) == (teacher.pk, student.pk)
    assert second["teacher_id"] == teacher.pk and second["kind"] == "distill"
    assert second["test_accuracy"] == 0.88 and second["valid_accuracy"] == pytest.approx(0.87)
    assert second["cpu_samples_per_s_b32"] == 190.0 and second["parameters"] == 500
    assert second["test_accuracy_vs_first"] == pytest.approx(0.88 / 0.90)
    assert second["cpu_speedup_vs_first"] == pytest.approx(1.9)
    assert second["size_vs_first"] == pytest.approx(0.5)
    assert first["test_accuracy_vs_first"] == pytest.approx(1.0)
    assert [row["test_accuracy"] for row in body["study"]] == [0.8753, 0.8731]  # negative/positive models


def test_each_model_brings_its_training_curves(api, pair):
    teacher, student = pair
    curves = api.get(URL, {"ids": f"{student.pk},{teacher.pk}"}).json()["curves"]
    assert [p[0] for p in curves[str(teacher.pk)]["train/loss"]] == list(range(1, 31))
    assert curves[str(teacher.pk)]["train/loss"][0][1] == pytest.approx(0.699)
    assert len(curves[str(student.pk)]["train/accuracy"]) == 20
    assert curves[str(student.pk)]["val/accuracy"] == [[20, pytest.approx(0.87)]]


def test_repeated_ids_parameters_work_like_a_comma_list_and_duplicates_count_once(api, pair):
    teacher, student = pair
    body = api.get(f"{URL}?ids={student.pk}&ids={teacher.pk}&ids={student.pk}").json()
    assert [row["id"] for row in body["models"]] == [student.pk, teacher.pk]


def test_an_imported_model_has_a_row_and_no_curves(api, user, pair):
    teacher, _ = pair
    imported = _model(user, "imported")
    body = api.get(URL, {"ids": f"{teacher.pk},{imported.pk}"}).json()
    assert body["models"][1]["name"] == "imported"
    assert body["curves"][str(imported.pk)] == {
        "train/loss": [], "train/accuracy": [], "val/accuracy": [], "train/hard_loss": [], "train/soft_loss": []
    }  # fmt: skip


def test_a_distilled_models_loss_parts_come_apart_and_its_cross_entropy_is_its_hard_part(api, user, pair):
    teacher, student = pair
    job = student.produced_by
    for point in MetricPoint.objects.filter(job=job, kind="train"):
        soft, hard = 0.2 + point.step / 100, 0.5 - point.step / 100
        point.values |= {"train/soft_loss": soft, "train/hard_loss": hard, "train/loss": 0.5 * soft + 0.5 * hard}
        point.save()
    curves = api.get(URL, {"ids": f"{teacher.pk},{student.pk}"}).json()["curves"]
    ours = curves[str(student.pk)]
    assert ours["train/hard_loss"][:2] == [[1, pytest.approx(0.49)], [2, pytest.approx(0.48)]]
    assert ours["train/soft_loss"][:2] == [[1, pytest.approx(0.21)], [2, pytest.approx(0.22)]]
    # On the loss chart (and the PNG's loss panel) each model is drawn by its cross-entropy.
    assert compare.cross_entropy(ours) == ours["train/hard_loss"]
    assert compare.cross_entropy(curves[str(teacher.pk)]) == curves[str(teacher.pk)]["train/loss"]


def test_a_long_run_is_thinned_to_means_of_consecutive_steps(api, user):
    record = _model(user, "long", steps=1000)
    curve = api.get(URL, {"ids": record.pk}).json()["curves"][str(record.pk)]["train/loss"]
    assert len(curve) == 334  # runs of 3 steps: ceil(1000 / 400)
    assert curve[0] == [3, pytest.approx(0.7 - 0.002)]  # mean of steps 1, 2, 3
    assert curve[-1] == [1000, pytest.approx(0.7 - 1.0)]  # the last run holds step 1000 alone


def test_the_comparison_costs_the_same_queries_for_two_models_or_eight(api, user, pair):
    teacher, student = pair
    with CaptureQueriesContext(connection) as two:
        assert api.get(URL, {"ids": f"{teacher.pk},{student.pk}"}).status_code == 200
    more = [_model(user, f"m{i}", teacher=teacher, steps=5) for i in range(6)]
    ids = ",".join(str(r.pk) for r in (teacher, student, *more))
    with CaptureQueriesContext(connection) as eight:
        assert api.get(URL, {"ids": ids}).status_code == 200
    assert len(eight) == len(two) == 3  # the token's user, the records, the metric points


def test_the_csv_has_one_line_per_model_under_the_benchmarks_names(api, pair):
    teacher, student = pair
    response = api.get(URL, {"ids": f"{teacher.pk},{student.pk}", "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == f'attachment; filename="distillery-compare-{teacher.pk}-{student.pk}.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == list(compare.COLUMNS)
    assert [r["name"] for r in rows] == ["teacher", "student"]
    assert float(rows[1]["test_accuracy_vs_first"]) == pytest.approx(0.88 / 0.90)
    assert rows[0]["teacher_id"] == "" and rows[1]["teacher_id"] == str(teacher.pk)


def test_the_csv_is_also_chosen_by_the_accept_header(api, pair):
    teacher, _ = pair
    response = api.get(URL, {"ids": teacher.pk}, HTTP_ACCEPT="text/csv")
    assert response.status_code == 200 and response.content.decode().startswith("id,name,kind,")


def test_the_png_is_a_figure_of_the_curves_and_the_test_accuracies(api, pair):
    from matplotlib.image import imread

    teacher, student = pair
    response = api.get(URL, {"ids": f"{teacher.pk},{student.pk}", "format": "png"})
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].endswith('.png"')
    image = imread(io.BytesIO(response.content), format="png")
    assert image.shape[:2] == (420, 1500)  # 15 x 4.2 inches at 100 dpi
    # The first two models' line colours (matplotlib's C0 and C1) are drawn, so both curves are on it.
    pixels = {tuple(int(round(c * 255)) for c in px[:3]) for px in image.reshape(-1, image.shape[2])}
    assert (31, 119, 180) in pixels and (255, 127, 14) in pixels


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({}, "name the models to compare"),
        ({"ids": "3,x"}, "whole numbers"),
        ({"ids": "3,\u00b2"}, "whole numbers"),  # "²": a digit to str.isdigit, which int() refuses (it was a 500)
        ({"ids": ",".join(str(i) for i in range(1, 10))}, "at most 8"),
    ],
)
@pytest.mark.parametrize("fmt", ["json", "csv", "png"])
def test_bad_ids_get_a_json_400_whatever_the_format(api, query, message, fmt):
    response = api.get(URL, {**query, "format": fmt})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert message in response.json()["ids"][0]


def test_unknown_ids_and_other_users_models_are_both_not_found(api, other_user, pair):
    teacher, _ = pair
    theirs = _model(other_user, "theirs")
    for ids in (f"{teacher.pk},999999", f"{teacher.pk},{theirs.pk}"):
        response = api.get(URL, {"ids": ids, "format": "csv"})
        assert response.status_code == 404
        assert response.json()["detail"] == f"no model with id {ids.split(',')[1]}"


def test_an_id_past_what_a_database_holds_is_not_found_like_any_unknown_id(api, pair):
    teacher, _ = pair
    huge = str(compare.MAX_ID + 1) + "0" * 10  # in pk__in, an OverflowError in the database driver: it was a 500
    response = api.get(URL, {"ids": f"{teacher.pk},{huge}"})
    assert response.status_code == 404
    assert response.json()["detail"] == f"no model with id {huge}"


def test_staff_compare_anyones_models(api, user, other_user):
    user.is_staff = True
    user.save()
    theirs = _model(other_user, "theirs")
    assert api.get(URL, {"ids": theirs.pk}).json()["models"][0]["name"] == "theirs"


def test_the_api_needs_authentication(client, pair):
    assert client.get(URL, {"ids": pair[0].pk}).status_code in (401, 403)


# ---------------------------------------------------------------- the page


def test_the_page_shows_the_table_the_downloads_and_the_curves(logged_in, pair):
    teacher, student = pair
    response = logged_in.get("/compare/", {"models": [teacher.pk, student.pk]})
    assert response.status_code == 200
    html = response.content.decode()
    results, speed = html.split('id="compare-table"')[1].split('id="speed-table"')
    for table in (results, speed):
        rows = table.split('data-model-id="')[1:]
        assert rows[0].startswith(str(teacher.pk)) and rows[1].startswith(str(student.pk))
    assert 'data-key="test_accuracy_vs_first">0.978<' in results.split('data-model-id="')[2]
    assert 'data-key="cpu_speedup_vs_first">1.90x<' in speed.split('data-model-id="')[2]
    assert f'href="/api/models/compare/?ids={teacher.pk},{student.pk}&amp;format=png"' in html
    assert "IMDB study: DistilBERT" in html
    assert 'id="comparison"' in html and "compare.js" in html
    # The download links work with the page's session, no token needed.
    png = logged_in.get("/api/models/compare/", {"ids": f"{teacher.pk},{student.pk}", "format": "png"})
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


def test_the_page_without_a_choice_lists_the_models_oldest_first(logged_in, pair):
    teacher, student = pair
    html = logged_in.get("/compare/").content.decode()
    assert html.index(f'id="choose-{teacher.pk}"') < html.index(f'id="choose-{student.pk}"')
    assert 'id="compare-table"' not in html


def test_the_page_says_what_is_wrong_with_the_ids(logged_in):
    response = logged_in.get("/compare/", {"models": "abc"})
    assert response.status_code == 400
    assert "model ids are whole numbers" in response.content.decode()


def test_the_page_hides_other_users_models(logged_in, other_user):
    assert logged_in.get("/compare/", {"models": _model(other_user, "theirs").pk}).status_code == 404


def test_a_students_page_links_to_the_comparison_with_its_teacher(logged_in, pair):
    teacher, student = pair
    html = logged_in.get(f"/models/{student.pk}/").content.decode()
    assert f'href="/compare/?models={teacher.pk},{student.pk}"' in html
    html = logged_in.get(f"/models/{teacher.pk}/").content.decode()
    assert f'href="/compare/?models={teacher.pk},{student.pk}"' in html and "Compare with its students" in html


def test_the_comparison_names_the_hyperparameters_that_differ(api, logged_in, user):
    from jobs.models import ModelRecord

    def record(name, **params):
        base = {"learning_rate": 2e-5, "epochs": 1, "device": "cpu", "seed": 42}
        return ModelRecord.objects.create(
            owner=user, name=name, kind="finetune", base_model="all-MiniLM-L6-v2", params=base | params,
            metrics={}, label_names=["neg", "pos"], num_parameters=1, size_bytes=1,
        )  # fmt: skip

    a, b = record("a"), record("b", learning_rate=5e-5, device="cuda")
    c = record("c", learning_rate=5e-5, warmup_ratio=0.1)

    body = api.get(f"/api/models/compare/?ids={a.pk},{b.pk},{c.pk}").json()

    assert body["differences"] == {"learning_rate": [2e-5, 5e-5, 5e-5], "warmup_ratio": [None, None, 0.1]}
    html = logged_in.get(f"/compare/?models={a.pk},{b.pk},{c.pk}").content.decode()
    assert '<tr data-param="learning_rate">' in html and 'data-param="device"' not in html
    assert api.get(f"/api/models/compare/?ids={a.pk}").json()["differences"] == {}


def test_the_png_bars_start_at_zero_the_legend_covers_no_bar_and_steps_tick_whole(user):
    teacher = _model(user, "teacher", test_acc=0.90, steps=3)  # 3 steps: matplotlib's own ticks would be 0.5 apart
    student = _model(user, "student", teacher=teacher, test_acc=0.88, steps=3)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = compare.figure(compare.comparison([teacher, student]))
    loss_ax, accuracy_ax, test_ax = figure.axes
    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # lays the figure out as savefig does
    renderer = canvas.get_renderer()

    assert test_ax.get_ylim()[0] == 0.0
    legend = test_ax.get_legend().get_window_extent(renderer)
    assert [t.get_text() for t in test_ax.get_legend().get_texts()] == ["IMDB study: BERT", "IMDB study: DistilBERT"]
    for bar in test_ax.patches:
        assert not legend.overlaps(bar.get_window_extent(renderer))
    for ax in (loss_ax, accuracy_ax):
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)
