"""A webhook goes to public addresses only (no SSRF into the platform's own network): refused at launch when the
URL is or resolves to a loopback, private, link-local, multicast, unspecified or reserved address; refused again
at delivery on the addresses then resolved, which are the ones connected to; no redirect followed. Receivers are
real HTTP servers on loopback, which with the default settings must never get a request; the resolver is faked
(FakeDNS) only for names, since no DNS server runs here."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from jobs import tasks
from jobs.models import Job, Sweep
from jobs.training import webhooks

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.215.14"  # any global unicast address; nothing connects to it in these tests


@pytest.fixture
def launch(api, trained_model):
    """POST /api/jobs/ with this webhook_url."""

    def post(url: str):
        payload = {"kind": "finetune", "dataset": trained_model.dataset_id, "webhook_url": url}
        return api.post("/api/jobs/", payload, format="json")

    return post


@pytest.fixture
def finished(trained_model):
    """A finished job whose webhook_url is set straight in the database, as one saved before these checks was."""

    def with_url(url: str) -> Job:
        job = trained_model.produced_by
        Job.objects.filter(pk=job.pk).update(webhook_url=url)
        return job

    return with_url


@pytest.mark.parametrize(
    "url, refusal",
    [
        ("http://127.0.0.1:{port}/hook", "127.0.0.1 is a loopback address"),
        ("http://0.0.0.0:{port}/hook", "0.0.0.0 is an unspecified address"),
        ("http://[::1]:{port}/hook", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]:{port}/hook", "::ffff:127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://10.0.0.7/hook", "10.0.0.7 is a private address"),
        ("http://192.168.1.10/hook", "192.168.1.10 is a private address"),
        ("http://172.16.5.4/hook", "172.16.5.4 is a private address"),
        ("http://100.64.0.1/hook", "100.64.0.1 is a private address"),
        ("http://224.0.0.251/hook", "224.0.0.251 is a multicast address"),
        ("http://240.0.0.1/hook", "240.0.0.1 is a reserved address"),
        ("http://[fe80::1]/hook", "fe80::1 is a link-local address"),
        ("http://[fd00::1]/hook", "fd00::1 is a private address"),
        ("http://[ff02::1]/hook", "ff02::1 is a multicast address"),
    ],
)
def test_a_non_public_address_is_refused_at_launch_and_nothing_reaches_it(launch, receiver, url, refusal):
    response = launch(url.format(port=receiver.port))

    assert response.status_code == 400
    [message] = response.json()["webhook_url"]
    assert message.startswith(refusal + ": webhooks go to public addresses only")
    assert Job.objects.count() == 1  # the trained model's own job only
    assert receiver.requests == []


def test_localhost_is_refused_for_the_loopback_address_it_resolves_to(launch, receiver):
    response = launch(f"http://localhost:{receiver.port}/hook")

    [message] = response.json()["webhook_url"]
    assert message.startswith("localhost resolves to ") and "which is a loopback address" in message
    assert receiver.requests == []


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "017700000001"])
def test_other_spellings_of_loopback_are_refused_for_what_they_resolve_to(host):
    with pytest.raises(ValidationError) as refused:
        webhooks.check_url(f"http://{host}/hook")
    assert refused.value.message_dict["webhook_url"][0].startswith(f"{host} resolves to 127.0.0.1, which is a loop")


def test_a_name_is_refused_if_any_of_its_addresses_is(launch, dns):
    dns.add("mixed.test", (PUBLIC, "127.0.0.1"))

    response = launch("https://mixed.test/hook")

    assert response.json() == {
        "webhook_url": [
            "mixed.test resolves to 127.0.0.1, which is a loopback address: webhooks go to public addresses only "
            "(an on-premises receiver: ask the operator)"
        ]
    }


def test_a_sweep_is_refused_on_its_webhook_url(api, trained_model, receiver):
    payload = {"kind": "finetune", "dataset": trained_model.dataset_id, "grid": {"learning_rate": [1e-5, 3e-5]}}
    response = api.post("/api/sweeps/", payload | {"webhook_url": receiver.url}, format="json")

    assert response.status_code == 400 and list(response.json()) == ["webhook_url"]
    assert Sweep.objects.count() == 0 and receiver.requests == []


def test_the_launch_form_shows_the_refusal(logged_in, trained_model, receiver):
    form = {
        "kind": "finetune", "dataset": trained_model.dataset_id, "base_model": "all-MiniLM-L6-v2", "batch_size": "16",
        "learning_rate": "2e-5", "epochs": "1", "max_length": "64", "seed": "1", "truncation": "head",
        "scheduler": "exponential", "warmup_ratio": "0", "weight_decay": "0", "webhook_url": receiver.url,
    }  # fmt: skip
    response = logged_in.post("/jobs/new/", form)

    assert response.status_code == 400 and "127.0.0.1 is a loopback address" in response.content.decode()
    assert Job.objects.count() == 1  # the trained model's own job only


def test_a_loopback_url_saved_before_these_checks_is_refused_at_delivery_and_not_retried(finished, receiver, caplog):
    job = finished(receiver.url)

    result = tasks.notify_webhook.apply(args=(job.pk,))  # eager: a retry would run in place

    assert result.state == "SUCCESS" and result.get() is None
    assert receiver.requests == []
    assert "127.0.0.1 is a loopback address" in caplog.text


def test_a_name_that_rebinds_to_loopback_after_launch_is_refused_at_delivery(launch, dns, receiver):
    dns.add("rebind.test", PUBLIC, "127.0.0.1")  # public when launched, loopback when delivered
    url = f"http://rebind.test:{receiver.port}/hook"
    launched = launch(url)
    assert launched.status_code == 201, launched.content

    result = tasks.notify_webhook.apply(args=(launched.json()["id"],))

    assert result.state == "SUCCESS" and result.get() is None
    assert receiver.requests == [] and dns.lookups["rebind.test"] == 2


def test_a_delivery_connects_to_the_address_it_checked_without_a_second_lookup(finished, dns, make_receiver, settings):
    settings.DISTILLERY_WEBHOOK_ALLOW_PRIVATE = True
    checked = make_receiver()
    other = make_receiver(host="127.0.0.2", port=checked.port)  # where a second lookup would lead
    dns.add("hooks.test", "127.0.0.1", "127.0.0.2")
    job = finished(f"http://hooks.test:{checked.port}/hook?run=1")

    assert webhooks.post(job.pk) == 200

    assert len(checked.requests) == 1 and other.requests == []
    assert checked.requests[0][0]["Host"] == f"hooks.test:{checked.port}"  # the name, not the address
    assert dns.lookups["hooks.test"] == 1


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_the_receivers_final_answer_and_is_not_followed(finished, make_receiver, settings, status):
    settings.DISTILLERY_WEBHOOK_ALLOW_PRIVATE = True  # even where loopback is allowed
    first, second = make_receiver([status]), make_receiver()
    first.headers = {"Location": second.url}
    job = finished(first.url)

    result = tasks.notify_webhook.apply(args=(job.pk,))

    assert result.get() == status
    assert len(first.requests) == 1 and second.requests == []  # neither followed nor retried


def test_allowing_private_receivers_lets_loopback_through_but_not_the_metadata_service(
    launch, finished, receiver, settings
):
    settings.DISTILLERY_WEBHOOK_ALLOW_PRIVATE = True

    assert launch(receiver.url).status_code == 201
    assert webhooks.post(finished(receiver.url).pk) == 200 and len(receiver.requests) == 1
    for url, kind in [("http://169.254.169.254/latest", "link-local"), ("http://0.0.0.0/", "unspecified"),
                      ("http://224.0.0.1/", "multicast")]:  # fmt: skip
        [message] = launch(url).json()["webhook_url"]
        assert f"{kind} address: webhooks go to public and private addresses only" in message


def test_a_name_that_does_not_resolve_is_taken_at_launch_and_retried_at_delivery(launch, dns):
    launched = launch("https://not-yet.test/hook")
    assert launched.status_code == 201, launched.content

    with pytest.raises(webhooks.WebhookUnavailable, match="not-yet.test does not resolve"):
        webhooks.post(launched.json()["id"])


def test_the_operators_hosts_narrow_the_public_ones_without_widening_them(launch, dns, settings):
    dns.add("hooks.example.com", PUBLIC)
    dns.add("hooks.internal.test", "10.1.2.3")
    settings.DISTILLERY_WEBHOOK_HOSTS = ["hooks.example.com", "hooks.internal.test"]

    assert list(launch("file:///etc/passwd").json()) == ["webhook_url"]
    refused = launch("http://169.254.169.254/latest")
    assert refused.json() == {"webhook_url": ["169.254.169.254 is not a webhook host here; ask the operator"]}
    taken = launch("https://hooks.example.com/ci")
    assert taken.status_code == 201
    assert Job.objects.get(pk=taken.json()["id"]).webhook_url == "https://hooks.example.com/ci"
    [message] = launch("https://hooks.internal.test/ci").json()["webhook_url"]
    assert message.startswith("hooks.internal.test resolves to 10.1.2.3, which is a private address")
