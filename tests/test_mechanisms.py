"""The model's equations behave as the published figures and the docs say."""

import warnings
from pathlib import Path

import numpy as np
import pytest

from funnelsim import load_scenario
from funnelsim.model.mechanisms import (
    ContactCurve,
    calendar_months,
    contact_probability,
    decay,
    logistic,
    odds_multiplier,
    slots,
    touch,
    win_probability,
)

BASELINE = Path(__file__).resolve().parent.parent / "scenarios" / "baseline.toml"


@pytest.fixture(scope="module")
def speed():
    return load_scenario(BASELINE).handoff.speed_to_lead


def test_contact_probability_falls_with_delay_and_is_not_a_single_exponential(speed):
    """Answering later never helps, and the hazard falls with time (steep first, flat later)."""
    delays = np.geomspace(1e-3, 30, 400)
    p = contact_probability(speed, delays)
    assert np.all(np.diff(p) <= 1e-15)
    assert contact_probability(speed, 0.0) == pytest.approx(speed.contact_rate_immediate)
    # Log-odds lost per hour in the first half hour vs. between 2 h and 24 h.
    log_m = np.log(odds_multiplier(speed, np.array([5 / 60, 0.5, 2, 24]) / 24))
    assert (log_m[0] - log_m[1]) / (0.5 - 5 / 60) > 20 * (log_m[2] - log_m[3]) / 22


def test_scalar_contact_curve_matches_vectorised_formula(speed):
    """The per-event curve used by the engine equals the documented formula."""
    curve = ContactCurve(speed)
    for delay in [0.0, 1e-4, 0.003, 0.02, 0.04, 0.5, 1.0, 3.0, 100.0]:
        assert curve(delay) == pytest.approx(float(contact_probability(speed, delay)), abs=1e-12)


def test_engagement_decays_by_half_life_and_touch_closes_gap():
    """Half-life halves engagement; a touch closes lift x response of the gap to 1, never above 1."""
    assert decay(0.8, 30.0, 30.0) == pytest.approx(0.4)
    assert touch(0.5, 0.2, 1.0) == pytest.approx(0.6)
    assert touch(0.5, 0.8, 2.0) == 1.0
    arr = touch(np.array([0.0, 0.5]), 0.2, np.array([1.0, 1.5]))
    np.testing.assert_allclose(arr, [0.2, 0.65])


def test_win_probability_is_win_rate_at_average_fit_and_rises_with_fit():
    """win_rate is the chance at fit 0.5; fit_effect adds log-odds per unit of fit."""
    assert float(win_probability(0.25, 2.0, 0.5)) == pytest.approx(0.25)
    odds = float(win_probability(0.25, 2.0, 1.0))
    assert odds / (1 - odds) == pytest.approx((0.25 / 0.75) * np.exp(1.0))
    assert float(win_probability(0.25, 0.0, 0.9)) == pytest.approx(0.25)


def test_logistic_is_scipys_expit():
    """The win probability's logistic (numpy, so the engine need not import scipy) is expit: the same
    formula, equal but for the last bit of ``exp`` (numpy's kernel or the C library's), also at the
    extremes (0 without an overflow warning below -709, 1 above 37, infinities and NaN)."""
    from scipy.special import expit

    rng = np.random.default_rng(18)
    x = np.concatenate(
        [
            np.linspace(-800.0, 800.0, 400_001),
            rng.normal(0.0, 3.0, 200_000),
            [0.0, -0.0, 1e-300, -1e-300, 709.8, -709.8, 745.2, -745.2, 1e308, -1e308, np.inf, -np.inf, np.nan],
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = logistic(x)
    np.testing.assert_allclose(ours, expit(x), rtol=1e-15, atol=0)
    assert np.mean(ours == expit(x)) > 0.9  # mostly bit for bit
    assert np.isnan(ours[-1]) and ours[-2] == 0.0 and ours[-3] == 1.0
    assert float(logistic(0.3)) == expit(0.3) and logistic(0.3).shape == ()
    fit = rng.uniform(0.0, 1.0, 1000)
    for rate, effect in ((0.25, 2.0), (0.05, 8.0), (0.9, -3.0)):
        logit = np.log(rate / (1 - rate)) + effect * (fit - 0.5)
        np.testing.assert_allclose(win_probability(rate, effect, fit), expit(logit), rtol=1e-15, atol=0)


def test_ramp_slots_round_to_nearest_slot():
    """A rep at 25% productivity with 15 slots works 4 deals; a leaver none."""
    ae = load_scenario(BASELINE).sales.ae
    assert slots(ae, 1.0) == 15
    assert slots(ae, 0.25) == 4
    assert slots(ae, 0.0) == 0


def test_calendar_months_cover_horizon_exactly():
    """Month segments tile the horizon at calendar boundaries (Jan 31 days, Feb 28 in 2027)."""
    import datetime as dt

    segments = calendar_months(dt.date(2027, 1, 15), 60)
    assert segments[0] == (0.0, 17.0, 0)
    assert segments[1] == (17.0, 45.0, 1)
    assert segments[2] == (45.0, 60, 2)
