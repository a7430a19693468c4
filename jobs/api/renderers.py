"""A model comparison as a CSV table or a PNG figure: DRF picks these by ?format=csv|png or the Accept header."""

from __future__ import annotations

from rest_framework.renderers import BaseRenderer

from .. import compare


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


FILE_FORMATS = (ComparisonCSVRenderer.format, ComparisonPNGRenderer.format)
