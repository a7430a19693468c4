"""Recipes are presets of valid job parameters; the benchmark's "best" is the one jobs get."""

from __future__ import annotations

import pytest

from mlcore.config import DistillConfig, TrainConfig, config_from_dict
from mlcore.recipes import BEST, RECIPES, STUDY, recipe


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_builds_a_valid_config_for_each_kind(name):
    train = config_from_dict(TrainConfig, recipe(name).params("finetune"))
    distill = config_from_dict(DistillConfig, recipe(name).params("distill"))
    assert isinstance(train, TrainConfig) and isinstance(distill, DistillConfig)


def test_study_is_the_defaults_and_best_changes_what_beat_the_study():
    assert STUDY.params("finetune") == {} and STUDY.params("distill") == {}
    teacher, student = config_from_dict(TrainConfig, BEST.finetune), config_from_dict(DistillConfig, BEST.distill)
    assert (teacher.truncation, teacher.scheduler, teacher.learning_rate, teacher.epochs) == (
        "head_tail", "linear", 5e-5, 2
    )  # fmt: skip
    assert (student.temperature, student.alpha, student.epochs) == (2.0, 0.5, 3)


def test_the_benchmarks_best_recipe_is_mlcores_without_its_epochs():
    from bench.train_bench import RECIPES as BENCH

    for kind, role in (("finetune", "teacher"), ("distill", "student")):
        expected = {k: v for k, v in BEST.params(kind).items() if k != "epochs"}
        assert {k: v for k, v in BENCH["best"][role].items() if k in expected} == expected


def test_an_unknown_recipe_or_kind_is_named():
    with pytest.raises(ValueError, match="unknown recipe 'fast'; choose from study, best"):
        recipe("fast")
    with pytest.raises(ValueError, match="unknown job kind 'classify'"):
        BEST.params("classify")
    params = BEST.params("finetune")
    params["epochs"] = 99
    assert BEST.finetune["epochs"] == 2  # a copy: the preset cannot be changed through it
