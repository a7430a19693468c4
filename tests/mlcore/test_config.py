"""Configs default to the study's hyperparameters and refuse unknown, mistyped or out-of-range values."""

from __future__ import annotations

import pytest

from mlcore.config import ConfigError, DistillConfig, TrainConfig, config_defaults, config_from_dict, config_help


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
