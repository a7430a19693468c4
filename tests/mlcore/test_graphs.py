"""mlcore.graphs: which training calls a CUDA graph takes, and that a failed recording leaves training as it was.

CUDA graphs cannot run on this CPU machine, so torch.cuda.make_graphed_callables is replaced by a stand-in that
notes the shape it was asked to record and hands the module back unrecorded (the model's own numbers, so results
can be compared exactly). test_cuda.py records real graphs on a GPU.
"""

from __future__ import annotations

import logging

import pytest
import torch
from transformers import AutoModelForSequenceClassification

import mlcore.loop
from mlcore.config import DistillConfig, TrainConfig
from mlcore.distill import distill
from mlcore.graphs import GraphedModel
from mlcore.testing import RecordingCallback
from mlcore.train import finetune

from .conftest import TINY_TRAINING, count_syncs


@pytest.fixture
def recordings(monkeypatch) -> list[tuple[tuple[int, ...], str]]:
    """(shape, memory pool) of each recording asked for; pools are named pool0, pool1, ... as they are drawn."""
    recorded: list[tuple[tuple[int, ...], str]] = []
    pools = iter(range(100))
    monkeypatch.setattr(torch.cuda, "graph_pool_handle", lambda: f"pool{next(pools)}")

    def stand_in(module, sample_args, *, allow_unused_input, pool):
        assert allow_unused_input and len(sample_args) == 1
        recorded.append((tuple(sample_args[0].shape), pool))
        return module

    monkeypatch.setattr(torch.cuda, "make_graphed_callables", stand_in)
    return recorded


@pytest.fixture
def model(tiny_bert):
    return AutoModelForSequenceClassification.from_pretrained(tiny_bert).train()


def ids(rows: int, length: int) -> torch.Tensor:
    return torch.randint(5, 40, (rows, length), generator=torch.Generator().manual_seed(rows * 100 + length))


def test_a_shape_is_recorded_on_its_third_call_and_replayed_from_then_on(model, recordings):
    graphed = GraphedModel(model, after=3)
    for call in range(5):
        torch.manual_seed(call)  # the same dropout for the model called directly
        logits = graphed(input_ids=ids(4, 8)).logits
        torch.manual_seed(call)
        assert torch.equal(logits, model(input_ids=ids(4, 8)).logits)
    assert recordings == [((4, 8), "pool0")]
    assert graphed.replays == 3


def test_at_most_limit_shapes_are_recorded(model, recordings):
    graphed = GraphedModel(model, after=1, limit=2)
    for shape in [(4, 8), (4, 9), (2, 8), (4, 8), (2, 8)]:
        graphed(input_ids=ids(*shape))
    assert recordings == [((4, 8), "pool0"), ((4, 9), "pool0")]  # one model's graphs share one pool
    assert graphed.replays == 3  # (4, 8) twice and (4, 9) once; (2, 8) runs as usual


def test_calls_a_graph_cannot_stand_for_run_the_model_as_usual(model, recordings):
    graphed = GraphedModel(model, after=1)
    x = ids(4, 8)
    mask = torch.ones_like(x)
    mask[0, -2:] = 0
    assert graphed(input_ids=x, attention_mask=mask).logits.shape == (4, 2)  # padding: the mask decides
    assert len(graphed(input_ids=x, output_hidden_states=True).hidden_states) == model.config.num_hidden_layers + 1
    model.eval()  # a graph recorded in training mode would replay its dropout
    graphed(input_ids=x)
    assert recordings == [] and graphed.replays == 0


def test_an_unpadded_training_pass_never_reads_a_value_back(model, monkeypatch):
    # What lets a graph record it: a value read back (a host sync) would stop a recording on CUDA. With a mask,
    # transformers reads mask.all() (tests/mlcore/test_host_syncs.py); without one, nothing in the forward or
    # backward pass may. Counted for calls from any module.
    reads = count_syncs(monkeypatch, modules=None)
    x = ids(4, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False):
        logits = model(input_ids=x).logits
    torch.nn.functional.cross_entropy(logits.float(), torch.zeros(4, dtype=torch.long)).backward()
    assert reads == []
    model(input_ids=x, attention_mask=torch.ones_like(x))
    assert reads == ["__bool__"]  # the counter sees what it should


def test_a_failed_recording_is_logged_once_and_training_goes_on_without_graphs(model, monkeypatch, caplog):
    tries = []

    def failing(module, sample_args, **options):
        tries.append(1)
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(torch.cuda, "graph_pool_handle", lambda: "pool0")
    monkeypatch.setattr(torch.cuda, "make_graphed_callables", failing)
    graphed = GraphedModel(model, after=1)
    with caplog.at_level(logging.WARNING, logger="mlcore.graphs"):
        for _ in range(3):
            assert graphed(input_ids=ids(4, 8)).logits.shape == (4, 2)
    assert len(tries) == 1 and graphed.replays == 0
    assert graphed.error == "RuntimeError: operation not permitted when stream is capturing"
    assert "training goes on without" in caplog.text


UNPADDED = {**TINY_TRAINING, "epochs": 2, "max_length": 16}  # long_reviews' batches: no padding


def test_fine_tuning_and_distillation_replay_their_unpadded_steps(
    tiny_bert, long_reviews, tmp_path, recordings, monkeypatch
):
    reviews = long_reviews
    plain = finetune(reviews, str(tiny_bert), tmp_path / "plain", TrainConfig(**UNPADDED), RecordingCallback())
    assert plain.graphed_steps == 0 and recordings == []  # on CPU the loop calls the model itself

    monkeypatch.setattr(mlcore.loop, "_runner", lambda model, config, device, *rest: GraphedModel(model))
    teacher = finetune(reviews, str(tiny_bert), tmp_path / "teacher", TrainConfig(**UNPADDED), RecordingCallback())
    # 128 training rows in batches of 16: (16, 16) eight times an epoch; recorded at its third call.
    assert recordings == [((16, 16), "pool0")]
    assert (teacher.steps, teacher.graphed_steps) == (16, 14)
    assert teacher.metrics == plain.metrics  # the stand-in records nothing: the same numbers, through the graph path

    student = distill(reviews, teacher.output_dir, tmp_path / "student", DistillConfig(**UNPADDED), RecordingCallback())
    assert (student.steps, student.graphed_steps) == (16, 14)
    assert recordings == [((16, 16), "pool0"), ((16, 16), "pool1")]
