"""After a form, the dashboard goes back only to a page of this site: `next` never leads elsewhere."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "given, lands",
    [
        ("/models/{pk}/", "/models/{pk}/"),
        ("https://evil.test/phish", "/"),
        ("//evil.test/phish", "/"),
        ("http://testserver.evil.test/", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
    ],
)
def test_promoting_goes_back_only_to_a_page_of_this_site(logged_in, trained_model, given, lands):
    response = logged_in.post(f"/models/{trained_model.pk}/promote/", {"next": given.format(pk=trained_model.pk)})
    assert response.status_code == 302 and response["Location"] == lands.format(pk=trained_model.pk)
    trained_model.refresh_from_db()
    assert trained_model.is_promoted
