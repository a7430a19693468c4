"""The dataset forms in a real browser: while a Hub import is on its way its button is disabled and says
"Importing…", and a server whose Hub does not answer says so on the form after the short connect timeout, not after
the loader's retries; a held upload (a semicolon file whose columns must be chosen) shows its file, not an empty file
input. The dashboard's markup is checked as the browser holds it (unique ids, a label on every field)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from mlcore.catalogue import HUB_CONNECT_TIMEOUT
from tests.browser.conftest import log_in, serve
from tests.conftest import WebServer
from tests.markup import assert_labelled_and_unique

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

SHOWN = """() => {
  const button = document.querySelector("#hub-form button");
  return {hub: [button.disabled, button.textContent],
          busy: document.querySelector("#hub-form").getAttribute("aria-busy"),
          upload: document.querySelector("#upload button").disabled};
}"""


@pytest.fixture
def site_without_hub(settings, tmp_path, silent_port, watch):
    """The web server of a machine that is not told it is offline (HF_HUB_OFFLINE unset) and whose Hub never
    answers: HF_ENDPOINT is a local port that takes no connection."""
    server = WebServer(
        Path(settings.MEDIA_ROOT), tmp_path / "web.log", HF_HUB_OFFLINE="",
        HF_ENDPOINT=f"http://127.0.0.1:{silent_port}", NO_PROXY="127.0.0.1",
    )  # fmt: skip
    yield from serve(server, watch)


def test_a_hub_import_shows_it_is_running_then_says_the_hub_cannot_be_reached(
    page, site_without_hub, browser_user, watch
):
    watch.expect(400, r"/datasets/hub/$")
    log_in(page, site_without_hub, browser_user)
    assert_labelled_and_unique(page.content(), "the dashboard, as the browser holds it")
    form = page.locator("#hub-form")
    form.get_by_label("Hub dataset", exact=True).fill("stanfordnlp/imdb")
    assert page.evaluate(SHOWN) == {"hub": [False, "Import"], "busy": None, "upload": False}

    # What the page shows once the form is sent (busy.js listens on the document; the window hears the event
    # after it), kept in the tab's sessionStorage, which outlives the navigation to the answer.
    keep = f"() => sessionStorage.setItem('sent', JSON.stringify(({SHOWN})()))"
    page.evaluate(f"() => window.addEventListener('submit', {keep})")
    started = time.monotonic()
    form.get_by_role("button").click(no_wait_after=True)

    page.locator("#hub-form .errorlist").wait_for()
    took = time.monotonic() - started
    sent = json.loads(page.evaluate("sessionStorage.getItem('sent')"))
    assert sent == {"hub": [True, "Importing…"], "busy": "true", "upload": False}  # only the sent form busy
    assert HUB_CONNECT_TIMEOUT <= took < HUB_CONNECT_TIMEOUT + 7, took  # not the ~25 s of the loader's retries
    errors = page.locator("#hub-form .errorlist").inner_text()
    assert "the Hugging Face Hub cannot be reached from this server (127.0.0.1:" in errors
    assert f"no answer within {HUB_CONNECT_TIMEOUT:g} s" in errors
    assert page.evaluate(SHOWN) == {"hub": [False, "Import"], "busy": None, "upload": False}  # the answer's page
    assert form.get_by_label("Hub dataset", exact=True).input_value() == "stanfordnlp/imdb"


def test_a_held_semicolon_upload_shows_its_file_and_takes_the_chosen_columns(signed_in, site, watch):
    page = signed_in
    watch.expect(400, r"/datasets/upload/$")
    body = "review_body;stars\n" + "".join(f"film {i}, fine;{'5' if i % 2 else '1'}\n" for i in range(20))
    upload = page.locator("#upload")
    upload.get_by_label("File", exact=True).set_input_files(
        files=[{"name": "stars.csv", "mimeType": "text/csv", "buffer": body.encode()}]
    )
    upload.get_by_role("button", name="Upload").click()
    page.wait_for_url(re.compile(r"/datasets/upload/$"))

    upload = page.locator("#upload")
    assert upload.locator("#held-file-name").inner_text() == "stars.csv"
    assert upload.locator("#held-file-size").inner_text() == f"{len(body)}\xa0bytes"
    assert not upload.locator("#upload-file").is_visible()  # no "No file chosen" under a held file
    assert upload.get_by_label("Text column").locator("option").all_inner_texts() == [
        "— choose —", "review_body", "stars",
    ]  # fmt: skip
    upload.get_by_label("Text column").select_option("review_body")
    upload.get_by_label("Label column").select_option("review_body")
    upload.get_by_role("button", name="Upload").click()
    page.wait_for_url(re.compile(r"/datasets/upload/$"))
    assert "must be different" in page.locator("#upload").inner_text()
    assert page.locator("#held-file-name").inner_text() == "stars.csv"  # still held

    page.locator("#upload").get_by_label("Label column").select_option("stars")
    page.locator("#upload").get_by_role("button", name="Upload").click()
    page.wait_for_url(re.compile(r"/datasets/\d+/$"))
    assert "20 rows" in page.locator("#flash").inner_text()
