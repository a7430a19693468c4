"""Which runtime runs a model's forward pass when it is served: the one thing the workers (which measure int8
against fp32 on it after training) and the web process (which serves on it) must agree on.

Runs in: the web process and the workers. A leaf.
"""

from __future__ import annotations

from django.conf import settings


def runtime() -> str:
    """DISTILLERY_SERVING_RUNTIME, or torch where onnxruntime is not installed."""
    from mlcore import onnxrt  # imports torch: here, not at web start

    return onnxrt.runtime_for(settings.DISTILLERY_SERVING_RUNTIME)
