"""The dashboard's forms: dataset uploads and imports, the launch form (its bounds and choices read from
mlcore.config), model import, classify.

Runs in: the web process.
"""

from __future__ import annotations

import math
import typing

from django import forms

from mlcore import catalogue, recipes
from mlcore.config import ConfigError, DistillConfig, TrainConfig, config_defaults, field_choices, field_range

from .datasets.held import HeldFile
from .models import Dataset, Job, ModelRecord
from .training.launch import platform_defaults


class OwnIds:
    """A form whose element ids start with its own `ids` ("upload-name"), so that the forms sharing a page (upload,
    folder and hub import, model import) never repeat an id and each `label for` names its own field. The POST
    names stay the fields' own."""

    ids = "id"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", f"{self.ids}-%s")
        super().__init__(*args, **kwargs)


class DatasetUploadForm(OwnIds, forms.Form):
    """Upload a dataset. When its columns cannot be told, the form comes back holding the file (`held`, a
    signed token) with the file's columns offered as choices, so the choice needs no second upload."""

    ids = "upload"

    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the file name.")
    file = forms.FileField(required=False, help_text="CSV, TSV or JSONL with a text and a label column.")
    text_column = forms.CharField(max_length=200, required=False, help_text="Detected when left empty.")
    label_column = forms.CharField(max_length=200, required=False, help_text="Detected when left empty.")
    held = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, held: HeldFile | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.held_file = held
        self.columns = held.columns if held else None
        if self.columns:
            choices = [("", "— choose —"), *((c, c) for c in self.columns)]
            for name in ("text_column", "label_column"):
                self.fields[name] = forms.ChoiceField(choices=choices, required=False, help_text="One of the file's.")
            self.fields["file"].label = "Another file"
            self.fields["file"].help_text = "Only to replace the held one."

    def clean(self):
        data = super().clean()
        if not data.get("file") and not (self.columns and data.get("held")):
            self.add_error("file", "choose a file")
        return data


class DatasetFolderForm(OwnIds, forms.Form):
    """Import a server folder in the IMDB layout; the choices are what services.dataset_folders() finds."""

    ids = "folder"

    server_path = forms.ChoiceField(label="Folder", help_text="Under DISTILLERY_DATASET_ROOTS.")
    split = forms.CharField(max_length=200, required=False, help_text="e.g. train; empty for a folder of labels.")
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to folder-split.")

    def __init__(self, *args, folders: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["server_path"].choices = [
            (f["path"], f"{f['path']} ({', '.join(f['splits']) or 'one split'})") for f in folders
        ]


class DatasetHubForm(OwnIds, forms.Form):
    """Import one split of a Hugging Face Hub dataset (the server needs internet)."""

    ids = "hub"

    hub_id = forms.CharField(label="Hub dataset", max_length=200, help_text="e.g. stanfordnlp/imdb")
    split = forms.CharField(max_length=200, initial="train")
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to id-split.")


class ValuesField(forms.CharField):
    """One number, or several separated by commas (which launch a sweep); cleans to a list of distinct values.
    Whole numbers or not, and the range, are those of the config's field `param`: a value out of range gets the
    config's own message, so the form refuses exactly what the job would. `single`: one value only (an engine
    setting, never swept). The input carries the kind and the range as data- attributes, from which the launch
    form's script checks each value as it is typed, with the same words (static/js/launch_form.js)."""

    def __init__(self, config: type[TrainConfig], param: str, *, single: bool = False, **kwargs):
        hint = typing.get_type_hints(config)[param]  # int, float, or either with None
        self.kind = float if float in (hint, *typing.get_args(hint)) else int
        self.param, self.range, self.single = param, field_range(config, param), single
        super().__init__(**kwargs)

    def widget_attrs(self, widget) -> dict:
        # A text input, not type=number: a field takes several comma-separated values (a sweep), which a number
        # input refuses. So the bounds travel as data- attributes; min/max would mean nothing on a text input.
        attrs = super().widget_attrs(widget)
        whole = self.kind is int
        attrs |= {"data-param": self.param, "data-kind": "int" if whole else "float"}
        attrs["inputmode"] = "numeric" if whole and self.single else "text"  # "decimal" keyboards have no comma
        if self.single:
            attrs["data-single"] = "true"
        if self.range is not None:
            attrs |= {"data-low": repr(self.range.low), "data-requirement": self.range.requirement(self.param)}
            if not math.isinf(self.range.high):
                attrs["data-high"] = repr(self.range.high)  # every digit: 4294967295, not 4.29497e+09
            attrs |= {f"data-{end}-open": "true" for end in ("low", "high") if getattr(self.range, f"{end}_open")}
        return attrs

    def to_python(self, value) -> list:
        items = [item.strip() for item in (value or "").split(",") if item.strip()]
        if self.single and len(items) > 1:
            raise forms.ValidationError(f"{self.param} takes one value, not several")
        values = []
        for item in items:
            try:
                number = self.kind(item)
            except ValueError:
                name = "a whole number" if self.kind is int else "a number"
                raise forms.ValidationError(f"{item!r} is not {name}") from None
            if self.range is not None:
                try:
                    self.range.check(self.param, number)
                except ConfigError as exc:
                    raise forms.ValidationError(str(exc)) from None
            if number in values:
                raise forms.ValidationError(f"{item} is given twice")
            values.append(number)
        return values

    def validate(self, value) -> None:
        if self.required and not value:
            raise forms.ValidationError(self.error_messages["required"], code="required")


class DeviceField(forms.ChoiceField):
    """The worker's device: offered as auto, cpu and cuda, and any other name the config takes (cuda:1, from a
    job launched again) is taken too; the config says which."""

    def valid_value(self, value) -> bool:
        try:
            TrainConfig(device=value)
        except ConfigError:
            return False
        return True


class OnOffField(forms.TypedChoiceField):
    """A boolean parameter (with the config's strings, if it takes some: group_by_length's "auto") as a select of
    "true", "false" and the strings; a boolean initial selects its option. Not a checkbox: a checkbox left out of
    a post reads as false, which for a parameter whose default is true (cuda_graphs) is not the default."""

    def __init__(self, config: type[TrainConfig], param: str, labels: dict, **kwargs):
        values = [*(field_choices(config, param) or ()), "true", "false"]
        choices = [(v, labels.get(v, v)) for v in values]
        super().__init__(choices=choices, coerce=lambda v: {"true": True, "false": False}.get(v, v), **kwargs)

    def prepare_value(self, value):
        return str(value).lower() if isinstance(value, bool) else value


CHOICE_LABELS = {
    "truncation": {"head": "head: the start of the text", "head_tail": "head_tail: its start and its end"},
    "scheduler": {"exponential": "exponential (the study's)", "linear": "linear, after a warm-up"},
    "precision": {"auto": "auto: bf16 on a GPU that has it, else fp32"},
    "group_by_length": {"auto": "auto: where it saves 10% of the padding", "true": "always", "false": "never"},
    "cuda_graphs": {"true": "on", "false": "off"},
}  # by value; the values themselves are the config's


def _choices(config: type[TrainConfig], param: str) -> list[tuple[str, str]]:
    # The config's choices, in its order, each with its label: a choice the config adds shows as its value, and a
    # label for a value the config has dropped is never offered.
    labels = CHOICE_LABELS.get(param, {})
    return [(value, labels.get(value, value)) for value in field_choices(config, param)]


class JobForm(forms.Form):
    """Launch a job; hyperparameter fields mirror mlcore's config dataclasses and default to the study's. Several
    comma-separated values in any of them (or several base models) launch a sweep: one job per combination."""

    kind = forms.ChoiceField(choices=[(k.value, k.label) for k in (Job.Kind.FINETUNE, Job.Kind.DISTILL)])
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.none())
    test_dataset = forms.ModelChoiceField(
        queryset=Dataset.objects.none(), required=False, empty_label="— hold out a share of the dataset —",
        label="Test on", help_text="An official test set (e.g. IMDB's test folder), or a share held out.",
    )  # fmt: skip
    base_model = forms.CharField(
        max_length=2000, required=False, initial=catalogue.BUNDLED_ID,
        widget=forms.TextInput(attrs={"list": "base-model-catalogue", "autocomplete": "off"}),
        help_text="Fine-tune: a catalogue id, a hub id or a model folder the operator allows; several, "
        "comma-separated, to compare.",
    )  # fmt: skip
    teacher = forms.ModelChoiceField(
        queryset=ModelRecord.objects.none(), required=False, help_text="Distil: the trained model to distil."
    )
    webhook_url = forms.URLField(
        required=False, max_length=500, assume_scheme="https", label="Webhook",
        help_text="Optional: an http(s) URL on a public address, POSTed each job's final status, signed with your "
        "webhook secret.",
    )  # fmt: skip
    batch_size = ValuesField(TrainConfig, "batch_size")
    learning_rate = ValuesField(TrainConfig, "learning_rate", help_text="Several, comma-separated, launch a sweep.")
    epochs = ValuesField(TrainConfig, "epochs")
    max_length = ValuesField(TrainConfig, "max_length")
    max_train_samples = ValuesField(TrainConfig, "max_train_samples", required=False)
    max_eval_samples = ValuesField(TrainConfig, "max_eval_samples", required=False)
    seed = ValuesField(TrainConfig, "seed", help_text="Several seeds measure the noise.")
    split_seed = ValuesField(
        TrainConfig, "split_seed", required=False,
        help_text="Fixes the train/valid/test rows whatever the seed; empty: seed.",
    )  # fmt: skip
    truncation = forms.ChoiceField(
        choices=_choices(TrainConfig, "truncation"),
        help_text="How a text longer than max_length is cut.",
    )
    scheduler = forms.ChoiceField(
        choices=_choices(TrainConfig, "scheduler"),
        help_text="Learning-rate schedule.",
    )
    warmup_ratio = ValuesField(TrainConfig, "warmup_ratio", help_text="Linear: share of the steps warming up.")
    weight_decay = ValuesField(TrainConfig, "weight_decay", help_text="AdamW; never on biases and LayerNorm.")
    keep_best_epoch = forms.BooleanField(
        required=False, label="Keep the best epoch", help_text="End on the epoch with the best validation accuracy."
    )
    calibrate = forms.BooleanField(
        required=False, label="Calibrate", help_text="Fit a temperature on the validation rows, so its probabilities "
        "say how often it is right.",
    )  # fmt: skip
    device = DeviceField(
        choices=[("auto", "auto: a GPU where the worker has one"), ("cpu", "cpu"), ("cuda", "cuda")], required=False,
        help_text="Where the worker trains.",
    )  # fmt: skip
    devices = ValuesField(
        TrainConfig, "devices", single=True, required=False, label="Devices",
        help_text="Data-parallel: that many GPUs (or CPU processes); each step's batch is split across them.",
    )  # fmt: skip
    precision = forms.ChoiceField(
        choices=_choices(TrainConfig, "precision"), required=False,
        help_text="Autocast precision; auto is bf16 where the hardware multiplies it natively (a recent GPU, or a "
        "CPU with AVX-512 BF16 or AMX), fp32 elsewhere.",
    )
    group_by_length = OnOffField(
        TrainConfig, "group_by_length", CHOICE_LABELS["group_by_length"], required=False, label="Group by length",
        help_text="Batch texts of similar length together, to pad less.",
    )  # fmt: skip
    cuda_graphs = OnOffField(
        TrainConfig, "cuda_graphs", CHOICE_LABELS["cuda_graphs"], required=False, label="CUDA graphs",
        help_text="Replay unpadded batches' passes from CUDA graphs; GPU only.",
    )  # fmt: skip
    checkpoint_every = ValuesField(
        TrainConfig, "checkpoint_every", single=True, required=False, label="Checkpoint every",
        help_text="Optimiser steps between checkpoints, from which a lost worker's job resumes; 0: none.",
    )  # fmt: skip
    gpu_memory_gb = ValuesField(
        TrainConfig, "gpu_memory_gb", single=True, required=False, label="GPU memory (GB)",
        help_text="Only a worker whose GPU has this much takes the job; 0: any worker.",
    )  # fmt: skip
    early_stopping_patience = ValuesField(
        TrainConfig, "early_stopping_patience", required=False, label="Early stopping patience",
        help_text="Epochs without a better validation accuracy before training stops; empty: never.",
    )  # fmt: skip
    alpha = ValuesField(DistillConfig, "alpha", required=False, help_text="Distil: weight of the soft (KL) loss.")
    temperature = ValuesField(DistillConfig, "temperature", required=False, help_text="Distil: softmax temperature.")
    student_layers = ValuesField(
        DistillConfig, "student_layers", required=False,
        help_text="Distil: layers the derived student keeps (empty: every other).",
    )  # fmt: skip
    hidden_loss_weight = ValuesField(
        DistillConfig, "hidden_loss_weight", required=False, help_text="Distil: weight of the hidden-state (MSE) loss."
    )

    TRAIN_FIELDS = (
        "batch_size", "learning_rate", "epochs", "max_length", "max_train_samples", "max_eval_samples", "seed",
        "split_seed", "truncation", "scheduler", "warmup_ratio", "weight_decay", "keep_best_epoch",
        "early_stopping_patience", "calibrate",
    )  # fmt: skip
    DISTILL_FIELDS = ("alpha", "temperature", "student_layers", "hidden_loss_weight")
    # How a job runs rather than what it learns (the dashboard's Advanced section); every other parameter of the
    # form is a hyperparameter.
    ENGINE_FIELDS = (
        "device", "devices", "gpu_memory_gb", "precision", "group_by_length", "cuda_graphs", "checkpoint_every",
    )  # fmt: skip
    # One value each, never a sweep: the form's booleans and choices (checkpoint_every, devices and gpu_memory_gb
    # are single ValuesFields).
    CHOICE_FIELDS = ("truncation", "scheduler", "keep_best_epoch", "device", "precision", "group_by_length",
                     "cuda_graphs", "calibrate")  # fmt: skip

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = self.fields["test_dataset"].queryset = Dataset.objects.visible_to(user)
        self.fields["teacher"].queryset = ModelRecord.objects.visible_to(user)
        for name, default in self.defaults().items():
            self.fields[name].initial = _initial(self.fields[name], default)
        device = self.data.get("device") if self.is_bound else self.initial.get("device")
        if device and device not in dict(self.fields["device"].choices):  # cuda:1, say: shown as it is
            self.fields["device"].choices = [*self.fields["device"].choices, (device, device)]

    @classmethod
    def defaults(cls) -> dict:
        """What each parameter field shows untouched: a job's defaults (mlcore's, and the platform's where it
        differs: checkpoint_every)."""
        defaults = {**config_defaults(TrainConfig), **config_defaults(DistillConfig), **platform_defaults()}
        return {name: defaults[name] for name in cls.TRAIN_FIELDS + cls.ENGINE_FIELDS + cls.DISTILL_FIELDS}

    @classmethod
    def initial_from(cls, job: Job) -> dict:
        """The form's fields as `job` was launched, to launch it again with changes."""
        initial = {
            "kind": job.kind, "dataset": job.dataset_id, "test_dataset": job.test_dataset_id,
            "base_model": job.base_model if job.kind == Job.Kind.FINETUNE else "", "teacher": job.teacher_id,
            "webhook_url": job.webhook_url,
        }  # fmt: skip
        for name in cls.TRAIN_FIELDS + cls.ENGINE_FIELDS + cls.DISTILL_FIELDS:
            if name in job.params:
                initial[name] = _initial(cls.base_fields[name], job.params[name])
        return initial

    @classmethod
    def recipe_values(cls) -> dict[str, dict[str, dict]]:
        """{recipe: {kind: {field: value}}}: what choosing a recipe puts in the form's fields (its values over the
        defaults; the dashboard's script fills them in, so what is sent is what the fields show)."""
        names = cls.TRAIN_FIELDS + cls.DISTILL_FIELDS
        defaults = {"finetune": config_defaults(TrainConfig), "distill": config_defaults(DistillConfig)}
        return {
            name: {kind: {f: v for f, v in {**defaults[kind], **r.params(kind)}.items() if f in names}
                   for kind in defaults}
            for name, r in recipes.RECIPES.items()
        }  # fmt: skip

    @classmethod
    def recipe_listing(cls) -> list[dict]:
        """Each recipe with what it sets per kind, [(field, value as the field shows it)], to list before a
        recipe is chosen."""
        return [
            {"name": name, "summary": r.summary,
             **{kind: [(f, str(v).lower() if isinstance(v, bool) else str(v)) for f, v in r.params(kind).items()]
                for kind in recipes.KINDS}}
            for name, r in recipes.RECIPES.items()
        ]  # fmt: skip

    def clean_base_model(self) -> list[str]:
        names = [name.strip() for name in self.cleaned_data["base_model"].split(",") if name.strip()]
        if len(set(names)) != len(names):
            raise forms.ValidationError("a base model is given twice")
        return names

    def _values(self) -> dict[str, list]:
        distill = self.cleaned_data["kind"] == Job.Kind.DISTILL
        names = self.TRAIN_FIELDS + self.ENGINE_FIELDS + (self.DISTILL_FIELDS if distill else ())
        data = {n: [self.cleaned_data[n]] if n in self.CHOICE_FIELDS else self.cleaned_data.get(n) for n in names}
        values = {n: v for n, v in data.items() if v and v != [""]}  # [""]: a choice left to its default
        if not distill and self.cleaned_data["base_model"]:
            values["base_model"] = self.cleaned_data["base_model"]
        return values

    def params(self) -> dict:
        """The values given once: what every job shares (the base model included, for a fine-tune)."""
        return {n: v[0] for n, v in self._values().items() if len(v) == 1}

    def grid(self) -> dict[str, list]:
        """The values given several times: the sweep's axes, in the form's order (empty: one job)."""
        return {n: v for n, v in self._values().items() if len(v) > 1}


def _initial(field: forms.Field, value):
    """A parameter's value as its field shows it: a boolean stays a boolean (the string "False" would tick a
    checkbox, and be sent as "False"), a choice stays its value, a number becomes its text, None an empty field."""
    if isinstance(field, forms.BooleanField):
        return bool(value)
    if isinstance(field, forms.ChoiceField):
        return value
    return "" if value is None else str(value)


class ModelImportForm(OwnIds, forms.Form):
    ids = "import"
    file = forms.FileField(label="Model (.zip)", help_text="A Distillery download, or an HF classifier folder zipped.")
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the zip's name.")


class ClassifyForm(OwnIds, forms.Form):
    ids = "classify"
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), max_length=100_000, strip=True)


class ClassifyFileForm(OwnIds, forms.Form):
    ids = "batch"
    file = forms.FileField(help_text="CSV, TSV or JSONL (optionally .gz) with a text column; an id column is kept.")
    text_column = forms.CharField(required=False, max_length=200, help_text="Leave empty to detect it.")
