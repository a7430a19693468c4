"""A job's hyperparameters as its page shows them: those set apart from the defaults, then the defaults.

Runs in: the web process. The defaults are mlcore.config's (config_defaults), the one place they are written.
"""

from __future__ import annotations

from typing import Any

from mlcore.config import config_defaults

from ..models import Job


def parameter_groups(job: Job) -> tuple[list[tuple[str, Any, Any]], list[tuple[str, Any]]]:
    """([(name, value, default)] of the params that differ from the job kind's defaults, [(name, value)] of those
    at their default), each in the config's order, then any keys the config lacks (as changed, default None). A
    file classification's params are its input, with no defaults: all come first."""
    params = dict(job.params or {})
    if job.kind not in Job.CONFIGS:
        return [(name, value, None) for name, value in params.items()], []
    defaults = config_defaults(Job.CONFIGS[job.kind])
    names = [name for name in defaults if name in params] + [name for name in params if name not in defaults]
    changed = [(n, params[n], defaults.get(n)) for n in names if n not in defaults or params[n] != defaults[n]]
    kept = [(n, params[n]) for n in names if n in defaults and params[n] == defaults[n]]
    return changed, kept
