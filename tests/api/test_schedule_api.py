"""GET /api/datasets/{id}/schedule/: the learning rate of every step a launch on the dataset would train with,
before launch, from its row count; the query's values over a recipe's over the defaults, each checked as a launch
checks it, and only on the user's own datasets."""

from __future__ import annotations

import pytest

from jobs.datasets import services as dataset_services
from mlcore import recipes

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(user, sentiment_csv):
    return dataset_services.create_dataset(user, "reviews", sentiment_csv)  # 160 rows


def _plan(api, dataset, **query):
    response = api.get(f"/api/datasets/{dataset.pk}/schedule/", query)
    assert response.status_code == 200, response.content
    return response.json()


def test_linear_warmup_steps_and_rates_from_the_row_count(api, dataset):
    # 160 rows: 16 validation, 16 test, 128 training rows; batches of 16 -> 8 steps an epoch, 3 epochs -> 24 steps;
    # a quarter of them (6) warm up from 0, step 7 trains at the full rate, then it falls to 1/18 of it at step 24.
    plan = _plan(api, dataset, learning_rate=1e-3, batch_size=16, epochs=3, scheduler="linear", warmup_ratio=0.25)
    assert (plan["train_rows"], plan["steps_per_epoch"], plan["total_steps"], plan["warmup_steps"]) == (128, 8, 24, 6)
    rates = dict(plan["points"])
    assert list(rates) == list(range(1, 25))
    assert rates[1] == 0 and rates[4] == pytest.approx(1e-3 * 3 / 6) and rates[7] == pytest.approx(1e-3)
    assert rates[24] == pytest.approx(1e-3 / 18) and max(rates.values()) == pytest.approx(1e-3)


def test_the_exponential_schedule_steps_down_every_lr_step_every_batches(api, dataset):
    plan = _plan(api, dataset, learning_rate=2e-5, batch_size=32, epochs=2, lr_gamma=0.5, lr_step_every=3)
    assert (plan["steps_per_epoch"], plan["total_steps"], plan["warmup_steps"]) == (4, 8, 0)
    assert [lr for _, lr in plan["points"]] == pytest.approx([2e-5] * 3 + [1e-5] * 3 + [5e-6] * 2)


def test_a_recipe_fills_what_the_query_leaves_out_and_a_test_set_of_its_own_keeps_the_test_rows(api, dataset):
    best = recipes.RECIPES["best"].finetune  # linear, 6% warm-up, 5e-5, batch 32, 2 epochs
    plan = _plan(api, dataset, recipe="best")
    assert (plan["steps_per_epoch"], plan["total_steps"], plan["warmup_steps"]) == (4, 8, 1)
    assert plan["points"][1] == [2, pytest.approx(best["learning_rate"])]
    # the query's epochs over the recipe's; a test dataset of its own: 160 - 16 validation rows train
    plan = _plan(api, dataset, recipe="best", epochs=1, own_test_set=True)
    assert (plan["train_rows"], plan["steps_per_epoch"], plan["total_steps"]) == (144, 5, 5)
    plan = _plan(api, dataset, batch_size=16, max_train_samples=40)
    assert (plan["train_rows"], plan["total_steps"]) == (40, 3)


@pytest.mark.parametrize(
    "query, field, words",
    [
        ({"learning_rate": 0}, "params", "learning_rate"),
        ({"batch_size": 5000}, "batch_size", "1024"),
        ({"warmup_ratio": 1}, "params", "warmup_ratio"),
        ({"scheduler": "cosine"}, "scheduler", "cosine"),
        ({"epochs": "two"}, "epochs", "integer"),
        ({"epochs": 101}, "epochs", "100"),
        ({"recipe": "nonesuch"}, "recipe", "nonesuch"),
    ],
    ids=[
        "lr-zero", "batch-too-big", "warmup-all", "unknown-scheduler", "not-a-number", "too-many-epochs",
        "unknown-recipe",
    ],  # fmt: skip
)
def test_a_bad_value_is_a_400_naming_it(api, dataset, query, field, words):
    response = api.get(f"/api/datasets/{dataset.pk}/schedule/", query)
    assert response.status_code == 400
    assert words in str(response.json()[field])


def test_another_users_dataset_is_not_found_and_no_token_is_refused(api, other_api, dataset, client):
    assert other_api.get(f"/api/datasets/{dataset.pk}/schedule/").status_code == 404
    assert client.get(f"/api/datasets/{dataset.pk}/schedule/").status_code == 401
    assert api.get("/api/datasets/999999/schedule/").status_code == 404
