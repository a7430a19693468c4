"""Read rendered pages in tests: Django's own HTML parser (django.test.html, what assertHTMLEqual uses) and a small
CSS selector over its tree: descendant selectors of tag, #id, .class, [attr] and [attr="value"] parts."""

from __future__ import annotations

import re

from django.test.html import Element, parse_html

_PART = re.compile(r'([a-zA-Z][\w-]*)|#([\w-]+)|\.([\w-]+)|\[([\w-]+)(?:="([^"]*)")?\]')


class Node:
    """An element of a parsed page: its tag, attributes and children (text nodes are str)."""

    def __init__(self, element: Element):
        self.element = element

    @property
    def name(self) -> str:
        return self.element.name

    def attrs(self) -> dict[str, str | None]:
        return dict(self.element.attributes)

    def __getitem__(self, name: str) -> str | None:
        return self.attrs()[name]

    def has_attr(self, name: str) -> bool:
        return name in self.attrs()

    def children(self) -> list[Node]:
        return [Node(c) for c in self.element.children if isinstance(c, Element)]

    def text(self) -> str:
        """The element's text, its text nodes joined with single spaces (the parser collapses whitespace)."""
        parts = [c if isinstance(c, str) else Node(c).text() for c in self.element.children]
        return " ".join(p for p in parts if p)

    def descendants(self):
        for child in self.children():
            yield child
            yield from child.descendants()

    def select(self, selector: str) -> list[Node]:
        found = [self]
        for compound in selector.split():
            found = list({id(n.element): n for f in found for n in f.descendants() if _matches(n, compound)}.values())
        return found

    def select_one(self, selector: str) -> Node | None:
        found = self.select(selector)
        return found[0] if found else None


def _matches(node: Node, compound: str) -> bool:
    attrs = node.attrs()
    for tag, id_, cls, attr, value in _PART.findall(compound):
        if tag and node.name != tag:
            return False
        if id_ and attrs.get("id") != id_:
            return False
        if cls and cls not in (attrs.get("class") or "").split():
            return False
        if attr and (attr not in attrs or (value and attrs[attr] != value)):
            return False
    return True


def parse(html: str | bytes) -> Node:
    """The page's tree, under a root node of its own."""
    text = html.decode() if isinstance(html, bytes) else html
    return Node(parse_html(f"<div>{text}</div>"))
