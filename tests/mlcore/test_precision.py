"""precision "auto" is bf16 autocast on a CUDA GPU that supports it and fp32 elsewhere; "bf16" trains on CPU too."""

from __future__ import annotations

import math

import pytest
import torch

from mlcore.config import ConfigError, TrainConfig
from mlcore.devices import autocast, autocast_dtype
from mlcore.testing import RecordingCallback
from mlcore.train import finetune

from .conftest import TINY_TRAINING

CUDA = torch.device("cuda")
CPU = torch.device("cpu")


def test_auto_is_fp32_on_cpu_and_bf16_only_where_asked():
    assert autocast_dtype(CPU, "auto") is None
    assert autocast_dtype(CPU, "fp32") is None
    assert autocast_dtype(CPU, "bf16") is torch.bfloat16


@pytest.mark.parametrize(("supported", "expected"), [(True, torch.bfloat16), (False, None)])
def test_auto_on_cuda_follows_the_gpus_bf16_support(monkeypatch, supported, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
    assert autocast_dtype(CUDA, "auto") is expected
    assert autocast_dtype(CUDA, "fp32") is None


def test_bf16_on_a_gpu_without_it_is_an_error_not_a_silent_fp32_run(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(RuntimeError, match="does not support bfloat16"):
        autocast_dtype(CUDA, "bf16")


def test_an_unknown_precision_is_refused_by_the_config():
    with pytest.raises(ConfigError, match=r"^precision must be one of 'auto', 'fp32', 'bf16', got 'fp16'$"):
        TrainConfig(precision="fp16")


def test_the_autocast_context_runs_matmuls_in_bf16_and_fp32_is_left_alone():
    a = torch.ones(2, 2)
    with autocast(CPU, torch.bfloat16):
        assert (a @ a).dtype is torch.bfloat16
    with autocast(CPU, None):
        assert (a @ a).dtype is torch.float32


@pytest.mark.filterwarnings("ignore:CUDA is not available")  # torch.autocast("cuda") on a machine without one
@pytest.mark.parametrize("dtype", [torch.bfloat16, None])
def test_forward_passes_on_cuda_leave_out_cudnn_attention_and_put_it_back_after(dtype):
    """cuDNN attention plans every new batch length (up to seconds each on an H100); the context leaves it out
    while it is open and restores the process's settings after. Only flags are set, so this runs without a GPU."""
    assert torch.backends.cuda.cudnn_sdp_enabled()
    with autocast(CUDA, dtype):
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.mem_efficient_sdp_enabled()
        assert torch.backends.cuda.math_sdp_enabled()
    assert torch.backends.cuda.cudnn_sdp_enabled()
    with autocast(CPU, dtype):
        assert torch.backends.cuda.cudnn_sdp_enabled()


def test_bf16_training_on_cpu_gives_finite_metrics_that_differ_from_fp32(tiny_bert, sentiment, tmp_path):
    def losses(precision: str) -> list[float]:
        callback = RecordingCallback()
        config = TrainConfig(**{**TINY_TRAINING, "epochs": 1, "precision": precision})
        result = finetune(sentiment, str(tiny_bert), tmp_path / precision, config, callback)
        assert math.isfinite(result.metrics["test/loss"])
        return [m["train/loss"] for _, _, m in callback.batches]

    bf16, fp32 = losses("bf16"), losses("fp32")
    assert all(math.isfinite(x) for x in bf16)
    assert bf16 != fp32  # autocast really was on
    assert bf16[0] == pytest.approx(fp32[0], rel=0.05)  # and computed the same thing, less precisely
