"""A rendered form read as a browser reads it (standard library only): its controls with their attributes, and
the data a browser would submit for it untouched (the HTML form submission algorithm, for the controls the
dashboard uses: text-like inputs, checkboxes, selects, textareas; disabled ones, and those in a disabled
fieldset, are not sent)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Control:
    tag: str
    attrs: dict
    disabled: bool  # itself, or inside a disabled fieldset
    options: list[dict] = field(default_factory=list)  # a select's options' attributes, with their "text"
    text: str = ""  # a textarea's content

    @property
    def name(self) -> str:
        return self.attrs.get("name", "")

    def submitted(self) -> list[str]:
        """What a browser sends for this control as rendered: nothing, one value, or (a multiple select) several."""
        if self.disabled or not self.name:
            return []
        if self.tag == "select":
            chosen = [o for o in self.options if "selected" in o and "disabled" not in o]
            if not chosen and "multiple" not in self.attrs and self.options:
                chosen = [self.options[0]]  # a single select with nothing selected sends its first option
            return [o.get("value", o["text"]) for o in chosen]
        if self.tag == "textarea":
            return [self.text]
        kind = self.attrs.get("type", "text").lower()
        if kind in ("checkbox", "radio"):
            return [self.attrs.get("value", "on")] if "checked" in self.attrs else []
        if kind in ("submit", "button", "reset", "image", "file"):
            return []
        return [self.attrs.get("value", "")]


class _FormReader(HTMLParser):
    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside, self.disabled_depth = form_id, False, []  # one flag per open fieldset
        self.controls, self.found = [], False
        self._open: Control | None = None
        self._option: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = {k: ("" if v is None else v) for k, v in attrs}
        if tag == "form" and attrs.get("id") == self.form_id:
            self.inside, self.found = True, True
            return
        if not self.inside:
            return
        if tag == "fieldset":
            self.disabled_depth.append("disabled" in attrs)
            return
        if tag in ("input", "select", "textarea"):
            control = Control(tag, attrs, "disabled" in attrs or any(self.disabled_depth))
            self.controls.append(control)
            if tag != "input":
                self._open = control
        elif tag == "option" and self._open is not None:
            self._option = {**attrs, "text": ""}
            self._open.options.append(self._option)

    def handle_endtag(self, tag):
        if not self.inside:
            return
        if tag == "form":
            self.inside = False
        elif tag == "fieldset" and self.disabled_depth:
            self.disabled_depth.pop()
        elif tag in ("select", "textarea"):
            self._open = None
        elif tag == "option":
            self._option = None

    def handle_data(self, data):
        if self._option is not None:
            self._option["text"] += data
        elif self._open is not None and self._open.tag == "textarea":
            self._open.text += data


def controls(html: str, form_id: str) -> dict[str, Control]:
    """The form's named controls by name (the dashboard names each once)."""
    reader = _FormReader(form_id)
    reader.feed(html)
    assert reader.found, f"no form with id {form_id!r}"
    return {c.name: c for c in reader.controls if c.name}


def submitted(html: str, form_id: str) -> dict[str, str]:
    """The data a browser submits for the form as it was rendered."""
    data = {}
    for name, control in controls(html, form_id).items():
        values = control.submitted()
        if values:
            data[name] = values[0]
    return data
