"""Configs default to the study's hyperparameters and refuse unknown, mistyped or out-of-range values."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest

from mlcore.config import (
    ConfigError,
    DistillConfig,
    Range,
    TrainConfig,
    config_defaults,
    config_fields,
    config_from_dict,
    config_help,
    field_choices,
    field_range,
    parameters_markdown,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_defaults_are_the_studys():
    config = DistillConfig()
    assert (config.max_length, config.batch_size, config.learning_rate) == (128, 64, 2e-5)
    assert (config.lr_gamma, config.lr_step_every, config.epochs) == (0.96, 10, 1)
    assert (config.alpha, config.temperature, config.student) == (0.5, 1.0, None)
    assert (config.valid_fraction, config.test_fraction, config.seed, config.device) == (0.1, 0.1, 42, "auto")


def test_the_recipe_options_default_to_the_studys_recipe_and_the_speed_options_are_on():
    config = DistillConfig()
    assert (config.truncation, config.scheduler, config.warmup_ratio, config.weight_decay) == (
        "head", "exponential", 0.0, 0.0,
    )  # fmt: skip
    assert (config.student_layers, config.hidden_loss_weight) == (None, 0.0)
    assert (config.group_by_length, config.precision) == ("auto", "auto")


def test_config_defaults_lists_every_field_in_order():
    defaults = config_defaults(DistillConfig)
    assert list(defaults)[:3] == ["max_length", "batch_size", "learning_rate"]
    assert list(defaults)[-5:] == ["alpha", "temperature", "student", "student_layers", "hidden_loss_weight"]
    assert defaults["lr_gamma"] == 0.96
    assert "alpha" not in config_defaults(TrainConfig)


def test_every_field_has_a_help_text():
    assert all(config_help(DistillConfig).values())


def test_an_unknown_parameter_is_named_with_the_known_ones():
    with pytest.raises(ConfigError, match=r"^unknown parameter 'lr'; known: max_length, batch_size, learning_rate,"):
        config_from_dict(TrainConfig, {"lr": 0.1})


def test_distillation_parameters_are_unknown_to_fine_tuning():
    with pytest.raises(ConfigError, match="unknown parameter 'alpha'"):
        config_from_dict(TrainConfig, {"alpha": 0.5})


def test_config_from_dict_builds_the_config_and_accepts_ints_for_floats():
    config = config_from_dict(DistillConfig, {"learning_rate": 1, "temperature": 2, "batch_size": 8})
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)
    assert config.temperature == 2.0 and isinstance(config.temperature, float)
    assert config.batch_size == 8


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"batch_size": "64"}, r"^batch_size must be a whole number, got '64'$"),
        ({"batch_size": 8.0}, r"^batch_size must be a whole number, got 8.0$"),
        ({"epochs": True}, r"^epochs must be a whole number, got True$"),
        ({"learning_rate": "2e-5"}, r"^learning_rate must be a number, got '2e-5'$"),
        ({"max_train_samples": "all"}, r"^max_train_samples must be a whole number or empty, got 'all'$"),
    ],
)
def test_wrong_types_are_refused(params, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(TrainConfig, params)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_length": 4}, r"^max_length must be in \[8, 512\], got 4$"),
        ({"max_length": 1024}, r"^max_length must be in \[8, 512\], got 1024$"),
        ({"batch_size": 0}, r"^batch_size must be in \[1, 1024\], got 0$"),
        ({"learning_rate": 0}, r"^learning_rate must be in \(0, 1\], got 0.0$"),
        ({"learning_rate": float("nan")}, r"^learning_rate must be in \(0, 1\], got nan$"),
        ({"lr_gamma": 1.5}, r"^lr_gamma must be in \(0, 1\], got 1.5$"),
        ({"lr_step_every": 0}, r"^lr_step_every must be in \[1, 1e\+06\], got 0$"),
        ({"epochs": 101}, r"^epochs must be in \[1, 100\], got 101$"),
        ({"valid_fraction": 0.5}, r"^valid_fraction must be in \[0, 0.5\), got 0.5$"),
        ({"test_fraction": -0.1}, r"^test_fraction must be in \[0, 0.5\), got -0.1$"),
        ({"max_eval_samples": 0}, r"^max_eval_samples must be at least 1 \(or empty for no limit\), got 0$"),
        ({"device": "gpu"}, r"^device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'$"),
        ({"truncation": "tail"}, r"^truncation must be one of 'head', 'head_tail', got 'tail'$"),
        ({"scheduler": "cosine"}, r"^scheduler must be one of 'exponential', 'linear', got 'cosine'$"),
        ({"scheduler": "linear", "warmup_ratio": 1.0}, r"^warmup_ratio must be in \[0, 1\), got 1.0$"),
        ({"warmup_ratio": 0.1}, r"^warmup_ratio needs scheduler 'linear'"),
        ({"weight_decay": -0.01}, r"^weight_decay must be in \[0, 1\], got -0.01$"),
        ({"group_by_length": 1}, r"^group_by_length must be true or false or a string, got 1$"),
        ({"group_by_length": "yes"}, r"^group_by_length must be one of 'auto', got 'yes'$"),
    ],
)
def test_out_of_range_values_are_refused_with_the_allowed_range(params, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(TrainConfig, params)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"alpha": 1.1}, r"^alpha must be in \[0, 1\], got 1.1$"),
        ({"temperature": 0}, r"^temperature must be in \(0, 100\], got 0.0$"),
        ({"student": "  "}, r"^student must be a model id or folder"),
        ({"student_layers": 0}, r"^student_layers must be in \[1, 1000\], got 0$"),
        ({"hidden_loss_weight": -1}, r"^hidden_loss_weight must be in \[0, 1000\], got -1.0$"),
        ({"student": "bert-base-uncased", "student_layers": 3}, r"apply to a derived student only"),
        ({"student": "bert-base-uncased", "hidden_loss_weight": 1.0}, r"apply to a derived student only"),
    ],
)
def test_distillation_values_are_checked_too(params, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(DistillConfig, params)


def test_booleans_are_accepted_where_the_field_is_a_boolean():
    assert config_from_dict(TrainConfig, {"group_by_length": False}).group_by_length is False


def test_direct_construction_is_validated_as_well():
    with pytest.raises(ConfigError, match="batch_size"):
        TrainConfig(batch_size=-1)


def test_a_non_dict_is_refused():
    with pytest.raises(ConfigError, match="must be a JSON object"):
        config_from_dict(TrainConfig, ["batch_size", 8])  # type: ignore[arg-type]


def test_an_optional_parameter_left_empty_skips_its_range():
    config = config_from_dict(
        DistillConfig, {"split_seed": None, "early_stopping_patience": None, "student_layers": None}
    )
    assert (config.split_seed, config.early_stopping_patience, config.student_layers) == (None, None, None)


def test_a_sample_limit_has_no_upper_bound():
    assert config_from_dict(TrainConfig, {"max_train_samples": 10**30}).max_train_samples == 10**30


@pytest.mark.parametrize(
    ("bounds", "text"),
    [
        (Range(8, 512), "[8, 512]"),
        (Range(0, 1, low_open=True), "(0, 1]"),
        (Range(0, 0.5, high_open=True), "[0, 0.5)"),
        (Range(0, 100, low_open=True, high_open=True), "(0, 100)"),
        (Range(1, 1_000_000), "[1, 1e+06]"),
        (Range(1, math.inf), "[1, inf)"),
    ],
)
def test_a_range_describes_itself_as_an_interval(bounds, text):
    assert bounds.describe() == text


@pytest.mark.parametrize(
    ("bounds", "value", "message"),
    [
        (Range(8, 512), 4, "x must be in [8, 512], got 4"),
        (Range(0, 1, low_open=True), 0.0, "x must be in (0, 1], got 0.0"),
        (Range(0, 1), float("nan"), "x must be in [0, 1], got nan"),
        (Range(0, math.inf), float("inf"), "x must be at least 0, got inf"),
        (Range(1, math.inf, note=" (or empty)"), 0, "x must be at least 1 (or empty), got 0"),
    ],
)
def test_a_range_refuses_a_value_outside_it_naming_the_parameter(bounds, value, message):
    with pytest.raises(ConfigError) as refused:
        bounds.check("x", value)
    assert str(refused.value) == message


def test_a_range_takes_its_closed_ends_and_refuses_its_open_ones():
    Range(8, 512).check("x", 8)
    Range(8, 512).check("x", 512)
    assert not Range(0, 1, low_open=True).contains(0) and Range(0, 1, low_open=True).contains(1)
    assert Range(0, 1, high_open=True).contains(0) and not Range(0, 1, high_open=True).contains(1)


def test_field_range_and_field_choices_read_the_field_metadata():
    assert field_range(TrainConfig, "learning_rate") == Range(0, 1, low_open=True)
    assert field_range(DistillConfig, "temperature") == Range(0, 100, low_open=True)
    assert field_range(TrainConfig, "truncation") is None
    assert field_choices(TrainConfig, "scheduler") == ("exponential", "linear")
    assert field_choices(TrainConfig, "batch_size") is None
    with pytest.raises(KeyError, match="TrainConfig has no parameter 'alpha'"):
        field_range(TrainConfig, "alpha")


def test_config_fields_lists_every_field_in_order_with_its_range_or_choices():
    fields = {f["name"]: f for f in config_fields(DistillConfig)}
    assert list(fields) == [f.name for f in dataclasses.fields(DistillConfig)]
    assert fields["learning_rate"] == {
        "name": "learning_rate", "type": "float", "default": 2e-5, "help": config_help(DistillConfig)["learning_rate"],
        "range": {"low": 0, "high": 1, "low_open": True, "high_open": False}, "choices": None,
    }  # fmt: skip
    assert fields["max_train_samples"]["type"] == "int | None"
    assert fields["max_train_samples"]["range"] == {"low": 1, "high": None, "low_open": False, "high_open": False}
    assert (fields["truncation"]["range"], fields["truncation"]["choices"]) == (None, ["head", "head_tail"])
    assert (fields["group_by_length"]["type"], fields["group_by_length"]["choices"]) == ("bool | str", ["auto"])
    assert (fields["cuda_graphs"]["type"], fields["cuda_graphs"]["range"]) == ("bool", None)
    assert [f["name"] for f in config_fields(TrainConfig)] == list(fields)[: len(config_fields(TrainConfig))]


def test_every_number_parameter_has_a_range_and_every_choice_a_check():
    for f in config_fields(DistillConfig):
        if "int" in f["type"].split(" | ") or "float" in f["type"].split(" | "):
            assert f["range"] is not None, f["name"]
        if f["choices"] is not None:
            bad = "not-a-choice"
            with pytest.raises(ConfigError, match=f"^{f['name']} must be one of"):
                config_from_dict(DistillConfig, {f["name"]: bad})


def _markdown_rows() -> dict[str, list[str]]:
    rows = [line.strip("|").split(" | ") for line in parameters_markdown().splitlines()[2:]]
    return {cells[0].strip().strip("`"): [c.strip() for c in cells] for cells in rows}


def test_the_parameters_table_has_a_row_per_parameter_with_its_default_and_interval():
    rows = _markdown_rows()
    assert list(rows) == [f.name for f in dataclasses.fields(DistillConfig)]
    assert rows["learning_rate"][1:4] == ["finetune, distill", "`2e-05`", "(0, 1]"]
    assert rows["temperature"][1:4] == ["distill", "`1.0`", "(0, 100]"]
    assert rows["student_layers"][2:4] == ["empty", "[1, 1000] or empty"]
    assert rows["truncation"][3] == "`'head'` or `'head_tail'`"
    assert rows["group_by_length"][3] == "`true`, `false` or `'auto'`"
    for f in config_fields(DistillConfig):
        bounds = field_range(DistillConfig, f["name"])
        assert bounds is None or bounds.describe() in rows[f["name"]][3], f["name"]
        assert rows[f["name"]][4] == f["help"]


def test_python_dash_m_mlcore_config_prints_the_table():
    run = subprocess.run([sys.executable, "-m", "mlcore.config"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert run.stdout == parameters_markdown()
