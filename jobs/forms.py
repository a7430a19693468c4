from __future__ import annotations

from django import forms

from mlcore import catalogue
from mlcore.config import DistillConfig, TrainConfig, config_defaults

from .models import Dataset, Job, ModelRecord


class DatasetUploadForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the file name.")
    file = forms.FileField(help_text="CSV, TSV or JSONL with a text and a label column.")
    text_column = forms.CharField(max_length=200, required=False, help_text="Detected when left empty.")
    label_column = forms.CharField(max_length=200, required=False, help_text="Detected when left empty.")


class DatasetFolderForm(forms.Form):
    """Import a server folder in the IMDB layout; the choices are what services.dataset_folders() finds."""

    server_path = forms.ChoiceField(label="Folder", help_text="Under DISTILLERY_DATASET_ROOTS.")
    split = forms.CharField(max_length=200, required=False, help_text="e.g. train; empty for a folder of labels.")
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to folder-split.")

    def __init__(self, *args, folders: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["server_path"].choices = [
            (f["path"], f"{f['path']} ({', '.join(f['splits']) or 'one split'})") for f in folders
        ]


class DatasetHubForm(forms.Form):
    """Import one split of a Hugging Face Hub dataset (the server needs internet)."""

    hub_id = forms.CharField(label="Hub dataset", max_length=200, help_text="e.g. stanfordnlp/imdb")
    split = forms.CharField(max_length=200, initial="train")
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to id-split.")


class JobForm(forms.Form):
    """Launch a job; hyperparameter fields mirror mlcore's config dataclasses and default to the study's."""

    kind = forms.ChoiceField(choices=Job.Kind.choices)
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.none())
    base_model = forms.CharField(
        max_length=300, required=False, initial=catalogue.BUNDLED_ID,
        help_text="Fine-tune: a catalogue id, a hub id or a local model folder.",
    )
    teacher = forms.ModelChoiceField(
        queryset=ModelRecord.objects.none(), required=False, help_text="Distil: the trained model to distil."
    )
    batch_size = forms.IntegerField(min_value=1, max_value=1024)
    learning_rate = forms.FloatField(min_value=0)
    epochs = forms.IntegerField(min_value=1, max_value=100)
    max_length = forms.IntegerField(min_value=8, max_value=512)
    max_train_samples = forms.IntegerField(min_value=1, required=False)
    max_eval_samples = forms.IntegerField(min_value=1, required=False)
    alpha = forms.FloatField(
        min_value=0, max_value=1, required=False, help_text="Distil: weight of the soft (KL) loss."
    )
    temperature = forms.FloatField(min_value=0.01, required=False, help_text="Distil: softmax temperature.")

    TRAIN_FIELDS = ("batch_size", "learning_rate", "epochs", "max_length", "max_train_samples", "max_eval_samples")
    DISTILL_FIELDS = ("alpha", "temperature")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = Dataset.objects.visible_to(user)
        self.fields["teacher"].queryset = ModelRecord.objects.visible_to(user)
        defaults = {**config_defaults(TrainConfig), **config_defaults(DistillConfig)}
        for name in self.TRAIN_FIELDS + self.DISTILL_FIELDS:
            self.fields[name].initial = defaults.get(name)

    def params(self) -> dict:
        names = self.TRAIN_FIELDS + (self.DISTILL_FIELDS if self.cleaned_data["kind"] == Job.Kind.DISTILL else ())
        return {n: self.cleaned_data[n] for n in names if self.cleaned_data.get(n) is not None}


class ClassifyForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), max_length=100_000, strip=True)


class ClassifyFileForm(forms.Form):
    file = forms.FileField(help_text="CSV, TSV or JSONL (optionally .gz) with a text column; an id column is kept.")
    text_column = forms.CharField(required=False, max_length=200, help_text="Leave empty to detect it.")
