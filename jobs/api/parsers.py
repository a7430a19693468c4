"""JSON bodies with a depth limit: a body nested a few thousand levels deep made the standard library's parser
raise RecursionError (a 500) on every JSON route, the unauthenticated token route included.

Runs in: the web process (the DRF parsers, and the classify fast path before Django).
"""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_DEPTH = 32  # levels of nested objects and lists; the deepest real request (a sweep's search space) has 4


class TooDeep(ValueError):
    """A JSON document nested deeper than MAX_DEPTH, or too deep to parse at all."""


def check_depth(data: Any, limit: int = MAX_DEPTH) -> Any:
    """`data` itself once it is known to nest at most `limit` levels (walked without recursion); TooDeep else."""
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                raise TooDeep(f"the JSON body is nested more than {limit} levels deep")
            children = value.values() if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)
    return data


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, answering 400 for a body nested too deep instead of failing with a RecursionError."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return check_depth(super().parse(stream, media_type, parser_context))
        except RecursionError:
            raise ParseError(f"JSON parse error - the body is nested more than {MAX_DEPTH} levels deep") from None
        except TooDeep as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
