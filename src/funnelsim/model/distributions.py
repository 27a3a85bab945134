"""Tagged distribution specs: how a scenario says "this duration varies".

A scenario never names a sampling function; it writes a small table such as
``cycle_days = {dist = "lognormal", mean = 60, sd = 35}`` and this module turns it
into a validated, frozen spec that

* samples in numpy batches (``spec.sample(rng, size)``), never one call per event,
* knows its analytic ``mean`` and ``variance`` (tests hold samples against them, the
  planner uses the means for its waterfall),
* knows the lower end of its support, so a duration can refuse a spec that could
  go negative,
* knows its survival function ``S(t) = P(X > t)`` and samples the time still to go
  of something that has already lasted ``a``: ``X - a | X > a`` by the inverse of the
  conditional survival, ``X = S^{-1}(U * S(a))`` with ``U`` uniform on (0, 1] (the
  deals already open when a run starts, :meth:`~_Spec.remaining_after`). Continuous
  families use their ``scipy.stats`` counterpart (``sf`` / ``isf``, accurate far in
  the tail); ``fixed`` and ``empirical`` are exact.

A bare number is shorthand for ``{dist = "fixed", value = number}``.

Parametrisations (all by the quantities a planner knows, not by the textbook ones):

============  ==========================  ======================================
dist          keys                        mean, variance
============  ==========================  ======================================
fixed         value                       v, 0
exponential   mean                        m, m^2
lognormal     mean, sd                    m, sd^2  (sigma^2 = ln(1 + sd^2/m^2))
gamma         mean, sd                    m, sd^2  (shape k = m^2/sd^2)
weibull       shape, scale                scale*G(1+1/k), scale^2*(G(1+2/k)-G(1+1/k)^2)
uniform       low, high                   (l+h)/2, (h-l)^2/12
triangular    low, mode, high             (l+m+h)/3, (l^2+m^2+h^2-lm-lh-mh)/18
beta          a, b  (on [0, 1])           a/(a+b), ab/((a+b)^2 (a+b+1))
empirical     values (observed list)      sample mean, population variance
============  ==========================  ======================================

One more family is not written by hand: ``products``, the value of a deal built from a
price list (:class:`Bundle`, ``sales.products`` in a scenario). Each product ``i`` is
in the deal with probability ``a_i`` (independently), ``Q_i`` units at ``p_i`` each::

    X = sum_i B_i p_i Q_i,   B_i ~ Bernoulli(a_i)
    E[X] = sum_i a_i p_i E[Q_i]
    Var[X] = sum_i a_i p_i^2 (Var[Q_i] + E[Q_i]^2) - a_i^2 p_i^2 E[Q_i]^2
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from scipy.stats._distn_infrastructure import rv_continuous_frozen

__all__ = [
    "Beta",
    "Bundle",
    "BundleItem",
    "DealSize",
    "Dist",
    "Empirical",
    "Exponential",
    "Fixed",
    "Gamma",
    "LogNormal",
    "NonNegativeDist",
    "Spec",
    "Triangular",
    "Uniform",
    "UnitDist",
    "Weibull",
]

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    dist: str

    @property
    def mean(self) -> float:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    @property
    def variance(self) -> float:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    @property
    def lower(self) -> float:
        """Smallest value the distribution can produce."""
        return 0.0

    @property
    def upper(self) -> float:
        """Largest value the distribution can produce."""
        return math.inf

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def scipy(self) -> rv_continuous_frozen:  # pragma: no cover - every continuous family overrides
        """The same distribution as a frozen ``scipy.stats`` object (same parametrisation as :meth:`sample`)."""
        raise NotImplementedError(f"{self.dist} has no scipy.stats counterpart")

    def survival(self, t: np.ndarray | float) -> np.ndarray:
        """``S(t) = P(X > t)``."""
        return np.asarray(self.scipy().sf(np.asarray(t, dtype=float)), dtype=float)

    def remaining_after(self, age: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Time still to go of things that have lasted ``age`` already: ``X - a`` given ``X > a``.

        .. math:: X = S^{-1}\\big(u \\, S(a)\\big), \\qquad u \\in (0, 1]

        is distributed as ``X | X > a`` when ``u`` is uniform on (0, 1] (inverse
        transform of the conditional survival ``S(x) / S(a)``); ``u = 1`` gives 0.
        Where ``S(a) = 0`` (an age the distribution cannot reach) the result is 0.

        Parameters
        ----------
        age
            Ages ``a >= 0``, one per item.
        u
            Uniform draws on (0, 1], one per item (``1 - rng.random(n)``).
        """
        age = np.asarray(age, dtype=float)
        dist = self.scipy()
        left = np.asarray(dist.sf(age), dtype=float)
        # u * S(a) may underflow to 0 far in the tail, where isf(0) is infinite.
        target = np.maximum(np.asarray(u, dtype=float) * left, np.finfo(float).tiny)
        total = np.asarray(dist.isf(target), dtype=float)
        return np.where(left > 0, np.maximum(total - age, 0.0), 0.0)


class Fixed(_Spec):
    dist: Literal["fixed"] = "fixed"
    value: FiniteFloat

    @property
    def mean(self) -> float:
        return self.value

    @property
    def variance(self) -> float:
        return 0.0

    @property
    def lower(self) -> float:
        return self.value

    @property
    def upper(self) -> float:
        return self.value

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, self.value)

    def survival(self, t: np.ndarray | float) -> np.ndarray:
        return np.where(np.asarray(t, dtype=float) < self.value, 1.0, 0.0)

    def remaining_after(self, age: np.ndarray, u: np.ndarray) -> np.ndarray:
        return np.maximum(self.value - np.asarray(age, dtype=float), 0.0)


class Exponential(_Spec):
    dist: Literal["exponential"] = "exponential"
    mean_: Positive = Field(alias="mean")

    model_config = ConfigDict(populate_by_name=True)

    @property
    def mean(self) -> float:
        return self.mean_

    @property
    def variance(self) -> float:
        return self.mean_**2

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.exponential(self.mean_, size)

    def scipy(self) -> rv_continuous_frozen:
        from scipy import stats

        return stats.expon(scale=self.mean_)


class LogNormal(_Spec):
    dist: Literal["lognormal"] = "lognormal"
    mean_: Positive = Field(alias="mean")
    sd: NonNegative

    model_config = ConfigDict(populate_by_name=True)

    @property
    def mean(self) -> float:
        return self.mean_

    @property
    def variance(self) -> float:
        return self.sd**2

    @property
    def lower(self) -> float:
        return self.mean_ if self.sd == 0 else 0.0

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        sigma2 = math.log1p((self.sd / self.mean_) ** 2)
        mu = math.log(self.mean_) - sigma2 / 2
        # rng.lognormal(mu, sigma, size) is exp(mu + sigma * z) element by element with
        # the C library's exp; the same sums through numpy's vectorised exp are the same
        # draws (to an ulp: numpy picks its exp kernel by CPU; tests/test_distributions.py)
        # at two thirds the cost.
        z = rng.standard_normal(size)
        z *= math.sqrt(sigma2)
        z += mu
        return np.exp(z, out=z)

    def scipy(self) -> rv_continuous_frozen:
        from scipy import stats

        sigma2 = math.log1p((self.sd / self.mean_) ** 2)
        return stats.lognorm(s=math.sqrt(sigma2), scale=math.exp(math.log(self.mean_) - sigma2 / 2))

    def survival(self, t: np.ndarray | float) -> np.ndarray:
        if self.sd == 0:
            return Fixed(value=self.mean_).survival(t)
        return super().survival(t)

    def remaining_after(self, age: np.ndarray, u: np.ndarray) -> np.ndarray:
        if self.sd == 0:  # scipy's lognorm needs s > 0
            return Fixed(value=self.mean_).remaining_after(age, u)
        return super().remaining_after(age, u)


class Gamma(_Spec):
    dist: Literal["gamma"] = "gamma"
    mean_: Positive = Field(alias="mean")
    sd: Positive

    model_config = ConfigDict(populate_by_name=True)

    @property
    def mean(self) -> float:
        return self.mean_

    @property
    def variance(self) -> float:
        return self.sd**2

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        shape = (self.mean_ / self.sd) ** 2
        return rng.gamma(shape, self.mean_ / shape, size)

    def scipy(self) -> rv_continuous_frozen:
        from scipy import stats

        shape = (self.mean_ / self.sd) ** 2
        return stats.gamma(a=shape, scale=self.mean_ / shape)


class Weibull(_Spec):
    dist: Literal["weibull"] = "weibull"
    shape: Positive
    scale: Positive

    @property
    def mean(self) -> float:
        return self.scale * math.gamma(1 + 1 / self.shape)

    @property
    def variance(self) -> float:
        g1 = math.gamma(1 + 1 / self.shape)
        return self.scale**2 * (math.gamma(1 + 2 / self.shape) - g1**2)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.scale * rng.weibull(self.shape, size)

    def scipy(self) -> rv_continuous_frozen:
        from scipy import stats

        return stats.weibull_min(c=self.shape, scale=self.scale)


class Uniform(_Spec):
    dist: Literal["uniform"] = "uniform"
    low: FiniteFloat
    high: FiniteFloat

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError(f"high must be >= low, got low={self.low}, high={self.high}")
        return self

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    @property
    def variance(self) -> float:
        return (self.high - self.low) ** 2 / 12

    @property
    def lower(self) -> float:
        return self.low

    @property
    def upper(self) -> float:
        return self.high

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size)

    def scipy(self) -> rv_continuous_frozen:
        from scipy import stats

        return stats.uniform(loc=self.low, scale=self.high - self.low)

    def survival(self, t: np.ndarray | float) -> np.ndarray:
        if self.high == self.low:
            return Fixed(value=self.low).survival(t)
        return super().survival(t)

    def remaining_after(self, age: np.ndarray, u: np.ndarray) -> np.ndarray:
        if self.high == self.low:  # a point mass: scipy's uniform needs a width
            return Fixed(value=self.low).remaining_after(age, u)
        return super().remaining_after(age, u)


class Triangular(_Spec):
    dist: Literal["triangular"] = "triangular"
    low: FiniteFloat
    mode: FiniteFloat
    high: FiniteFloat

    @model_validator(mode="after")
    def _ordered(self) -> Triangular:
        if not self.low <= self.mode <= self.high or self.low == self.high:
            raise ValueError(
                f"needs low <= mode <= high and low < high, got low={self.low}, mode={self.mode}, high={self.high}"
            )
        return self

    @property
    def mean(self) -> float:
        return (self.low + self.mode + self.high) / 3

    @property
    def variance(self) -> float:
        a, c, b = self.low, self.mode, self.high
        return (a * a + b * b + c * c - a * b - a * c - b * c) / 18

    @property
    def lower(self) -> float:
        return self.low

    @property
    def upper(self) -> float:
        return self.high

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.triangular(self.low, self.mode, self.high, size)

    def scipy(self) -> rv_continuous_frozen:
        from scipy import stats

        width = self.high - self.low
        return stats.triang(c=(self.mode - self.low) / width, loc=self.low, scale=width)


class Beta(_Spec):
    dist: Literal["beta"] = "beta"
    a: Positive
    b: Positive

    @property
    def mean(self) -> float:
        return self.a / (self.a + self.b)

    @property
    def variance(self) -> float:
        s = self.a + self.b
        return self.a * self.b / (s * s * (s + 1))

    @property
    def upper(self) -> float:
        return 1.0

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.beta(self.a, self.b, size)

    def scipy(self) -> rv_continuous_frozen:
        from scipy import stats

        return stats.beta(self.a, self.b)


class Empirical(_Spec):
    """Resample observed values with replacement (e.g. last year's cycle times)."""

    dist: Literal["empirical"] = "empirical"
    values: Annotated[list[FiniteFloat], Field(min_length=1)]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def variance(self) -> float:
        return float(np.var(self.values))

    @property
    def lower(self) -> float:
        return min(self.values)

    @property
    def upper(self) -> float:
        return max(self.values)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.choice(np.asarray(self.values, dtype=float), size)

    def survival(self, t: np.ndarray | float) -> np.ndarray:
        values = np.sort(np.asarray(self.values, dtype=float))
        return 1.0 - np.searchsorted(values, np.asarray(t, dtype=float), side="right") / len(values)

    def remaining_after(self, age: np.ndarray, u: np.ndarray) -> np.ndarray:
        # X | X > a is uniform over the observed values above a: value number
        # ceil(u * k) - 1 of those k values, in increasing order.
        values = np.sort(np.asarray(self.values, dtype=float))
        age = np.asarray(age, dtype=float)
        first = np.searchsorted(values, age, side="right")
        above = len(values) - first
        pick = first + np.clip(np.ceil(np.asarray(u, dtype=float) * above).astype(np.int64) - 1, 0, None)
        total = values[np.minimum(pick, len(values) - 1)]
        return np.where(above > 0, total - age, 0.0)


def _number_is_fixed(value: Any) -> Any:
    # A bare number in a scenario file means "always this value".
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"dist": "fixed", "value": value}
    return value


# The common base of every family: isinstance(x, Spec) tells a distribution from a number.
Spec = _Spec

Dist = Annotated[
    Fixed | Exponential | LogNormal | Gamma | Weibull | Uniform | Triangular | Beta | Empirical,
    Field(discriminator="dist"),
    BeforeValidator(_number_is_fixed),
]
"""Any distribution spec; the ``dist`` key selects the family."""


def _check_nonnegative(spec: _Spec) -> _Spec:
    if spec.lower < 0:
        raise ValueError(f"a duration or amount cannot be negative; this {spec.dist} can reach {spec.lower:g}")
    return spec


def check_unit(spec: _Spec) -> _Spec:
    if spec.lower < 0 or spec.upper > 1:
        raise ValueError(f"must stay within [0, 1]; this {spec.dist} spans [{spec.lower:g}, {spec.upper:g}]")
    return spec


# Field types for scenario models: a spec whose support is checked on load.
NonNegativeDist = Annotated[Dist, AfterValidator(_check_nonnegative)]
UnitDist = Annotated[Dist, AfterValidator(check_unit)]


class BundleItem(BaseModel):
    """One product of a :class:`Bundle`: in a deal with probability ``attach``, ``quantity`` units at ``price``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    product: str
    price: NonNegative
    attach: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
    quantity: NonNegativeDist


class Bundle(_Spec):
    """A deal's value from a price list: ``sum_i B_i * price_i * Q_i`` with ``B_i ~ Bernoulli(attach_i)``.

    Built from ``sales.products`` and the scenario's price list when the scenario is
    loaded (a scenario file never writes it). A deal that includes no product is worth 0.
    Sampling draws, product by product in the listed order, ``size`` uniforms (attach)
    and then ``size`` quantities from the one generator it is given, so a deal's value
    comes from the same stream as any other deal size.
    """

    dist: Literal["products"] = "products"
    items: list[BundleItem]

    @property
    def mean(self) -> float:
        return float(sum(i.attach * i.price * i.quantity.mean for i in self.items))

    @property
    def variance(self) -> float:
        total = 0.0
        for i in self.items:
            q2 = i.quantity.variance + i.quantity.mean**2  # E[Q^2]
            total += i.attach * i.price**2 * q2 - (i.attach * i.price * i.quantity.mean) ** 2
        return float(total)

    @property
    def lower(self) -> float:
        return float(sum(i.price * i.quantity.lower for i in self.items if i.attach >= 1))

    @property
    def upper(self) -> float:
        return float(sum(i.price * i.quantity.upper for i in self.items if i.attach > 0 and i.price > 0))

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        total = np.zeros(size)
        for i in self.items:
            attached = rng.random(size) < i.attach
            units = i.quantity.sample(rng, size)
            total += np.where(attached, i.price * units, 0.0)
        return total


DealSize = Annotated[
    Fixed | Exponential | LogNormal | Gamma | Weibull | Uniform | Triangular | Beta | Empirical | Bundle,
    Field(discriminator="dist"),
    BeforeValidator(_number_is_fixed),
    AfterValidator(_check_nonnegative),
]
"""The value of a won deal: any non-negative distribution, or a :class:`Bundle` built from a price list."""
