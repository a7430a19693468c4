"""A failed job's reason (for its owner) apart from its traceback (for staff): Job.error_detail, and the jobs that
failed before it split in two, their reason's server paths cut to their last part."""

import re

from django.db import migrations, models

TRACEBACK = "\n\nTraceback (most recent call last)"
SERVER_PATH = re.compile(r"(?<![\w:/.~-])/(?:[\w.@+~-]+/)+([\w.@+~-]*)")  # as jobs.training.failures has it


def split_errors(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    for job in Job.objects.filter(error__contains=TRACEBACK).only("pk", "error"):
        reason, _, rest = job.error.partition(TRACEBACK)
        reason = SERVER_PATH.sub(lambda m: m.group(1) or "…", reason)[:500]
        Job.objects.filter(pk=job.pk).update(error=reason, error_detail="Traceback (most recent call last)" + rest)


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0015_job_log_lines_progress_share_output_summary"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="error_detail",
            field=models.TextField(blank=True, help_text="Its traceback, which names server paths: for staff only."),
        ),
        migrations.AlterField(
            model_name="job",
            name="error",
            field=models.TextField(blank=True, help_text="Why it failed, for its owner (training.failures)."),
        ),
        migrations.RunPython(split_errors, migrations.RunPython.noop),
    ]
