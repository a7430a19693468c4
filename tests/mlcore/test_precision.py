"""precision "auto" is bf16 autocast on a CUDA GPU that supports it and fp32 elsewhere; "bf16" trains on CPU too."""

from __future__ import annotations

import math

import pytest
import torch

from mlcore.config import ConfigError, TrainConfig
from mlcore.devices import autocast, autocast_dtype, cpu_has_bf16
from mlcore.inference import Classifier
from mlcore.testing import RecordingCallback
from mlcore.train import finetune

from .conftest import TINY_TRAINING

CUDA = torch.device("cuda")
CPU = torch.device("cpu")


@pytest.mark.parametrize(("native", "expected"), [(True, torch.bfloat16), (False, None)])
def test_auto_on_cpu_is_bf16_only_where_the_cpu_multiplies_bf16_natively(monkeypatch, native, expected):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert autocast_dtype(CPU, "auto") is expected
    assert autocast_dtype(CPU, "fp32") is None
    assert autocast_dtype(CPU, "bf16") is torch.bfloat16


def test_amx_alone_also_counts_as_native_bf16(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert cpu_has_bf16()
    assert autocast_dtype(CPU, "auto") is torch.bfloat16


def test_the_cpu_probe_reads_the_machines_flags():
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    assert cpu_has_bf16() == bool(flags & {"avx512_bf16", "amx_tile"})


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


def test_a_model_trained_in_bf16_is_scored_as_it_is_served(tiny_bert, sentiment, tmp_path):
    """Training and validation run in the training precision; the test split is scored in fp32, as the saved
    (fp32) model answers classify requests, so each stored test row's probabilities are its classify answer."""
    config = TrainConfig(**{**TINY_TRAINING, "epochs": 2, "precision": "bf16"})
    result = finetune(sentiment, str(tiny_bert), tmp_path / "out", config, RecordingCallback())
    rows = result.test_rows
    texts = [row["text"] for row in rows]
    served = [p for answer in Classifier.load(tmp_path / "out").predict(texts) for p in answer.probabilities.values()]
    stored = [p for row in rows for p in row["probabilities"]]
    assert stored == pytest.approx(served, abs=1e-6)
    # what a bf16 pass would have stored instead differs by far more than that
    with autocast(CPU, torch.bfloat16):
        bf16 = [p for a in Classifier.load(tmp_path / "out").predict(texts) for p in a.probabilities.values()]
    assert max(abs(a - b) for a, b in zip(bf16, served, strict=True)) > 1e-5
