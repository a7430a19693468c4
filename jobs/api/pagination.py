"""The API lists' pages: ?limit= and ?offset= (DRF's LimitOffsetPagination), each held to what a database can
count to.

DRF caps neither: ?limit= or ?offset=2938528119838447161573376 reached the database as a LIMIT or OFFSET that
SQLite cannot hold, a 500. Past MAX_ROWS either is taken as MAX_ROWS (an offset that large: an empty page), so
such a request stays what the schema calls it, valid, and gets a page.

Runs in: the web process.
"""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination, _positive_int

# Beyond any table; a limit and an offset of this size added together still fit a signed 64-bit integer.
MAX_ROWS = 2**62 - 1


class Pagination(LimitOffsetPagination):
    max_limit = MAX_ROWS

    def get_offset(self, request):
        try:
            return _positive_int(request.query_params[self.offset_query_param], cutoff=MAX_ROWS)
        except (KeyError, ValueError):
            return 0
