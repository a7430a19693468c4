"""Queue control in a real browser, with a real worker: while a long job holds the training slot, three queued
jobs are listed in order; "Move to top" on the third redraws every open dashboard of the user live (no reload),
and the jobs then start in that order."""

from __future__ import annotations

import pytest

from jobs.datasets import services as dataset_services
from jobs.models import Job
from jobs.training.launch import LaunchSpec, create_job, request_cancel
from tests.browser.conftest import shoot
from tests.browser.test_job_page import as_worker
from tests.conftest import FAST_PARAMS, csv_bytes
from tests.polling import until

pytestmark = pytest.mark.django_db(transaction=True)

ROWS_JS = """() => Array.from(document.querySelectorAll('#queue-gpu tbody tr[data-job-id]')).map(
  (tr) => [Number(tr.getAttribute('data-job-id')), Number(tr.querySelector('.queue-position').textContent)])"""



def _status(pk: int) -> str:
    return Job.objects.values_list("status", flat=True).get(pk=pk)


def _wait_for_rows(page, rows: list[list[int]]) -> None:
    page.wait_for_function(f"(expected) => JSON.stringify(({ROWS_JS})()) === JSON.stringify(expected)", arg=rows)


def test_move_to_top_redraws_the_queue_live_and_the_jobs_start_in_that_order(
    signed_in, context, site, browser_user, tiny_bert, celery_worker
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from mlcore.testing import sentiment_rows

    page, jobs = signed_in, []

    def launch_all():  # in a thread: the launch announces itself through the channel layer (as_worker says why)
        upload = SimpleUploadedFile("reviews.csv", csv_bytes(sentiment_rows(160)))
        dataset = dataset_services.create_dataset(browser_user, "reviews", upload)
        spec = LaunchSpec(kind="finetune", dataset=dataset, base_model=str(tiny_bert))
        jobs.append(
            create_job(
                browser_user, LaunchSpec(**{**spec.__dict__, "params": dict(FAST_PARAMS, epochs=100, batch_size=2)})
            )
        )
        until(lambda: _status(jobs[0].pk) == "running", "the long job runs")
        jobs.extend(
            create_job(browser_user, LaunchSpec(**{**spec.__dict__, "params": dict(FAST_PARAMS, epochs=1)}))
            for _ in range(3)
        )

    as_worker(launch_all)
    long_job, first, second, third = (job.pk for job in jobs)

    page.reload()
    observer = context.new_page()  # a second dashboard of the user's, which nobody touches
    observer.goto(site.url + "/")
    for each in (page, observer):
        each.locator("#live-indicator.online").wait_for()
        _wait_for_rows(each, [[first, 1], [second, 2], [third, 3]])
        each.evaluate("() => { window.notReloaded = true; }")

    page.get_by_role("button", name=f"Move job #{third} to top").click()
    for each in (observer, page):
        _wait_for_rows(each, [[third, 1], [first, 2], [second, 3]])
        assert each.evaluate("() => window.notReloaded === true")
    page.locator("#queue").scroll_into_view_if_needed()
    shoot(page, "queue")

    as_worker(lambda: request_cancel(Job.objects.get(pk=long_job)))
    # The places shrink live as each job starts; then they all end, started in the order the user chose.
    _wait_for_rows(observer, [[first, 1], [second, 2]])
    until(lambda: all(_status(pk) in Job.FINISHED for pk in (first, second, third)), "the three jobs ended")
    started = Job.objects.filter(pk__in=(first, second, third)).order_by("started_at")
    assert [(job.pk, job.status) for job in started] == [
        (third, "succeeded"),
        (first, "succeeded"),
        (second, "succeeded"),
    ]
    observer.close()
