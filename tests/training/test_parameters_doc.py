"""Each parameter's default and range are written once (mlcore.config) and every reader shows the same: the
README's table and the API's catalogue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlcore.config import DistillConfig, TrainConfig, config_fields, parameters_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readmes_parameter_table_is_the_configs():
    marked = r"<!-- parameters: python -m mlcore.config -->\n(.*?)<!-- /parameters -->"
    block = re.search(marked, README.read_text(), re.S)
    assert block is not None and block.group(1) == parameters_markdown()


@pytest.mark.django_db
def test_the_catalogue_lists_every_parameter_with_its_range(api):
    body = api.get("/api/catalogue/").json()
    jobs_default = {"checkpoint_every": 200}  # the platform's (DISTILLERY_CHECKPOINT_EVERY), not mlcore's 0
    expected = {
        kind: [{**f, "default": jobs_default.get(f["name"], f["default"])} for f in config_fields(config)]
        for kind, config in (("finetune", TrainConfig), ("distill", DistillConfig))
    }
    assert body["parameters"] == expected
    by_name = {p["name"]: p for p in body["parameters"]["distill"]}
    assert by_name["max_length"]["range"] == {"low": 8, "high": 512, "low_open": False, "high_open": False}
    assert by_name["temperature"]["range"]["low_open"] is True
    assert by_name["truncation"]["choices"] == ["head", "head_tail"]
    assert body["defaults"]["finetune"]["max_length"] == by_name["max_length"]["default"] == 128


@pytest.mark.django_db
def test_the_catalogue_shows_the_checkpoint_interval_a_job_gets(api, settings, user, sentiment_csv):
    settings.DISTILLERY_CHECKPOINT_EVERY = 150
    body = api.get("/api/catalogue/").json()
    by_name = {p["name"]: p for p in body["parameters"]["finetune"]}
    assert body["defaults"]["finetune"]["checkpoint_every"] == by_name["checkpoint_every"]["default"] == 150
    assert body["defaults"]["distill"]["checkpoint_every"] == 150
    dataset = api.post("/api/datasets/", {"file": sentiment_csv}, format="multipart").json()
    job = api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset["id"]}, format="json").json()
    assert job["params"]["checkpoint_every"] == 150
