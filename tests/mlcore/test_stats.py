"""The Wilson interval of an accuracy and the decimals a test set's size supports."""

from __future__ import annotations

import pytest

from mlcore.stats import supported_decimals, wilson_interval


def test_the_wilson_interval_matches_published_values():
    # Brown, Cai & DasGupta (2001) and statsmodels' proportion_confint(method="wilson"): 35/40 -> 0.7389..0.9454.
    assert wilson_interval(35, 40) == pytest.approx((0.73887, 0.94537), abs=1e-4)
    low, high = wilson_interval(21882, 25000)
    assert (low, high) == pytest.approx((0.87115, 0.87930), abs=1e-4)


def test_the_interval_stays_inside_zero_and_one_at_the_extremes():
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and 0.27 < high < 0.28
    low, high = wilson_interval(10, 10)
    assert 0.72 < low < 0.73 and high == 1.0
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


@pytest.mark.parametrize(("correct", "n", "decimals"), [(35, 40, 2), (2188, 2500, 3), (21882, 25000, 4)])
def test_a_small_test_set_supports_fewer_decimals(correct, n, decimals):
    assert supported_decimals(*wilson_interval(correct, n)) == decimals
