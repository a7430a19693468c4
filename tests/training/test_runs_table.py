"""The runs page (/runs/) and its CSV (/runs/csv/): each user's jobs as one table, searched, filtered (by kind,
dataset, status and conditions on any hyperparameter or metric), sorted by any column in the database, with the
columns a user chooses, paged, ticked for Compare and exported as the view shows them."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.utils import timezone

from jobs.models import Dataset, Job, ModelRecord, Sweep
from jobs.training import runs
from mlcore.config import DistillConfig, TrainConfig, config_defaults

pytestmark = pytest.mark.django_db


class Page(HTMLParser):
    """What a test reads from the runs page: the headings and rows of #runs-table (each cell's text and whether
    it is hidden, by its data-col), the ticks of each row, and every element with an id by that id."""

    def __init__(self, html: str):
        super().__init__()
        self.headers: dict[str, dict] = {}
        self.rows: list[dict] = []
        self.ids: dict[str, dict] = {}
        self._in_table = self._in_body = False
        self._cell: dict | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids[attrs["id"]] = attrs | {"tag": tag}
        if tag == "table" and attrs.get("id") == "runs-table":
            self._in_table = True
        elif self._in_table and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr" and "data-job-id" in attrs:
            self.rows.append({"id": int(attrs["data-job-id"]), "cells": {}, "ticks": []})
        elif self._in_table and tag in ("th", "td") and "data-col" in attrs:
            self._cell = {"hidden": "hidden" in attrs, "text": "", "attrs": attrs}
            target = self.rows[-1]["cells"] if self._in_body else self.headers
            target[attrs["data-col"]] = self._cell
        elif self._in_body and tag == "input" and attrs.get("name") == "models":
            self.rows[-1]["ticks"].append(attrs)
        elif self._cell is not None and tag == "a":
            self._cell["href"] = attrs.get("href")

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            self._cell = None
        elif tag == "table":
            self._in_table = self._in_body = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] = " ".join((self._cell["text"] + " " + data).split())

    def column(self, key: str) -> list[str]:
        return [row["cells"][key]["text"] for row in self.rows]

    def visible(self) -> list[str]:
        return [key for key, cell in self.headers.items() if not cell["hidden"]]


def dataset(owner, name="reviews") -> Dataset:
    return Dataset.objects.create(
        owner=owner, name=name, file=f"datasets/{name}.csv", original_filename=f"{name}.csv", format="csv",
        text_column="text", label_column="label", num_rows=100, labels=["neg", "pos"],
        label_counts={"neg": 50, "pos": 50}, size_bytes=1000,
    )  # fmt: skip


def record(owner, name, metrics=None, **fields) -> ModelRecord:
    values = {"kind": "finetune", "params": {}, "label_names": ["neg", "pos"], "num_parameters": 22_700_000,
              "size_bytes": 91_000_000} | fields  # fmt: skip
    return ModelRecord.objects.create(owner=owner, name=name, metrics=metrics or {}, **values)


def job(owner, data, *, kind="finetune", status="succeeded", seconds=47, model=None, created_ago=0, **params):
    """A finished (or not) job of `kind` whose params are the config's defaults with `params` over them."""
    config = DistillConfig if kind == "distill" else TrainConfig
    now = timezone.now()
    started = now - timedelta(seconds=seconds) if status != "queued" else None
    made = Job.objects.create(
        owner=owner, kind=kind, dataset=data, status=status,
        base_model="all-MiniLM-L6-v2" if kind == "finetune" else "",
        params=config_defaults(config) | params if kind != "classify" else {"text_column": "text", "rows": 3},
        started_at=started, finished_at=now if status in Job.FINISHED else None, result_model=model,
    )  # fmt: skip
    if created_ago:
        Job.objects.filter(pk=made.pk).update(created_at=now - timedelta(minutes=created_ago))
    return made


@pytest.fixture
def data(user):
    return dataset(user)


@pytest.fixture
def three(user, data):
    """A fine-tune at lr 2e-5 (test 0.8123), one at 5e-5 with the linear schedule (test 0.75), and a distil of
    the first at alpha 0.7 that failed after 2 min 5 s without a model."""
    teacher = record(user, "minilm-imdb", {"test/accuracy": 0.8123, "val/accuracy": 0.8, "cpu/latency_ms_b1": 12.34})
    slow = record(user, "minilm-fast-lr", {"test/accuracy": 0.75, "val/accuracy": 0.74})
    a = job(user, data, model=teacher, created_ago=30)
    b = job(user, data, model=slow, learning_rate=5e-5, scheduler="linear", warmup_ratio=0.1, created_ago=20,
            seconds=3725)  # fmt: skip
    c = job(user, data, kind="distill", status="failed", seconds=125, alpha=0.7, created_ago=10)
    Job.objects.filter(pk=c.pk).update(teacher=teacher)
    return a, b, c


def page(client, **query) -> Page:
    response = client.get("/runs/", query)
    assert response.status_code == 200, response.content.decode()[:2000]
    return Page(response.content.decode())


def test_the_page_shows_each_run_with_its_hyperparameters_and_its_models_metrics(logged_in, three):
    a, b, c = three
    table = page(logged_in, columns="id,name,kind,status,model,duration,learning_rate,alpha,test_accuracy,"
                                    "cpu_latency_ms_b1,size_mb")  # fmt: skip

    assert [row["id"] for row in table.rows] == [c.pk, b.pk, a.pk]  # newest first
    rows = {row["id"]: row["cells"] for row in table.rows}
    assert rows[a.pk]["name"]["text"] == "minilm-imdb" and rows[a.pk]["name"]["href"] == f"/models/{a.result_model_id}/"
    assert rows[a.pk]["id"]["href"] == f"/jobs/{a.pk}/"
    assert rows[a.pk]["model"]["text"] == "all-MiniLM-L6-v2" and rows[c.pk]["model"]["text"] == "minilm-imdb"
    assert [rows[j.pk]["learning_rate"]["text"] for j in three] == ["2e-05", "5e-05", "2e-05"]
    assert [rows[j.pk]["alpha"]["text"] for j in three] == ["—", "—", "0.7"]  # distillation's own
    assert [rows[j.pk]["test_accuracy"]["text"] for j in three] == ["0.8123", "0.7500", "—"]
    assert rows[a.pk]["cpu_latency_ms_b1"]["text"] == "12.3" and rows[a.pk]["size_mb"]["text"] == "91.0"
    assert [rows[j.pk]["duration"]["text"] for j in three] == ["47 s", "1 h 2 min", "2 min 5 s"]
    assert rows[c.pk]["status"]["text"] == "failed" and rows[c.pk]["kind"]["text"] == "Distil"


def test_another_users_runs_are_not_listed_nor_exported_and_staff_see_whose_each_is(
    client, logged_in, user, other_user, three, django_user_model
):
    theirs = job(other_user, dataset(other_user, "their-data"), model=record(other_user, "their-model"))

    mine = page(logged_in)
    assert theirs.pk not in [row["id"] for row in mine.rows] and len(mine.rows) == 3
    assert "owner" not in mine.visible()
    exported = list(csv.reader(io.StringIO(logged_in.get("/runs/csv/", {"columns": "id,name"}).content.decode())))
    assert [row[0] for row in exported[1:]] == [str(j.pk) for j in reversed(three)]
    assert page(logged_in, q=str(theirs.pk)).rows == []  # not by its id either
    assert logged_in.get("/runs/", {"dataset": theirs.dataset_id}).status_code == 400  # nor its dataset

    client.force_login(other_user)
    assert [row["id"] for row in page(client).rows] == [theirs.pk]

    staff = django_user_model.objects.create_user("carol", password="carol-pass-123", is_staff=True)
    client.force_login(staff)
    everyone = page(client)
    assert len(everyone.rows) == 4 and "owner" in everyone.visible()
    assert sorted(everyone.column("owner")) == ["alice", "alice", "alice", "bob"]


def test_the_page_needs_a_login(client):
    assert client.get("/runs/").status_code == 302 and client.get("/runs/csv/").status_code == 302


def test_search_matches_the_name_the_dataset_the_model_and_the_id(logged_in, user, three):
    a, b, c = three
    other = job(user, dataset(user, "tweets"), model=record(user, "tweet-model"))

    def found(text):
        return [row["id"] for row in page(logged_in, q=text).rows]

    assert found("fast-lr") == [b.pk]
    assert found("TWEETS") == [other.pk]
    assert found("minilm-imdb") == [c.pk, a.pk]  # a's model, and c's teacher
    assert found(f"#{b.pk}") == [b.pk]
    assert found("minilm fast") == [b.pk]  # every word
    assert found("nothing-like-it") == []


def test_kind_status_and_dataset_filters_choose_runs_and_combine(logged_in, user, three):
    a, b, c = three
    elsewhere = job(user, dataset(user, "tweets"), status="running")

    def found(**query):
        return sorted(row["id"] for row in page(logged_in, **query).rows)

    assert found(kind="distill") == [c.pk]
    assert found(status=["failed", "running"]) == sorted([c.pk, elsewhere.pk])
    assert found(dataset=elsewhere.dataset_id) == [elsewhere.pk]
    assert found(dataset=a.dataset_id, kind="finetune", status="succeeded") == sorted([a.pk, b.pk])
    assert logged_in.get("/runs/", {"kind": "nonsense"}).status_code == 400

    # the form shows what it applies
    html = logged_in.get("/runs/", {"status": ["failed", "running"], "dataset": a.dataset_id}).content.decode()
    ticked = re.findall(r'<input type="checkbox" name="status" value="(\w+)" checked>', html)
    assert ticked == ["running", "failed"]  # in the choices' order
    assert re.findall(r'<option value="(\d+)" selected>', html) == [str(a.dataset_id)]


@pytest.mark.parametrize(
    "where, expected",
    [
        ("learning_rate <= 3e-5", "ac"),
        ("learning_rate > 3e-5", "b"),
        ("test_accuracy >= 0.8", "a"),
        ("test_accuracy >= 0.7 and learning_rate = 5e-5", "b"),
        ("scheduler = linear", "b"),
        ("scheduler != linear", "ac"),
        ("keep_best_epoch = false, alpha = 0.7", "c"),
        ("duration >= 120", "bc"),
        ("test_accuracy = null", "c"),
        ("valid_accuracy != null", "ab"),
        ("cpu_latency_ms_b1 < 20", "a"),
        ("size_mb >= 91", "ab"),
        ("id = {b}", "b"),
    ],
)
def test_conditions_on_hyperparameters_and_metrics_choose_runs(logged_in, three, where, expected):
    a, b, c = three
    named = dict(zip("abc", three, strict=True))
    rows = page(logged_in, where=where.format(b=b.pk)).rows
    assert sorted(row["id"] for row in rows) == sorted(named[letter].pk for letter in expected)


@pytest.mark.parametrize(
    "where, message",
    [
        ("test_acc >= 0.8", "no column “test_acc” to filter on"),
        ("learning_rate <= fast", "learning_rate compares with a number"),
        ("scheduler < linear", "scheduler takes = or != only"),
        ("learning rate", "is not a condition such as"),
        ("name = x", "no column “name” to filter on"),
    ],
)
def test_a_condition_that_cannot_be_applied_is_a_400_that_says_why(logged_in, three, where, message):
    response = logged_in.get("/runs/", {"where": where})
    assert response.status_code == 400
    table = Page(response.content.decode())
    assert message in response.content.decode() and "runs-errors" in table.ids
    assert logged_in.get("/runs/csv/", {"where": where}).status_code == 400  # the CSV never exports more


def test_the_database_applies_the_conditions_and_the_sort(user, three):
    # Not Python over a page of rows: the SQL holds them, so that paging and counting agree with the filter.
    query = str(runs.apply_conditions(runs.runs(user), runs.parse_conditions("learning_rate <= 3e-5")).query)
    assert "learning_rate" in query and "WHERE" in query
    assert "test/accuracy" in str(runs.runs(user).order_by(*runs.ordering("-test_accuracy")).query)


def test_sorting_by_a_metric_puts_runs_without_it_last_in_either_direction(logged_in, three):
    a, b, c = three
    assert [row["id"] for row in page(logged_in, sort="test_accuracy").rows] == [b.pk, a.pk, c.pk]
    assert [row["id"] for row in page(logged_in, sort="-test_accuracy").rows] == [a.pk, b.pk, c.pk]
    assert [row["id"] for row in page(logged_in, sort="-duration").rows] == [b.pk, c.pk, a.pk]
    assert [row["id"] for row in page(logged_in, sort="alpha").rows][0] == c.pk
    assert [row["id"] for row in page(logged_in, sort="-learning_rate").rows][0] == b.pk
    # exponential before linear; a tie goes newest first
    assert [row["id"] for row in page(logged_in, sort="scheduler").rows] == [c.pk, a.pk, b.pk]
    assert logged_in.get("/runs/", {"sort": "-no_such_column"}).status_code == 400


def test_a_headings_link_sorts_by_it_ascending_then_descending_and_says_which(logged_in, three):
    table = page(logged_in, sort="test_accuracy", where="learning_rate > 0", columns="id,test_accuracy")
    heading = table.headers["test_accuracy"]
    assert heading["attrs"]["aria-sort"] == "ascending"
    assert "sort=-test_accuracy" in heading["href"] and "where=learning_rate" in heading["href"]
    assert "columns=id%2Ctest_accuracy" in heading["href"]  # the view's other settings stay
    assert "sort=epochs" in table.headers["epochs"]["href"] and "aria-sort" not in table.headers["epochs"]["attrs"]
    assert page(logged_in, sort="-test_accuracy").headers["test_accuracy"]["attrs"]["aria-sort"] == "descending"


def test_an_imported_models_metrics_that_are_not_numbers_are_empty_cells_not_errors(logged_in, user, data, three):
    a, b, c = three
    odd = record(user, "imported", {"test/accuracy": "high", "val/accuracy": True, "cpu/latency_ms_b1": 10**400})
    imported = job(user, data, model=odd)
    table = page(logged_in, sort="-test_accuracy", columns="id,test_accuracy,valid_accuracy,cpu_latency_ms_b1")
    assert [row["id"] for row in table.rows] == [a.pk, b.pk, imported.pk, c.pk]  # no value: last, newest first
    cells = next(row["cells"] for row in table.rows if row["id"] == imported.pk)
    assert [cells[key]["text"] for key in ("test_accuracy", "valid_accuracy", "cpu_latency_ms_b1")] == ["—"] * 3
    assert sorted(row["id"] for row in page(logged_in, where="test_accuracy >= 0").rows) == [a.pk, b.pk]
    assert [row["id"] for row in page(logged_in, where="valid_accuracy = 1").rows] == []  # true is not 1
    page(logged_in, sort="cpu_latency_ms_b1", where="cpu_latency_ms_b1 >= 0")  # past a double's range: no error


def test_the_columns_come_from_the_url_the_rest_are_hidden_and_unknown_names_are_ignored(logged_in, user, three):
    table = page(logged_in, columns="test_accuracy,id,bogus,learning_rate")
    assert table.visible() == ["id", "learning_rate", "test_accuracy"]  # the table's order
    assert all(row["cells"]["alpha"]["hidden"] for row in table.rows)
    assert set(table.headers) == set(runs.COLUMNS)  # every column is there for the chooser to show
    assert page(logged_in).visible() == runs.default_columns(user)
    assert page(logged_in, columns="bogus").visible() == runs.default_columns(user)
    assert page(logged_in, columns=["id", "epochs"]).visible() == ["id", "epochs"]  # the chooser form without JS


def test_the_views_links_and_forms_carry_its_settings(logged_in, three):
    html = logged_in.get("/runs/", {"columns": "id,epochs", "sort": "-epochs", "kind": "finetune",
                                    "per_page": 25}).content.decode()  # fmt: skip
    table = Page(html)
    assert table.ids["runs-csv"]["href"].startswith("/runs/csv/?")
    for part in ("columns=id%2Cepochs", "sort=-epochs", "kind=finetune", "per_page=25"):
        assert part in table.ids["runs-csv"]["href"]
    assert table.ids["runs-clear"]["href"] == "/runs/?columns=id%2Cepochs&sort=-epochs&per_page=25"
    # the filter form keeps the sort and columns (hidden), not the filters it shows itself
    assert '<input type="hidden" name="sort" value="-epochs">' in html
    assert '<input type="hidden" name="kind"' not in html.split('id="runs-filter-form"')[1].split("</form>")[0]


def test_the_list_takes_the_same_few_queries_for_three_runs_or_sixty(logged_in, user, data, three,
                                                                      django_assert_num_queries):  # fmt: skip
    query = {"columns": ",".join(runs.COLUMNS), "where": "learning_rate > 0", "sort": "-test_accuracy"}
    # session, user, count, the page's rows, the dataset filter's choices
    with django_assert_num_queries(5):
        assert len(page(logged_in, **query).rows) == 3
    teacher = three[0].result_model
    for i in range(57):
        made = job(user, data, kind="distill", model=record(user, f"student-{i}", {"test/accuracy": i / 100}))
        Job.objects.filter(pk=made.pk).update(teacher=teacher, sweep=None)
    with django_assert_num_queries(5):
        assert len(page(logged_in, **query, per_page=100).rows) == 60
    with django_assert_num_queries(4):  # the CSV: session, user, the datasets the filter checks, the rows
        logged_in.get("/runs/csv/", {**query, "dataset": data.pk})


def test_pages_bound_the_rows_and_the_csv_holds_every_page(logged_in, user, data):
    made = [job(user, data, seed=i) for i in range(60)]
    first = page(logged_in, per_page=25, sort="seed")
    assert [row["cells"]["id"]["text"] for row in first.rows] == [f"#{j.pk}" for j in made[:25]]
    assert "Page 1 of 3" in logged_in.get("/runs/", {"per_page": 25}).content.decode()
    assert len(page(logged_in, per_page=25, page=3).rows) == 10
    assert len(page(logged_in, per_page=25, page=99).rows) == 10  # past the end: the last page
    assert len(page(logged_in, per_page=7).rows) == 50  # a size not offered: the default
    exported = list(csv.reader(io.StringIO(logged_in.get("/runs/csv/", {"per_page": 25, "page": 2}).content.decode())))
    assert len(exported) == 61


def test_the_csv_is_the_current_view_its_columns_order_and_raw_values(logged_in, user, three):
    a, b, c = three
    record(user, "=HYPERLINK(1)")  # a name a spreadsheet would run
    formula = job(user, a.dataset, model=ModelRecord.objects.get(name="=HYPERLINK(1)"), learning_rate=3e-5)
    response = logged_in.get("/runs/csv/", {"columns": "id,name,learning_rate,test_accuracy,keep_best_epoch,created",
                                            "sort": "-learning_rate", "where": "learning_rate >= 2e-5",
                                            "kind": "finetune"})  # fmt: skip
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="distillery-runs.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    # in the table's order
    assert rows[0] == ["id", "name", "created", "learning_rate", "keep_best_epoch", "test_accuracy"]
    assert [row[:2] + row[3:] for row in rows[1:]] == [
        [str(b.pk), "minilm-fast-lr", "5e-05", "false", "0.75"],
        [str(formula.pk), "'=HYPERLINK(1)", "3e-05", "false", ""],
        [str(a.pk), "minilm-imdb", "2e-05", "false", "0.8123"],
    ]
    assert rows[1][2] == Job.objects.get(pk=b.pk).created_at.isoformat()


def test_ticking_runs_that_made_a_model_opens_compare_with_them(logged_in, three):
    a, b, c = three
    table = page(logged_in)
    ticks = {row["id"]: row["ticks"] for row in table.rows}
    assert [t["value"] for t in ticks[a.pk]] == [str(a.result_model_id)] and ticks[c.pk] == []  # c made none
    assert ticks[a.pk][0]["aria-label"] == f"Compare run #{a.pk}"
    form = table.ids["compare-form"]
    assert form["action"] == "/compare/" and form["method"] == "get" and form["data-max"] == "8"
    # what the form submits with two ticked
    compared = logged_in.get(form["action"], {"models": [a.result_model_id, b.result_model_id]})
    assert compared.status_code == 200
    assert "minilm-imdb" in compared.content.decode() and "minilm-fast-lr" in compared.content.decode()


def test_the_top_nav_and_the_dashboards_jobs_card_link_to_the_runs(logged_in):
    html = logged_in.get("/").content.decode()
    assert '<a href="/runs/">Runs</a>' in html and 'id="all-runs-link"' in html
    assert 'href="/runs/" class="active" aria-current="page"' in logged_in.get("/runs/").content.decode()


def test_every_input_on_the_page_has_a_label(logged_in, three):
    html = logged_in.get("/runs/").content.decode()
    table = Page(html)
    fields = [name for name, attrs in table.ids.items() if attrs["tag"] in ("input", "select", "textarea")]
    assert {"id_q", "id_dataset", "id_where", "condition-column", "condition-value", "per-page"} <= set(fields)
    for name in fields:
        assert f'for="{name}"' in html, name
    # the checkboxes have no id: each sits inside its label, or names its run
    assert html.count('<label class="check"') == len(runs.COLUMNS) + len(Job.Kind) + len(Job.Status)


def test_a_classify_job_is_a_run_with_its_file_and_model(logged_in, user, three):
    classifier = three[0].result_model
    made = job(user, None, kind="classify", status="succeeded")
    Job.objects.filter(pk=made.pk).update(model=classifier, input_filename="batch.csv")
    row = next(r for r in page(logged_in, columns="id,kind,dataset,model,learning_rate").rows if r["id"] == made.pk)
    assert row["cells"]["dataset"]["text"] == "batch.csv" and row["cells"]["model"]["text"] == "minilm-imdb"
    assert row["cells"]["learning_rate"]["text"] == "—" and row["ticks"] == []


def test_a_sweeps_page_opens_the_runs_of_that_sweep_only(logged_in, user, other_user, data, three):
    a, b, c = three
    sweep = Sweep.objects.create(owner=user, name="lr sweep", kind="finetune", dataset=data, params={}, grid={})
    Job.objects.filter(pk__in=[a.pk, b.pk]).update(sweep=sweep)
    assert f'href="/runs/?sweep={sweep.pk}"' in logged_in.get(f"/sweeps/{sweep.pk}/").content.decode()

    table = page(logged_in, sweep=sweep.pk, columns="id,sweep")
    assert [row["id"] for row in table.rows] == [b.pk, a.pk] and table.column("sweep") == ["lr sweep"] * 2
    assert "runs-sweep" in table.ids
    theirs = Sweep.objects.create(owner=other_user, name="theirs", kind="finetune", params={}, grid={})
    assert logged_in.get("/runs/", {"sweep": theirs.pk}).status_code == 400
