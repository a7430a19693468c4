"""A model comparison as a CSV table or a PNG figure, a job's metric points as a CSV: DRF picks these by
?format=csv|png or the Accept header.

Runs in: the web process.
"""

from __future__ import annotations

import io

from rest_framework.renderers import BaseRenderer

from mlcore import csvsafe

from ..registry import compare


class ComparisonCSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return compare.to_csv(data).encode(self.charset)


class ComparisonPNGRenderer(BaseRenderer):
    media_type = "image/png"
    format = "png"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return compare.to_png(data)


class MetricsCSVRenderer(BaseRenderer):
    """A job's metric points, one line each: seq, step, kind, created_at, then a column per metric (train/*, lr,
    val/*, test/*, then any others, each group sorted; empty where a point lacks it). Nested values (a test
    report) stay on the model record. The metric names are mlcore's and the values numbers today; csvsafe
    still checks every cell, so that a metric named after a user's label could not become a formula."""

    GROUPS = {"train": 0, "lr": 1, "val": 2, "test": 3}

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        found = {k for point in data for k, v in point["values"].items() if not isinstance(v, (dict, list))}
        names = sorted(found, key=lambda name: (self.GROUPS.get(name.split("/")[0], len(self.GROUPS)), name))
        out = io.StringIO()
        writer = csvsafe.writer(out, lineterminator="\n")
        writer.writerow(["seq", "step", "kind", "created_at", *names])
        for point in data:
            row = [point["seq"], point["step"], point["kind"], point["created_at"]]
            writer.writerow(row + [point["values"].get(name, "") for name in names])
        return out.getvalue().encode(self.charset)


FILE_FORMATS = (ComparisonCSVRenderer.format, ComparisonPNGRenderer.format)
