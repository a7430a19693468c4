"""`duration`: how long something took, in words a person reads at a glance ("47 s", "3 min 12 s", "2 h 5 min").

Runs in: the web process. static/js/job.js writes the same words when a job ends while its page is open.
"""

from __future__ import annotations

from datetime import datetime

from django import template

register = template.Library()


def duration_text(seconds: float) -> str:
    """Seconds under a minute, minutes and seconds under an hour, hours and minutes beyond (rounded down)."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@register.filter
def duration(start: datetime | None, end: datetime | None) -> str:
    """`{{ job.started_at|duration:job.finished_at }}`; empty when either is missing."""
    if start is None or end is None:
        return ""
    return duration_text((end - start).total_seconds())
