"""The web process's classifiers: each model loaded once, kept in a small LRU keyed by model id.

Artifacts of a model record never change, so a promote simply makes the next request ask for another id;
requests already holding the old classifier finish on it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from django.conf import settings

from . import services
from .models import ModelRecord

_lock = threading.Lock()
_loaded: OrderedDict[int, object] = OrderedDict()


def classifier_for(record: ModelRecord):
    """The loaded Classifier for a model record, loading it on first use."""
    from mlcore.inference import Classifier  # torch loads on first classify, not at web start

    with _lock:
        if record.pk in _loaded:
            _loaded.move_to_end(record.pk)
            return _loaded[record.pk]
        classifier = Classifier.load(services.model_dir(record), device="cpu")
        _loaded[record.pk] = classifier
        while len(_loaded) > getattr(settings, "DISTILLERY_SERVING_CACHE", 2):
            _loaded.popitem(last=False)
        return classifier


def loaded_ids() -> list[int]:
    with _lock:
        return list(_loaded)
