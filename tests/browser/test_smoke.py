import pytest

from tests.browser.conftest import shoot

pytestmark = pytest.mark.django_db(transaction=True)


def test_dashboard_opens(signed_in):
    shoot(signed_in, "dashboard-empty")
    assert signed_in.get_by_role("heading", name="Dashboard").is_visible()
