r"""The schema's pattern for a text that is not blank (serializers.NOT_BLANK) is the serializers' own idea of blank:
they refuse a text that str.strip() empties, while JSON Schema's \S lets \x85 and \x1c-\x1f through."""

from __future__ import annotations

import re

from jobs.api.serializers import NOT_BLANK


def test_every_character_is_whitespace_to_python_exactly_when_the_pattern_refuses_it():
    for code in range(0x110000):
        char = chr(code)
        assert bool(re.fullmatch(NOT_BLANK, char)) != char.isspace(), hex(code)
