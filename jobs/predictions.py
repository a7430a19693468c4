"""Each test row's prediction by a model: what the error and disagreement browsers list and count (jobs.models
imports it, so it is one of the app's models).

Runs in: the web process and the workers. One row per test text and model, not a file beside the model: a page
asks for one cell of a confusion matrix, ordered by confidence, a page at a time, which an index on (model,
true, predicted, confidence) answers without reading a 25,000-row test set into the web process; two models'
rows meet on their position in the dataset. The rows go with their model (CASCADE).
"""

from __future__ import annotations

from django.db import models


class RowPrediction(models.Model):
    """One test row of a model: its position in the dataset file its test rows come from, its text, its true and
    predicted label (indices into the model's label_names), every label's probability and whether it was cut."""

    model = models.ForeignKey("jobs.ModelRecord", on_delete=models.CASCADE, related_name="row_predictions")
    row = models.PositiveIntegerField(help_text="The row's position in its dataset file (0 = the first row).")
    text = models.TextField()
    label = models.PositiveSmallIntegerField(help_text="The true label, an index into the model's label_names.")
    predicted = models.PositiveSmallIntegerField(help_text="The predicted label, an index into label_names.")
    confidence = models.FloatField(help_text="The probability of the predicted label.")
    probabilities = models.JSONField(help_text="Every label's probability, in label_names order.")
    truncated = models.BooleanField(help_text="The text had more tokens than max_length: only part was read.")

    class Meta:
        ordering = ["model", "row"]
        constraints = [models.UniqueConstraint(fields=["model", "row"], name="one_prediction_per_row")]
        indexes = [models.Index(fields=["model", "label", "predicted", "confidence"], name="prediction_cell")]

    def __str__(self) -> str:
        return f"row {self.row} of model #{self.model_id}"
