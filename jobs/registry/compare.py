"""Models side by side: the study's table, size and CPU speed relative to the first model, overlaid training
curves; as a dict (the page and the API's JSON), a CSV and a PNG.

Runs in: the web process. (Answering a text with several models, "Try a text", is serving's: serving.classify.)
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError

from mlcore import csvsafe

from ..models import MetricPoint, ModelRecord
from .quality import test_summary
from .storage import model_config

MAX_MODELS = 8  # models in one comparison; the overlaid curves stop being readable beyond that
MAX_ID = 2**63 - 1  # the largest id a database can hold (a BigAutoField); a larger number names no model
CURVE_POINTS = 400  # points per curve at most: a longer run is averaged over equal runs of consecutive steps
# A distillation's train/loss mixes the KL with cross-entropy; its hard part is the cross-entropy (cross_entropy).
CURVES = ("train/loss", "train/accuracy", "val/accuracy", "train/hard_loss", "train/soft_loss")

# Figures of a row taken from the model record's metrics: (row key, metric key). The row keys are the training
# benchmark's names (bench/train_bench.py) and the CSV's headers.
METRICS = (
    ("avg_train_accuracy", "train/avg_accuracy"),
    ("valid_accuracy", "val/accuracy"),
    ("test_accuracy", "test/accuracy"),
    ("avg_train_loss", "train/avg_loss"),
    ("test_macro_f1", "test/macro_f1"),
    ("cpu_latency_ms_b1", "cpu/latency_ms_b1"),
    ("cpu_samples_per_s_b32", "cpu/samples_per_s_b32"),
    # Calibration on the test rows, and a distilled model's agreement with its teacher (registry.insight).
    ("ece", "ece"),
    ("ece_uncalibrated", "ece_uncalibrated"),
    ("val_agreement", "val/agreement"),
    ("test_agreement", "test/agreement"),
)
# A row's keys in CSV order; the ratios are against the first model (the speed ones: on the figures _speed says).
COLUMNS = (
    "id", "name", "kind", "base_model", "teacher_id", "dataset",
    *(key for key, _ in METRICS[:5]),
    "test_rows", "test_accuracy_ci_low", "test_accuracy_ci_high", "majority_baseline",
    "parameters", "size_bytes", *(key for key, _ in METRICS[5:7]), "serving_precision",
    "serving_latency_ms_b1_fp32", "serving_samples_per_s_b32_fp32", "serving_latency_ms_b1_int8",
    "serving_samples_per_s_b32_int8", "serving_measured_at",
    "test_accuracy_vs_first", "cpu_speedup_vs_first", "cpu_speedup_fp32_vs_first", "size_vs_first",
    *(key for key, _ in METRICS[7:]), "temperature",
)  # fmt: skip

# The study's results on IMDB (product.md), shown beside models of the same task as the bar to beat.
STUDY_ROWS = (
    {"name": "IMDB study: BERT", "avg_train_accuracy": 0.8470, "valid_accuracy": 0.8746, "test_accuracy": 0.8753,
     "avg_train_loss": 0.2966},
    {"name": "IMDB study: DistilBERT", "avg_train_accuracy": 0.8273, "valid_accuracy": 0.8688,
     "test_accuracy": 0.8731, "avg_train_loss": 0.2927},
)  # fmt: skip
# The study's task: binary sentiment, as IMDB's folders (neg, pos) or its hub dataset (negative, positive) label it.
STUDY_LABELS = ({"neg", "pos"}, {"negative", "positive"})


def study_applies(label_names: Iterable[str]) -> bool:
    """Whether the study's IMDB figures compare with a model of these labels: two labels, negative and positive
    (any case). On any other task, an accuracy of 0.87 says nothing about the study's."""
    names = {str(name).strip().lower() for name in label_names or ()}
    return names in STUDY_LABELS


def study_rows(records: Iterable[ModelRecord]) -> list[dict[str, Any]]:
    """The study's rows when every one of the records is of the study's task, else none."""
    records = list(records)
    return list(STUDY_ROWS) if records and all(study_applies(r.label_names) for r in records) else []


def parse_ids(values: Iterable[str]) -> list[int]:
    """Model ids from query values such as ["3,4", "7"], in the order given, each once.

    Raises ValidationError with a message a user can act on: no ids, a non-number, more than MAX_MODELS.
    """
    ids: list[int] = []
    for value in values:
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            if not (part.isascii() and part.isdigit()):  # "²" is a digit to str.isdigit, and int() refuses it
                raise ValidationError(f"model ids are whole numbers, not {part[:40]!r}")
            if int(part) not in ids:
                ids.append(int(part))
    if not ids:
        raise ValidationError("name the models to compare, e.g. ?ids=3,4")
    if len(ids) > MAX_MODELS:
        raise ValidationError(f"compare at most {MAX_MODELS} models at a time, not {len(ids)}")
    return ids


def load_models(user, ids: list[int]) -> list[ModelRecord]:
    """The records with these ids that `user` may see, in the order of `ids`.

    Raises ModelRecord.DoesNotExist naming the ids that are unknown or another user's (not told apart, so that
    nobody learns which ids exist).
    """
    # A number past MAX_ID in pk__in is an OverflowError in the database driver (a 500); it is simply unknown.
    held = [i for i in ids if i <= MAX_ID]
    found = {m.pk: m for m in ModelRecord.objects.visible_to(user).filter(pk__in=held).select_related("dataset")}
    missing = [i for i in ids if i not in found]
    if missing:
        raise ModelRecord.DoesNotExist(f"no model with id {', '.join(map(str, missing))}")
    return [found[i] for i in ids]


def comparison(records: list[ModelRecord]) -> dict[str, Any]:
    """{"reference": the first model's id, "models": one row per model (COLUMNS), "curves": {model id:
    {curve name: [[step, value], ...]}}, "study": the study's IMDB rows when every model is of its task (binary
    sentiment, study_applies), else []}. Two queries whatever the number of models."""
    reference = records[0]
    rows = [_row(record, reference) for record in records]
    return {
        "reference": reference.pk, "models": rows, "curves": _curves(records), "study": study_rows(records),
        "architecture": architecture(records), "differences": differences(records), "speed": _speed(rows, records),
    }  # fmt: skip


# The architecture's figures from a model's config.json: (row name, config keys that hold it, BERT's then others').
ARCHITECTURE = (
    ("model type", ("model_type",)),
    ("layers", ("num_hidden_layers", "n_layers", "num_layers")),
    ("hidden size", ("hidden_size", "dim", "d_model")),
    ("attention heads", ("num_attention_heads", "n_heads")),
)


def architecture(records: list[ModelRecord]) -> dict[str, list[Any]]:
    """{figure: [its value for each model]}: model type, layers, hidden size and attention heads from each model's
    config.json, and its parameters; shown whether or not they differ, as what a student's speed comes from."""
    configs = [model_config(record) for record in records]
    out = {name: [next((c[k] for k in keys if k in c), None) for c in configs] for name, keys in ARCHITECTURE}
    out["parameters"] = [record.num_parameters for record in records]
    return out


def _speed(rows: list[dict[str, Any]], records: list[ModelRecord]) -> dict[str, Any]:
    """Set each row's speed ratios against the first and say which figures they use: the serving side's when
    every model was measured there together (one re-measure), else the worker's."""
    runs = {(record.serving_speed or {}).get("run") for record in records}
    served = [row.get(f"serving_samples_per_s_b32_{row['serving_precision']}") for row in rows]
    fp32 = [row.get("serving_samples_per_s_b32_fp32") for row in rows]
    if len(runs) == 1 and None not in runs and None not in served:
        how = records[0].serving_speed
        for row, value, alike in zip(rows, served, fp32, strict=True):
            row["cpu_speedup_vs_first"] = _ratio(value, served[0])
            row["cpu_speedup_fp32_vs_first"] = _ratio(alike, fp32[0])
        note = (
            "Speed vs first: texts per second in batches of 32, each model at the precision it serves (and, in the "
            f"next column, all at fp32), measured together in the {how.get('where')} at {how.get('measured_at')}, "
            f"{how.get('runtime')} runtime: {how.get('method')}, {how.get('rounds')} rounds, on {how.get('texts')}."
        )
        return {"basis": "serving", "note": note, "measured_at": how.get("measured_at")}
    first = _number((records[0].metrics or {}).get("cpu/samples_per_s_b32"))
    for row in rows:
        row["cpu_speedup_vs_first"] = _ratio(row["cpu_samples_per_s_b32"], first)
        row["cpu_speedup_fp32_vs_first"] = None
    note = (
        "Speed vs first: the workers' figures (texts per second in batches of 32, fp32 in PyTorch), each taken right "
        "after training on its worker's CPU, which other jobs may have shared. Re-measure to time every model here, "
        "where they serve, the same way."
    )
    return {"basis": "worker", "note": note, "measured_at": None}


# Settings that say where a run ran or how it was kept, not how it learnt.
NOT_COMPARED = {"device", "checkpoint_every", "precision", "cuda_graphs", "group_by_length"}


def differences(records: list[ModelRecord]) -> dict[str, list[Any]]:
    """{parameter: [its value for each model, in order]} for the hyperparameters that are not the same for all
    (a parameter a model lacks counts as None), plus base_model when they differ: what a sweep varied, or what
    sets a student apart from its teacher."""
    if len(records) < 2:
        return {}
    params = [dict(record.params or {}) | {"base_model": record.source} for record in records]
    names = sorted({name for p in params for name in p} - NOT_COMPARED)
    out = {name: [p.get(name) for p in params] for name in names}
    return {name: values for name, values in out.items() if any(v != values[0] for v in values)}


def to_csv(data: dict[str, Any]) -> str:
    """One line per model under COLUMNS as headers; empty cells where a model has no such figure. Names (the
    model's, its dataset's, its base model) are users' text: csvsafe keeps a spreadsheet from running them."""
    out = io.StringIO()
    writer = csvsafe.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in data["models"]:
        writer.writerow(["" if row.get(key) is None else row[key] for key in COLUMNS])
    return out.getvalue()


def to_png(data: dict[str, Any], *, dpi: int = 100) -> bytes:
    """figure(data) as a PNG."""
    out = io.BytesIO()
    figure(data, dpi=dpi).savefig(out, format="png")
    return out.getvalue()


def figure(data: dict[str, Any], *, dpi: int = 100):
    """A 3-panel matplotlib Figure: training loss and training accuracy (with validation points) per step
    overlaid, then test accuracy per model (with its 95% interval) beside the study's IMDB figures where they
    apply; one colour per model throughout. Bars start at 0 (a bar's height is its value), step axes tick whole
    steps, and the study's legend sits outside the panel, where it covers no bar."""
    # matplotlib's object API, not pyplot: no global figure state, safe in a threaded web process.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(15, 4.2), dpi=dpi, layout="constrained")
    loss_ax, accuracy_ax, test_ax = figure.subplots(1, 3)
    colors = [f"C{i}" for i in range(len(data["models"]))]  # one colour per model in all three panels
    for row, color in zip(data["models"], colors, strict=True):
        curves = data["curves"].get(str(row["id"]), {})
        for ax, points in ((loss_ax, cross_entropy(curves)), (accuracy_ax, curves.get("train/accuracy") or [])):
            if points:
                ax.plot([p[0] for p in points], smooth([p[1] for p in points]), color=color, label=row["name"])
        valid = curves.get("val/accuracy") or []
        if valid:
            accuracy_ax.plot([p[0] for p in valid], [p[1] for p in valid], "D", color=color, markersize=5)
    for ax, title in ((loss_ax, "training cross-entropy (smoothed)"), (accuracy_ax, "training accuracy (smoothed)")):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # a step is whole: no 2.5
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "no training curves", ha="center", va="center", transform=ax.transAxes)

    labels = [row["name"] for row in data["models"]]
    values = [row["test_accuracy"] or 0.0 for row in data["models"]]
    # The 95% interval as error bars where the test set's size is known (none for a model without a report).
    errors = [
        [v - (row.get("test_accuracy_ci_low") if row.get("test_accuracy_ci_low") is not None else v) for v, row in
         zip(values, data["models"], strict=True)],
        [(row.get("test_accuracy_ci_high") if row.get("test_accuracy_ci_high") is not None else v) - v for v, row in
         zip(values, data["models"], strict=True)],
    ]  # fmt: skip
    bars = test_ax.bar(range(len(labels)), values, color=colors, yerr=errors, capsize=4, ecolor="#344054")
    shown = [row.get("test_accuracy_shown") or _fmt(row["test_accuracy"]) for row in data["models"]]
    test_ax.bar_label(bars, labels=shown, fontsize="small", padding=2)
    for study, style in zip(data["study"], ("--", ":"), strict=False):
        test_ax.axhline(study["test_accuracy"], color="#667085", linestyle=style, linewidth=1, label=study["name"])
    test_ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize="small")
    test_ax.set_ylim(0.0, 1.12)  # from 0, so bar heights compare; headroom above 1 for the labels
    test_ax.set_yticks([i / 5 for i in range(6)])
    test_ax.set_title("test accuracy (95% interval)")
    if data["study"]:
        test_ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return figure


def cross_entropy(curves: dict[str, list]) -> list:
    """A model's training cross-entropy curve, the one loss every model has: a distillation's hard part (its loss
    is alpha * KL + (1 - alpha) * cross-entropy), else its loss (a fine-tune's is cross-entropy)."""
    return curves.get("train/hard_loss") or curves.get("train/loss") or []


def smooth(values: list[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average with bias correction (as the job page draws its per-batch series)."""
    out, average = [], 0.0
    for i, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        out.append(average / (1 - weight**i))
    return out


def _row(record: ModelRecord, reference: ModelRecord) -> dict[str, Any]:
    metrics = record.metrics or {}
    row: dict[str, Any] = {
        "id": record.pk,
        "name": record.name,
        "kind": record.kind,
        "base_model": record.base_model,
        "teacher_id": record.teacher_id,
        "dataset": record.dataset.name if record.dataset else None,
        "parameters": record.num_parameters,
        "size_bytes": record.size_bytes,
        "serving_precision": record.serving_precision,
        "temperature": record.temperature,
    }
    row |= {key: _number(metrics.get(metric)) for key, metric in METRICS}
    test = test_summary(metrics) or {}
    row |= {
        "test_rows": test.get("rows"), "test_accuracy_ci_low": test.get("low"),
        "test_accuracy_ci_high": test.get("high"), "majority_baseline": test.get("baseline"),
        "test_accuracy_shown": test.get("shown"), "test_accuracy_interval": test.get("interval"),
        "test_warning": test.get("warning", ""),
    }  # fmt: skip
    serving = record.serving_speed if isinstance(record.serving_speed, dict) else {}
    for precision in ("fp32", "int8"):
        figures = serving.get(precision) if isinstance(serving.get(precision), dict) else {}
        row[f"serving_latency_ms_b1_{precision}"] = _number(figures.get("latency_ms_b1"))
        row[f"serving_samples_per_s_b32_{precision}"] = _number(figures.get("samples_per_s_b32"))
        row[f"serving_error_{precision}"] = figures.get("error")
    row["serving_measured_at"] = serving.get("measured_at")
    row["worker_measured_at"] = record.created_at.isoformat() if record.created_at else None
    ref = reference.metrics or {}
    row["test_accuracy_vs_first"] = _ratio(row["test_accuracy"], _number(ref.get("test/accuracy")))
    row["size_vs_first"] = _ratio(record.size_bytes, reference.size_bytes)  # the speed ratios: _speed
    return row


def _curves(records: list[ModelRecord]) -> dict[str, dict[str, list[list[float]]]]:
    """Each model's training curves from the metric points of the job that produced it (none when imported).

    Keys are model ids as strings, as they come back from JSON."""
    series: dict[str, dict[str, list[list[float]]]] = {str(r.pk): {k: [] for k in CURVES} for r in records}
    points = (
        MetricPoint.objects.filter(
            job__result_model__in=records, kind__in=[MetricPoint.Kind.TRAIN, MetricPoint.Kind.VAL]
        )
        .order_by("job_id", "seq")
        .values_list("job__result_model_id", "step", "values")
    )
    for model_id, step, values in points.iterator(chunk_size=2000):
        curves = series[str(model_id)]
        for key in CURVES:
            value = _number(values.get(key))
            if value is not None:
                curves[key].append([step, value])
    return {model_id: {k: _thin(v) for k, v in curves.items()} for model_id, curves in series.items()}


def _thin(points: list[list[float]]) -> list[list[float]]:
    """At most CURVE_POINTS points: each the mean value of a run of consecutive points, at the run's last step."""
    if len(points) <= CURVE_POINTS:
        return points
    size = math.ceil(len(points) / CURVE_POINTS)
    runs = (points[s : s + size] for s in range(0, len(points), size))
    return [[run[-1][0], sum(p[1] for p in run) / len(run)] for run in runs]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return value


def _ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"
