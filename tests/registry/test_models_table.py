"""The dashboard's Models table names where each model came from (never a server path) and, for staff, whose it is."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from jobs.models import ModelRecord

pytestmark = pytest.mark.django_db


def _record(owner, name, kind="finetune", base_model="", params=None, promoted=False):
    return ModelRecord.objects.create(
        owner=owner, name=name, kind=kind, base_model=base_model, params=params or {}, metrics={},
        label_names=["negative", "positive"], num_parameters=1, size_bytes=1, is_promoted=promoted,
    )  # fmt: skip


class _Table(HTMLParser):
    """The Models table's header and its rows' cells by data-key, keyed by model id."""

    def __init__(self):
        super().__init__()
        self.inside, self.header, self.rows, self.row, self.key, self.in_th = False, [], {}, None, None, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and a.get("id") == "models":
            self.inside = True
        if not self.inside:
            return
        if tag == "th":
            self.in_th = True
            self.header.append("")
        if tag == "tr" and "data-model-id" in a:
            self.row = self.rows.setdefault(int(a["data-model-id"]), {})
        if tag == "td" and self.row is not None and a.get("data-key"):
            self.key = a["data-key"]
            self.row[self.key] = ""

    def handle_endtag(self, tag):
        if tag == "section":
            self.inside = False
        if tag == "th":
            self.in_th = False
        if tag == "td":
            self.key = None

    def handle_data(self, data):
        if self.in_th and self.inside:
            self.header[-1] += data.strip()
        elif self.key is not None:
            self.row[self.key] += data.strip()


def _models_table(client) -> _Table:
    table = _Table()
    response = client.get("/")
    assert response.status_code == 200
    table.feed(response.content.decode())
    return table


def test_the_base_model_is_named_as_people_know_it_never_as_a_server_path(logged_in, user):
    bundled = _record(user, "a", base_model="all-MiniLM-L6-v2")
    hub = _record(user, "b", base_model="bert-base-uncased")
    folder = _record(user, "c", base_model="/srv/distillery/model-roots/tiny-bert")
    imported = _record(user, "d", kind="imported", base_model="/home/someone/teacher")
    derived = _record(user, "e", kind="distill", base_model="a")
    named = _record(user, "f", kind="distill", base_model="a", params={"student": "all-MiniLM-L6-v2"})

    rows = _models_table(logged_in).rows

    assert rows[bundled.pk]["source"] == "all-MiniLM-L6-v2 (bundled)"
    assert rows[hub.pk]["source"] == "BERT base (uncased)"
    assert rows[folder.pk]["source"] == "folder tiny-bert"
    assert rows[imported.pk]["source"] == "imported"
    assert rows[derived.pk]["source"] == "derived from its teacher"
    assert rows[named.pk]["source"] == "all-MiniLM-L6-v2 (bundled)"
    assert "/srv/distillery" not in logged_in.get("/").content.decode()
    assert "/srv/distillery" not in logged_in.get(f"/models/{folder.pk}/").content.decode()


def test_staff_see_whose_each_model_is(logged_in, user, other_user):
    user.is_staff = True
    user.save()
    mine = _record(user, "mine", base_model="all-MiniLM-L6-v2", promoted=True)
    theirs = _record(other_user, "theirs", base_model="all-MiniLM-L6-v2", promoted=True)

    table = _models_table(logged_in)

    assert "Owner" in table.header
    assert table.rows[mine.pk]["owner"] == "you" and table.rows[theirs.pk]["owner"] == "bob"
    assert logged_in.get(f"/models/{theirs.pk}/").content.decode().count('id="model-owner">bob<') == 1


def test_users_see_no_owner_column(logged_in, user):
    mine = _record(user, "mine", base_model="all-MiniLM-L6-v2")
    table = _models_table(logged_in)
    assert "Owner" not in table.header and "owner" not in table.rows[mine.pk]
