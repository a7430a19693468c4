"""What the page views share: form errors from a service, delete through a service.

Runs in: the web process.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect


def add_errors(form, exc: ValidationError) -> None:
    """A service's ValidationError on the form: on its field where the form has one, else above the form."""
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def delete_through(request, delete, obj, page: str, done: str):
    """Delete through a service; back to the object's page with the reason if it refuses, else the dashboard."""
    try:
        delete(obj)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect(page, pk=obj.pk)
    messages.success(request, done)
    return redirect("dashboard")
