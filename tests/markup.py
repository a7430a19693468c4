"""A page's markup checked the way a screen reader and `label for` need it: no element id twice, and every field a
person fills in (input, select, textarea; not hidden, submit, button, reset or image inputs) named by a label.

A field counts as labelled when a <label for="its id"> exists, when it sits inside a <label>, or when it has
aria-label or aria-labelledby (whose ids must exist). A <label for> pointing at no element is a problem too.
Use `markup_problems(html)` for a list, or `assert_labelled_and_unique(html)` in a test; the browser tests can
pass `page.content()`. `element(html, id)` reads one element (its tag, attributes and text) for other checks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser

UNNAMED_INPUT_TYPES = {"hidden", "submit", "button", "reset", "image"}  # not filled in, or named by their value


@dataclass
class _Field:
    tag: str
    attrs: dict[str, str]
    in_label: bool

    def describe(self) -> str:
        shown = {k: v for k, v in self.attrs.items() if k in ("id", "name", "type")}
        return f"<{self.tag} {' '.join(f'{k}={v!r}' for k, v in shown.items())}>"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.label_targets: list[str] = []
        self.fields: list[_Field] = []
        self.open_labels = 0

    def handle_starttag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attr_list}
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "label":
            self.open_labels += 1
            if "for" in attrs:
                self.label_targets.append(attrs["for"])
        elif tag in ("select", "textarea") or (
            tag == "input" and attrs.get("type", "text").lower() not in UNNAMED_INPUT_TYPES
        ):
            self.fields.append(_Field(tag, attrs, self.open_labels > 0))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self.open_labels:
            self.open_labels -= 1


def markup_problems(html: str) -> list[str]:
    """What is wrong with a page's ids and labels, one line each (empty: nothing)."""
    page = _Page()
    page.feed(html)
    page.close()
    ids = Counter(page.ids)
    problems = [f"id {name!r} appears {count} times" for name, count in ids.items() if count > 1]
    problems += [f"<label for={target!r}> names no element" for target in page.label_targets if target not in ids]
    labelled = set(page.label_targets)
    for item in page.fields:
        attrs = item.attrs
        if attrs.get("aria-label", "").strip() or item.in_label:
            continue
        if attrs.get("aria-labelledby"):
            missing = [i for i in attrs["aria-labelledby"].split() if i not in ids]
            if missing:
                problems.append(f"{item.describe()} is labelled by missing ids {missing}")
            continue
        if not attrs.get("id") or attrs["id"] not in labelled:
            problems.append(f"{item.describe()} has no label")
    return problems


def assert_labelled_and_unique(html: str, page: str = "the page") -> None:
    problems = markup_problems(html)
    assert not problems, f"{page}:\n" + "\n".join(problems)


VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str  # its text and its descendants', whitespace collapsed


class _Finder(HTMLParser):
    def __init__(self, element_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.element_id, self.found, self.depth, self.parts = element_id, None, 0, []

    def handle_starttag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attr_list}
        if self.found is None and attrs.get("id") == self.element_id:
            self.found = Element(tag, attrs, "")
            self.depth = 0 if tag in VOID_TAGS else 1
        elif self.depth and tag not in VOID_TAGS:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def element(html: str, element_id: str) -> Element | None:
    """The element of that id (the first, should there be several), or None."""
    finder = _Finder(element_id)
    finder.feed(html)
    finder.close()
    if finder.found is not None:
        finder.found.text = " ".join("".join(finder.parts).split())
    return finder.found
