"""Every place jobs/ and config/ read a table or folder file through mlcore passes the upload limit as
max_bytes, read from the source (the AST): a reader called without it would let a small gzip file inflate
without a cap on its bytes (mlcore's readers default to none; only the 100:1 ratio would still hold)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
READERS = {"read_table", "read_texts", "read_folder", "read_file", "table_info", "table_preview"}


def _reader_calls() -> list[tuple[str, ast.Call]]:
    """Calls of a reader, and calls that hand one to a helper process (offload.run(table_info, path, ...))."""
    found = []
    for top in ("jobs", "config"):
        for path in sorted((REPO / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and READERS & {_name(node.func), *map(_name, node.args[:1])}:
                    found.append((f"{path.relative_to(REPO)}:{node.lineno}", node))
    return found


def _name(func: ast.expr) -> str | None:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _passes_the_limit(call: ast.Call) -> bool:
    return any(
        k.arg == "max_bytes" and isinstance(k.value, ast.Call) and _name(k.value.func) == "upload_limit_bytes"
        for k in call.keywords
    )


def test_the_readers_are_found_in_the_code():
    # The upload (and the held upload through it), the folder import, file classification, both workers'
    # re-reads and the import command's validation file: with fewer found, the check below would prove nothing.
    assert len(_reader_calls()) >= 6


def test_every_reader_call_passes_the_upload_limit_as_max_bytes():
    assert [where for where, call in _reader_calls() if not _passes_the_limit(call)] == []
