"""Random search: hyperparameter trials drawn from a space, for a sweep that is not a grid.

Random search finds good settings in fewer trials than a grid when only a few of the dimensions matter
(Bergstra and Bengio, 2012). A space maps each parameter to one distribution:

    {"learning_rate": {"log_uniform": [1e-5, 1e-4]},   # log-spaced floats, for rates
     "warmup_ratio": {"uniform": [0.0, 0.1]},          # floats
     "epochs": {"int": [1, 3]},                        # whole numbers, both ends included
     "truncation": {"choice": ["head", "head_tail"]}}  # one of the values

The same space, trials and seed always draw the same trials.
"""

from __future__ import annotations

import math
import random
from typing import Any

DISTRIBUTIONS = ("uniform", "log_uniform", "int", "choice")


class SearchError(ValueError):
    """A search space that cannot be sampled; the message names the parameter and says why."""


def sample(space: dict[str, Any], trials: int, seed: int = 0) -> list[dict[str, Any]]:
    """`trials` dicts of {parameter: value}, one per trial, in space's parameter order; distinct trials are not
    guaranteed (a narrow "choice" or "int" can repeat), as in any random search."""
    if not isinstance(space, dict) or not space:
        raise SearchError("give a space: {parameter: {distribution: [...]}} with at least one parameter")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise SearchError(f"trials must be a whole number of at least 1, got {trials!r}")
    draws = {name: _sampler(name, spec) for name, spec in space.items()}
    rng = random.Random(seed)
    return [{name: draw(rng) for name, draw in draws.items()} for _ in range(trials)]


def _sampler(name: str, spec: Any):
    if not isinstance(spec, dict) or len(spec) != 1:
        raise SearchError(f"{name}: give one distribution, such as {{'uniform': [0, 1]}}; {', '.join(DISTRIBUTIONS)}")
    (kind, args), = spec.items()
    if kind not in DISTRIBUTIONS:
        raise SearchError(f"{name}: unknown distribution {kind!r}; use one of {', '.join(DISTRIBUTIONS)}")
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise SearchError(f"{name}: choice needs a list of values")
        return lambda rng: rng.choice(args)
    if not (isinstance(args, list) and len(args) == 2 and all(_is_number(a) for a in args) and args[0] < args[1]):
        raise SearchError(f"{name}: {kind} needs [low, high] with low < high")
    low, high = args
    if kind == "int":
        if not all(float(a).is_integer() for a in args):
            raise SearchError(f"{name}: int needs whole-number bounds")
        return lambda rng: rng.randint(int(low), int(high))
    if kind == "log_uniform":
        if low <= 0:
            raise SearchError(f"{name}: log_uniform needs positive bounds")
        return lambda rng: _round(math.exp(rng.uniform(math.log(low), math.log(high))))
    return lambda rng: _round(rng.uniform(low, high))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _round(value: float) -> float:
    """Four significant digits: 3.272e-05, not 3.2716209135e-05 (a job's parameters are read by people)."""
    return float(f"{value:.4g}")
