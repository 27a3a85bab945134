"""Distribution specs: what a scenario writes is what the engine samples.

Moment checks take their tolerance from the sampling distribution of the estimator
(a two-sided 99.9% normal interval), never from a guessed rtol:

* sample mean:     |x̄ - μ| <= z · sqrt(σ² / n), with σ² the spec's analytic variance;
* sample variance: |s² - σ²| <= z · sqrt((m₄ - s⁴) / n), the CLT for s², with m₄ the
  sample fourth central moment.

Seeds are fixed, so a failure reproduces; two tests show the intervals are tight enough
to catch the classic lognormal parametrisation slips.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError
from scipy import stats

from funnelsim.model.distributions import (
    Beta,
    Dist,
    Empirical,
    Exponential,
    Fixed,
    Gamma,
    LogNormal,
    NonNegativeDist,
    Triangular,
    Uniform,
    UnitDist,
    Weibull,
)

N = 200_000
SEED = 20270101
Z = float(stats.norm.ppf(1 - 0.001 / 2))  # 99.9% two-sided

DIST = TypeAdapter(Dist)
NON_NEGATIVE = TypeAdapter(NonNegativeDist)
UNIT = TypeAdapter(UnitDist)

# Every family, with shapes that stress different parts of the sampler
# (skewed, heavy-tailed, mode on an edge, U-shaped).
SPECS = {
    "exponential": {"dist": "exponential", "mean": 4.0},
    "lognormal": {"dist": "lognormal", "mean": 60.0, "sd": 35.0},
    "gamma": {"dist": "gamma", "mean": 5.0, "sd": 2.0},
    "gamma-shape-below-1": {"dist": "gamma", "mean": 2.0, "sd": 4.0},
    "weibull": {"dist": "weibull", "shape": 1.5, "scale": 10.0},
    "weibull-shape-below-1": {"dist": "weibull", "shape": 0.8, "scale": 3.0},
    "uniform": {"dist": "uniform", "low": -2.0, "high": 5.0},
    "triangular": {"dist": "triangular", "low": 0.0, "mode": 1.0, "high": 10.0},
    "triangular-mode-at-low": {"dist": "triangular", "low": 2.0, "mode": 2.0, "high": 3.0},
    "beta": {"dist": "beta", "a": 2.0, "b": 3.0},
    "beta-u-shaped": {"dist": "beta", "a": 0.5, "b": 0.5},
    "empirical": {"dist": "empirical", "values": [1.0, 2.0, 2.0, 3.0, 10.0]},
}


def _mean_ok(x: np.ndarray, mean: float, variance: float) -> bool:
    return abs(x.mean() - mean) <= Z * math.sqrt(variance / len(x))


def _variance_ok(x: np.ndarray, variance: float) -> bool:
    s2 = x.var(ddof=1)
    m4 = np.mean((x - x.mean()) ** 4)
    return abs(s2 - variance) <= Z * math.sqrt((m4 - s2 * s2) / len(x))


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_sample_mean_matches_analytic_mean(spec: dict) -> None:
    """The mean the planner reads from a spec is the mean the engine draws."""
    dist = DIST.validate_python(spec)
    x = dist.sample(np.random.default_rng(SEED), N)
    assert x.shape == (N,)
    assert _mean_ok(x, dist.mean, dist.variance), (x.mean(), dist.mean)


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_sample_variance_matches_analytic_variance(spec: dict) -> None:
    """The spread a spec promises is the spread the engine draws."""
    dist = DIST.validate_python(spec)
    x = dist.sample(np.random.default_rng(SEED + 1), N)
    assert _variance_ok(x, dist.variance), (x.var(ddof=1), dist.variance)


def test_lognormal_is_parametrised_by_its_own_mean_and_sd() -> None:
    """`mean` and `sd` of a lognormal are those of the durations, not of their logarithm."""
    dist = LogNormal(mean=60, sd=35)
    assert (dist.mean, dist.variance) == (60, 35**2)
    assert Gamma(mean=5, sd=2).variance == 4


def test_lognormal_draws_are_numpys_lognormal_draws() -> None:
    """Lognormal sampling goes through numpy's vectorised exp for speed, yet gives the draws of
    ``Generator.lognormal``: a seed replays the same results as before. Equal to the last bit
    or so only: numpy picks its exp kernel by CPU (AVX-512 and scalar libm differ by an ulp),
    so the comparison across kernels is at ``rtol=1e-12``; on one machine a seed replays
    bit for bit (tests/test_reproducibility.py)."""
    sigma2 = math.log1p((35 / 60) ** 2)
    want = np.random.default_rng(SEED).lognormal(math.log(60) - sigma2 / 2, math.sqrt(sigma2), N)
    np.testing.assert_allclose(LogNormal(mean=60, sd=35).sample(np.random.default_rng(SEED), N), want, rtol=1e-12)


def test_fixed_always_gives_its_value() -> None:
    """A fixed spec draws its value every time: mean is the value, variance zero."""
    dist = DIST.validate_python({"dist": "fixed", "value": 3.5})
    x = dist.sample(np.random.default_rng(SEED), 1000)
    assert np.all(x == 3.5)
    assert (dist.mean, dist.variance) == (3.5, 0.0)


def test_moment_check_catches_lognormal_mean_slip() -> None:
    """The mean interval is tight enough to reject mu = ln(mean), the usual lognormal slip."""
    spec = LogNormal(mean=60, sd=35)
    sigma2 = math.log1p((spec.sd / spec.mean) ** 2)
    wrong = np.random.default_rng(SEED).lognormal(math.log(spec.mean), math.sqrt(sigma2), N)
    assert not _mean_ok(wrong, spec.mean, spec.variance)


def test_moment_check_catches_lognormal_sigma_slip() -> None:
    """The variance interval is tight enough to reject sigma = sd / mean (a first-order shortcut)."""
    spec = LogNormal(mean=60, sd=35)
    sigma = spec.sd / spec.mean
    wrong = np.random.default_rng(SEED).lognormal(math.log(spec.mean) - sigma**2 / 2, sigma, N)
    assert _mean_ok(wrong, spec.mean, spec.variance)
    assert not _variance_ok(wrong, spec.variance)


@pytest.mark.parametrize("number", [3, 2.5, 0])
def test_bare_number_is_fixed(number: float) -> None:
    """`cycle_days = 30` means "always 30 days"."""
    dist = DIST.validate_python(number)
    assert isinstance(dist, Fixed)
    assert dist.value == number


def test_boolean_is_not_a_number() -> None:
    """`true` where a distribution is expected is refused, not read as 1."""
    with pytest.raises(ValidationError):
        DIST.validate_python(True)


def test_every_family_parses_from_its_tag() -> None:
    """Each `dist` tag selects its family."""
    expected = {
        "exponential": Exponential,
        "lognormal": LogNormal,
        "gamma": Gamma,
        "weibull": Weibull,
        "uniform": Uniform,
        "triangular": Triangular,
        "beta": Beta,
        "empirical": Empirical,
    }
    for name, cls in expected.items():
        assert type(DIST.validate_python(SPECS[name])) is cls


BAD_SPECS = {
    "uniform-high-below-low": ({"dist": "uniform", "low": 5, "high": 1}, "high must be >= low, got low=5"),
    "triangular-mode-above-high": (
        {"dist": "triangular", "low": 0, "mode": 12, "high": 10},
        "needs low <= mode <= high",
    ),
    "triangular-empty": ({"dist": "triangular", "low": 3, "mode": 3, "high": 3}, "low < high"),
    "lognormal-negative-mean": ({"dist": "lognormal", "mean": -5, "sd": 1}, "greater than 0"),
    "gamma-zero-sd": ({"dist": "gamma", "mean": 5, "sd": 0}, "greater than 0"),
    "beta-negative-a": ({"dist": "beta", "a": -1, "b": 2}, "greater than 0"),
    "empirical-no-values": ({"dist": "empirical", "values": []}, "at least 1 item"),
    "exponential-nan-mean": ({"dist": "exponential", "mean": math.nan}, "finite number"),
    "unknown-tag": ({"dist": "poisson", "mean": 3}, "poisson"),
    "missing-tag": ({"mean": 3, "sd": 1}, "dist"),
    "misspelt-parameter": ({"dist": "lognormal", "mean": 3, "sdev": 1}, "sdev"),
}


@pytest.mark.parametrize(("spec", "fragment"), BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_bad_spec_is_refused(spec: dict, fragment: str) -> None:
    """An impossible or misspelt distribution is refused, and the message says what is wrong."""
    with pytest.raises(ValidationError) as info:
        DIST.validate_python(spec)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "spec",
    [
        {"dist": "uniform", "low": -1, "high": 3},
        {"dist": "triangular", "low": -1, "mode": 0, "high": 3},
        {"dist": "empirical", "values": [3, -2, 5]},
        -1,
    ],
    ids=["uniform", "triangular", "empirical", "fixed"],
)
def test_nonnegative_dist_refuses_specs_that_can_go_negative(spec: object) -> None:
    """A duration or amount refuses a spec that could draw a negative value."""
    with pytest.raises(ValidationError, match="cannot be negative"):
        NON_NEGATIVE.validate_python(spec)


@pytest.mark.parametrize(
    "spec",
    [{"dist": "uniform", "low": 0, "high": 3}, {"dist": "lognormal", "mean": 3, "sd": 1}, 0],
    ids=["uniform-from-zero", "lognormal", "zero"],
)
def test_nonnegative_dist_accepts_specs_bounded_below_by_zero(spec: object) -> None:
    """Specs that never go below zero are fine for durations and amounts."""
    assert NON_NEGATIVE.validate_python(spec).lower >= 0


@pytest.mark.parametrize(
    "spec",
    [
        {"dist": "uniform", "low": 0, "high": 1.5},
        {"dist": "uniform", "low": -0.2, "high": 0.5},
        {"dist": "lognormal", "mean": 0.4, "sd": 0.1},
        {"dist": "exponential", "mean": 0.3},
        {"dist": "empirical", "values": [0.2, 1.2]},
        1.2,
    ],
    ids=["uniform-above", "uniform-below", "lognormal", "exponential", "empirical", "fixed"],
)
def test_unit_dist_refuses_specs_that_leave_unit_interval(spec: object) -> None:
    """A share such as lead fit refuses a spec that can leave [0, 1]."""
    with pytest.raises(ValidationError, match=r"must stay within \[0, 1\]"):
        UNIT.validate_python(spec)


@pytest.mark.parametrize(
    "spec",
    [
        {"dist": "beta", "a": 2, "b": 3},
        {"dist": "uniform", "low": 0, "high": 1},
        {"dist": "triangular", "low": 0, "mode": 0.5, "high": 1},
        {"dist": "empirical", "values": [0.0, 0.4, 1.0]},
        0.5,
    ],
    ids=["beta", "uniform", "triangular", "empirical", "fixed"],
)
def test_unit_dist_accepts_specs_within_unit_interval(spec: object) -> None:
    """Beta and other bounded specs inside [0, 1] are valid shares."""
    dist = UNIT.validate_python(spec)
    assert 0 <= dist.lower <= dist.upper <= 1
