r"""Fitting scenario parameters to cleaned CRM tables: pure functions of arrays and frames.

Sales cycle with open deals (right-censoring)
    A deal closed after ``t_i`` days contributes its density, a deal still open after
    ``c_j`` days only the chance of lasting that long (the survival ``S = 1 - F``):

    .. math:: \ell(\theta) = \sum_{i\,\in\,\text{closed}} \log f(t_i;\theta)
              + \sum_{j\,\in\,\text{open}} \log S(c_j;\theta).

    Dropping the open deals instead keeps only the quick ones among recent deals and
    biases the cycle short. Lognormal, gamma and Weibull are fitted by maximising
    :math:`\ell` (on log parameters, Nelder-Mead then BFGS) and compared by
    :math:`\mathrm{AIC} = 2k - 2\ell` (all have ``k = 2``, so the largest likelihood wins).
    Confidence intervals of the mean and median are by the **delta method**: with
    :math:`H` the Hessian of :math:`-\ell` at the optimum (central differences),
    :math:`\mathrm{Var}\,g(\hat\theta) \approx \nabla g^\top H^{-1} \nabla g`, computed for
    :math:`\log g` so the interval stays positive.

Kaplan-Meier
    :math:`\hat S(t) = \prod_{t_k \le t} (1 - d_k / n_k)` with ``d_k`` closes at ``t_k`` and
    ``n_k`` deals still open just before (``scipy.stats.ecdf`` on ``CensoredData``).

Win rate with competing risks (Aalen-Johansen)
    A deal ends won or lost; open deals are censored. The cumulative incidence of a win is

    .. math:: \mathrm{CIF}_w(t) = \sum_{t_k \le t} \hat S(t_k^-)\, \frac{d^w_k}{n_k},

    with :math:`\hat S` the Kaplan-Meier survival of "still open". The win probability is
    :math:`\mathrm{CIF}_w(\tau)` at the last close :math:`\tau`; it is exact when
    :math:`\hat S(\tau) \approx 0` and otherwise a lower bound, the upper being
    :math:`\mathrm{CIF}_w(\tau) + \hat S(\tau)` (reported). The naive ``won / (won + lost)``
    counts only closed deals and is biased when wins and losses take different times (e.g. losses
    linger): both are reported.
    Its 95% interval is a percentile bootstrap over deals (fixed seed, ``B = 400`` resamples);
    see :func:`win_rate` for its Monte Carlo error and the subsampling of large exports.

Deal size
    Lognormal by maximum likelihood: :math:`\hat\mu, \hat\sigma` the mean and sd of
    :math:`\log x`; mean :math:`e^{\mu + \sigma^2/2}`, sd :math:`m\sqrt{e^{\sigma^2} - 1}`;
    the mean's interval by the delta method with :math:`\mathrm{Var}\,\hat\mu = \sigma^2/n`,
    :math:`\mathrm{Var}\,\hat\sigma = \sigma^2/(2n)`.

Time in each stage (stage history)
    A deal's stage history is a sequence of spells; a spell ends when the stage changes
    (repeated rows with the same stage, e.g. amount edits, continue it). A spell that ended
    is an observed duration, the spell a deal is in at the as-of date is right-censored at
    its age. Per stage: the Kaplan-Meier median (the first :math:`t` with
    :math:`\hat S(t) \le 1/2`; undefined while more than half the spells are open), the
    restricted mean :math:`\int_0^{t_{max}} \hat S(t)\,dt` up to the longest spell seen (a
    lower bound of the mean when the longest is open), and the naive mean of ended spells only.

Conversions
    ``s`` of ``n`` passed a stage: :math:`p \sim \mathrm{Beta}(s + 1, n - s + 1)` (uniform
    prior), which the scenario draws once per replication.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from funnelsim.calibrate.readers import normalise_label

__all__ = [
    "CycleFit",
    "aalen_johansen",
    "arrivals_by_month",
    "beta_conversion",
    "concurrency",
    "empirical_sizes",
    "equal_mass_means",
    "fit_cycle",
    "fit_for_win_probability",
    "fit_lognormal_sizes",
    "kaplan_meier",
    "stage_durations",
    "win_rate",
]

Z95 = float(stats.norm.ppf(0.975))
DAYS_PER_MONTH = 365.25 / 12


# --- sales cycle ---------------------------------------------------------------------------


_LOG_SQRT_2PI = float(np.log(np.sqrt(2 * np.pi)))


# scipy.stats.norm's logpdf and logsf (its formulas, in its order) without its argument checks
def _lognormal_logpdf(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    mu, sigma = p[0], math.exp(p[1])
    logs = np.log(t)
    x = (logs - mu) / sigma
    return np.asarray((-(x**2) / 2.0 - _LOG_SQRT_2PI) - np.log(sigma) - logs)


def _lognormal_logsf(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    x = (np.log(t) - p[0]) / math.exp(p[1])
    return np.asarray(special.log_ndtr(-x))


def _gamma(p: np.ndarray) -> Any:
    return stats.gamma(math.exp(p[0]), scale=math.exp(p[1]))


def _weibull(p: np.ndarray) -> Any:
    return stats.weibull_min(math.exp(p[0]), scale=math.exp(p[1]))


def _lognormal(p: np.ndarray) -> Any:
    return stats.lognorm(math.exp(p[1]), scale=math.exp(p[0]))


@dataclass(frozen=True)
class _Family:
    name: str
    frozen: Callable[[np.ndarray], Any]  # log parameters -> frozen scipy distribution
    names: tuple[str, str]  # the natural parameters reported
    natural: Callable[[np.ndarray], tuple[float, float]]
    start: Callable[[np.ndarray], np.ndarray]


def _lognormal_start(t: np.ndarray) -> np.ndarray:
    logs = np.log(t)
    return np.array([logs.mean(), math.log(max(logs.std(), 0.05))])


def _gamma_start(t: np.ndarray) -> np.ndarray:
    m, v = t.mean(), max(t.var(), 1e-6)
    return np.array([math.log(m * m / v), math.log(v / m)])


def _weibull_start(t: np.ndarray) -> np.ndarray:
    return np.array([math.log(1.2), math.log(t.mean())])


FAMILIES = {
    "lognormal": _Family(
        "lognormal", _lognormal, ("mu", "sigma"), lambda p: (float(p[0]), math.exp(p[1])), _lognormal_start
    ),
    "gamma": _Family("gamma", _gamma, ("shape", "scale"), lambda p: (math.exp(p[0]), math.exp(p[1])), _gamma_start),
    "weibull": _Family(
        "weibull", _weibull, ("shape", "scale"), lambda p: (math.exp(p[0]), math.exp(p[1])), _weibull_start
    ),
}


@dataclass
class CycleFit:
    """One family fitted to the (censored) cycle times."""

    family: str
    params: np.ndarray  # log-scale parameters (see FAMILIES)
    loglik: float
    aic: float
    n_closed: int
    n_open: int
    mean: float
    mean_ci: tuple[float, float]
    median: float
    median_ci: tuple[float, float]
    natural: dict[str, float] = field(default_factory=dict)

    @property
    def dist(self) -> Any:
        return FAMILIES[self.family].frozen(self.params)

    def spec(self) -> dict[str, Any]:
        """The scenario's distribution table for this fit (``distributions.py`` parametrisation)."""
        d = self.dist
        if self.family == "weibull":
            return {"dist": "weibull", "shape": _round(self.natural["shape"]), "scale": _round(self.natural["scale"])}
        return {"dist": self.family, "mean": _round(float(d.mean())), "sd": _round(float(d.std()))}


def _round(x: float) -> float:
    return float(f"{x:.5g}")


def censored_loglik(family: str, params: np.ndarray, closed: np.ndarray, open_: np.ndarray) -> float:
    """:math:`\\sum \\log f(t_i) + \\sum \\log S(c_j)` for one family at log-parameters ``params``.

    Written out with scipy's own formulas (``stats.gamma._logpdf`` and so on) rather than through a
    frozen distribution, whose argument checks cost more than the sums on a million deals; the
    optimisers call this some 200 times per family.
    """
    if family == "lognormal":  # the common case, written out for speed and accuracy in the tails
        return float(_lognormal_logpdf(closed, params).sum() + _lognormal_logsf(open_, params).sum())
    shape, scale = math.exp(params[0]), math.exp(params[1])
    z, c = closed / scale, open_ / scale
    if family == "gamma":
        logpdf = special.xlogy(shape - 1, z) - z - special.gammaln(shape) - math.log(scale)
        with np.errstate(divide="ignore"):  # S = 0 far in the tail: -inf, as scipy gives
            logsf = np.log(special.gammaincc(shape, c))
    elif family == "weibull":
        logpdf = math.log(shape) + special.xlogy(shape - 1, z) - np.power(z, shape) - math.log(scale)
        logsf = -np.power(c, shape)
    else:
        d = FAMILIES[family].frozen(params)
        return float(np.sum(d.logpdf(closed)) + np.sum(d.logsf(open_)))
    return float(np.sum(logpdf) + np.sum(logsf))


def _hessian(f: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    n = len(x)
    h = 1e-4 * np.maximum(1.0, np.abs(x))
    out = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.eye(n)[i] * h[i], np.eye(n)[j] * h[j]
            value = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h[i] * h[j])
            out[i, j] = out[j, i] = value
    return out


def _delta_ci(g: Callable[[np.ndarray], float], x: np.ndarray, cov: np.ndarray) -> tuple[float, float]:
    """95% interval of positive g(x) by the delta method on log g."""
    value = g(x)
    h = 1e-5 * np.maximum(1.0, np.abs(x))
    grad = np.array([(math.log(g(x + e)) - math.log(g(x - e))) / (2 * e[i]) for i, e in enumerate(np.diag(h))])
    se = math.sqrt(max(float(grad @ cov @ grad), 0.0))
    return value * math.exp(-Z95 * se), value * math.exp(Z95 * se)


def fit_cycle(closed: np.ndarray, open_: np.ndarray, family: str) -> CycleFit:
    """Maximum-likelihood fit of ``family`` to closed cycle times and open (censored) ages, in days.

    Durations must be > 0 (the caller turns same-day closes into half a day).
    """
    closed = np.asarray(closed, dtype=float)
    open_ = np.asarray(open_, dtype=float)
    if len(closed) < 2:
        raise ValueError(f"need at least 2 closed deals to fit a cycle time, got {len(closed)}")
    fam = FAMILIES[family]

    def nll(p: np.ndarray) -> float:
        value = -censored_loglik(family, p, closed, open_)
        return value if math.isfinite(value) else 1e300

    start = fam.start(np.concatenate([closed, open_]))
    first = optimize.minimize(nll, start, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10})
    best = optimize.minimize(nll, first.x, method="BFGS")
    x = best.x if best.fun <= first.fun else first.x
    loglik = -nll(x)
    cov = np.linalg.pinv(_hessian(nll, x))
    d_mean: Callable[[np.ndarray], float] = lambda p: float(fam.frozen(p).mean())  # noqa: E731
    d_median: Callable[[np.ndarray], float] = lambda p: float(fam.frozen(p).median())  # noqa: E731
    natural = dict(zip(fam.names, fam.natural(x), strict=True))
    return CycleFit(
        family=family,
        params=x,
        loglik=loglik,
        aic=2 * len(x) - 2 * loglik,
        n_closed=len(closed),
        n_open=len(open_),
        mean=d_mean(x),
        mean_ci=_delta_ci(d_mean, x, cov),
        median=d_median(x),
        median_ci=_delta_ci(d_median, x, cov),
        natural=natural,
    )


def fit_cycles(closed: np.ndarray, open_: np.ndarray) -> list[CycleFit]:
    """All three families, best AIC first."""
    return sorted((fit_cycle(closed, open_, f) for f in FAMILIES), key=lambda f: f.aic)


def kaplan_meier(closed: np.ndarray, open_: np.ndarray) -> pd.DataFrame:
    """Kaplan-Meier survival of "still open" with its 95% pointwise interval (Greenwood, log-log).

    Columns: ``days, km_sf, km_ci_low, km_ci_high`` at each distinct close time.
    """
    data = stats.CensoredData(uncensored=np.asarray(closed, float), right=np.asarray(open_, float))
    sf = stats.ecdf(data).sf
    with warnings.catch_warnings():  # undefined where S = 0 or 1; those ends are filled in below
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = sf.confidence_interval(0.95, method="log-log")
    return pd.DataFrame(
        {
            "days": sf.quantiles,
            "km_sf": sf.probabilities,
            "km_ci_low": np.nan_to_num(ci.low.probabilities, nan=0.0),
            "km_ci_high": np.nan_to_num(ci.high.probabilities, nan=1.0),
        }
    )


# --- win rate -----------------------------------------------------------------------------


def aalen_johansen(days: np.ndarray, outcome: np.ndarray) -> pd.DataFrame:
    """Cumulative incidence of won and lost over time (``outcome`` in won/lost/open).

    Columns: ``days, at_risk, won, lost, open_sf, cif_won, cif_lost`` at each distinct close time.
    """
    days = np.asarray(days, float)
    outcome = np.asarray(outcome)
    order = np.argsort(days, kind="stable")
    days, outcome = days[order], outcome[order]
    closes = outcome != "open"
    times = np.unique(days[closes])
    # deals still open just before t: those whose time (close or censoring) is >= t
    at_risk = len(days) - np.searchsorted(days, times, side="left")
    won = np.bincount(np.searchsorted(times, days[outcome == "won"]), minlength=len(times))[: len(times)]
    lost = np.bincount(np.searchsorted(times, days[outcome == "lost"]), minlength=len(times))[: len(times)]
    hazard = (won + lost) / at_risk
    sf = np.cumprod(1 - hazard)
    before = np.concatenate([[1.0], sf[:-1]])
    return pd.DataFrame(
        {
            "days": times,
            "at_risk": at_risk,
            "won": won,
            "lost": lost,
            "open_sf": sf,
            "cif_won": np.cumsum(before * won / at_risk),
            "cif_lost": np.cumsum(before * lost / at_risk),
        }
    )


def _eventual_win(days: np.ndarray, outcome: np.ndarray) -> tuple[float, float, float]:
    table = aalen_johansen(days, outcome)
    if table.empty:
        return math.nan, math.nan, math.nan
    last = table.iloc[-1]
    return float(last["cif_won"]), float(last["cif_won"]), float(last["open_sf"])


BOOT_MAX_DEALS = 50_000
"""Above this many deals the win-rate bootstrap resamples this many (m-out-of-n), see :func:`win_rate`."""
_BOOT_CELLS = 4_000_000  # resampled deals drawn at once: bounds the bootstrap's memory (32 MB of indices)


def _time_cells(days: np.ndarray, outcome: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each deal's rank among the distinct times, and its won / lost flags: all a resample needs."""
    _, cell = np.unique(days, return_inverse=True)
    return cell.ravel(), outcome == "won", outcome == "lost"


def _resampled_win(cell: np.ndarray, won: np.ndarray, lost: np.ndarray, idx: np.ndarray) -> float:
    """:func:`aalen_johansen`'s eventual win probability of the deals ``idx`` (drawn with replacement).

    The same sums in the same order as :func:`aalen_johansen` (bit for bit), on counts per distinct
    time instead of a sorted table, so one resample costs two ``bincount`` and no sort.
    """
    c = cell[idx]
    size = int(c.max()) + 1 if len(c) else 0
    if size > 4 * len(c):  # few deals on a wide grid (m-out-of-n): renumber the times they hold
        _, c = np.unique(c, return_inverse=True)
        size = int(c.max()) + 1
    w = np.bincount(c[won[idx]], minlength=size)
    lo = np.bincount(c[lost[idx]], minlength=size)
    everyone = np.bincount(c, minlength=size)
    at_risk = len(c) - np.concatenate([[0], np.cumsum(everyone)[:-1]])  # deals with time >= t
    closes = (w + lo) > 0
    if not closes.any():
        return math.nan
    w, lo, at_risk = w[closes], lo[closes], at_risk[closes]
    sf = np.cumprod(1 - (w + lo) / at_risk)
    before = np.concatenate([[1.0], sf[:-1]])
    return float(np.cumsum(before * w / at_risk)[-1])


def win_rate(
    days: np.ndarray, outcome: np.ndarray, boot: int = 400, seed: int = 0, max_deals: int = BOOT_MAX_DEALS
) -> dict[str, float]:
    r"""Win probability by competing risks, with a bootstrap interval, and the naive closed-only rate.

    Keys: ``competing_risks`` (eventual win probability), ``ci_low``, ``ci_high``, ``cif_won_at_end``,
    ``open_sf_at_end``, ``naive`` (won / (won + lost)), ``naive_ci_low/high`` (Wilson), ``won``,
    ``lost``, ``open``, ``n_eff`` (the Beta effective size matching the bootstrap variance), ``boot_deals``
    (deals per resample).

    Notes
    -----
    The interval is a percentile bootstrap of ``boot`` resamples of the deals; the estimate itself
    always uses every deal. With ``n`` deals up to ``max_deals`` each resample draws ``n`` deals
    (the classical bootstrap; the same draws, and results, as resampling a table per deal). With
    more, each resample draws ``m = max_deals`` deals and its deviation from the estimate is scaled
    by :math:`\sqrt{m/n}` (the m-out-of-n bootstrap: the estimator is asymptotically normal with a
    spread shrinking as :math:`1/\sqrt n`), so the work and memory stay those of ``m`` deals
    whatever the size of the export.

    Monte Carlo error (from the finite ``boot``, on top of the sampling error the interval
    describes): each end of the 95% interval has a standard error of about
    :math:`\sqrt{0.025 \cdot 0.975 / B} / \varphi(1.96) \approx 0.13` standard errors of the
    estimate at ``B = 400``, and the bootstrap variance (hence ``n_eff``) a relative standard error
    of :math:`\sqrt{2/(B-1)} \approx 7\%`. Subsampling adds none of its own at this order; its
    scaling is exact to :math:`O(1/m)` in the variance, under 0.01% at ``m = 50,000``.
    """
    days = np.asarray(days, float)
    outcome = np.asarray(outcome)
    estimate, cif_end, sf_end = _eventual_win(days, outcome)
    rng = np.random.default_rng(seed)
    n = len(days)
    m = min(n, max_deals)
    cell, won_flag, lost_flag = _time_cells(days, outcome)
    draws_list: list[float] = []
    per_chunk = max(1, _BOOT_CELLS // max(m, 1))
    for first in range(0, boot if n else 0, per_chunk):
        # one (chunk, m) block at a time: the same stream of draws as one (boot, m) block, in bounded memory
        for idx in rng.integers(0, n, size=(min(per_chunk, boot - first), m)):
            draws_list.append(_resampled_win(cell, won_flag, lost_flag, idx))
    draws = np.array(draws_list, dtype=float)
    draws = draws[np.isfinite(draws)]
    if m < n and math.isfinite(estimate):
        draws = estimate + (draws - estimate) * math.sqrt(m / n)
    won, lost = int((outcome == "won").sum()), int((outcome == "lost").sum())
    naive = won / (won + lost) if won + lost else math.nan
    lo, hi = _wilson(won, won + lost)
    var = float(draws.var(ddof=1)) if len(draws) > 1 else math.nan
    n_eff = estimate * (1 - estimate) / var - 1 if var and var > 0 else math.nan
    return {
        "competing_risks": estimate,
        "ci_low": float(np.quantile(draws, 0.025)) if len(draws) else math.nan,
        "ci_high": float(np.quantile(draws, 0.975)) if len(draws) else math.nan,
        "cif_won_at_end": cif_end,
        "open_sf_at_end": sf_end,
        "naive": naive,
        "naive_ci_low": lo,
        "naive_ci_high": hi,
        "won": won,
        "lost": lost,
        "open": int((outcome == "open").sum()),
        "n_eff": n_eff,
        "boot_deals": m,
    }


def _wilson(hits: int, n: int) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = hits / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return centre - half, centre + half


def intercept_for_average(target: float, fit_effect: float, fits: np.ndarray) -> float:
    """Win rate at fit 0.5 whose average over ``fits`` is ``target``.

    Solves :math:`\\frac1n\\sum_i \\operatorname{expit}(\\operatorname{logit} w + \\beta (f_i - 0.5)) = p`
    for ``w`` (monotone in ``w``, so a bracketing root finder is exact).
    """
    fits = np.asarray(fits, float)
    if not 0 < target < 1 or fit_effect == 0 or len(fits) == 0:
        return target
    shift = fit_effect * (fits - 0.5)

    def gap(logit: float) -> float:
        return float(special.expit(logit + shift).mean() - target)

    return float(special.expit(optimize.brentq(gap, -30, 30)))


def fit_for_win_probability(target: float, win_rate: float, fit_effect: float) -> float:
    """The fit at which a deal is won with probability ``target``, given the win rate at fit 0.5.

    Inverts :func:`funnelsim.model.mechanisms.win_probability`:
    :math:`f = 0.5 + (\\operatorname{logit} p - \\operatorname{logit} w) / \\beta`, clipped to [0, 1].
    With ``fit_effect`` 0 (or a degenerate rate) fit does not matter and 0.5 is returned.
    """
    if fit_effect == 0 or not (0 < target < 1 and 0 < win_rate < 1):
        return 0.5
    return float(np.clip(0.5 + (special.logit(target) - special.logit(win_rate)) / fit_effect, 0.0, 1.0))


def stage_durations(history: pd.DataFrame, as_of: pd.Timestamp, terminal: set[str]) -> pd.DataFrame:
    """Days spent in each stage, from a stage history with open spells right-censored.

    Parameters
    ----------
    history
        One row per stage change: ``id``, ``date``, ``stage``. Changes on or after ``as_of`` are
        not known yet and are ignored.
    terminal
        Stage labels that end a deal (won/lost), normalised as the readers do (lower case,
        no spaces, underscores or dashes): no time is counted in them.

    Returns
    -------
    DataFrame
        One row per stage, in the order deals pass through them (median position in a deal's
        sequence): ``stage, spells, ended, open, median_days`` (Kaplan-Meier),
        ``median_ci_low, median_ci_high`` (from the log-log band of the curve),
        ``restricted_mean_days``, ``mean_days_ended`` (ended spells only, biased short),
        ``max_days``.
    """
    h = history[history["date"] < as_of].sort_values(["id", "date"], kind="stable")
    spells: list[tuple[str, float, bool, int]] = []  # stage, days, ended, position in the deal
    for _, deal in h.groupby("id", sort=False):
        stage = deal["stage"].to_numpy()
        date = deal["date"].to_numpy()
        starts = np.flatnonzero(np.r_[True, stage[1:] != stage[:-1]])  # a repeated stage continues a spell
        for k, i in enumerate(starts):
            if normalise_label(str(stage[i])) in terminal:
                break  # nothing is counted after a deal closes
            ended = k + 1 < len(starts)
            end = date[starts[k + 1]] if ended else np.datetime64(as_of)
            spells.append((str(stage[i]), (end - date[i]) / np.timedelta64(1, "D"), ended, k))
    columns = [
        "stage",
        "spells",
        "ended",
        "open",
        "median_days",
        "median_ci_low",
        "median_ci_high",
        "restricted_mean_days",
        "mean_days_ended",
        "max_days",
    ]
    if not spells:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(spells, columns=["stage", "days", "ended", "position"])
    rows = []
    for stage, group in frame.groupby("stage", sort=False):
        days = np.maximum(group["days"].to_numpy(float), 0.0)
        ended = group["ended"].to_numpy(bool)
        km = kaplan_meier(days[ended], days[~ended]) if ended.any() else pd.DataFrame()
        rows.append(
            {
                "stage": stage,
                "spells": len(days),
                "ended": int(ended.sum()),
                "open": int((~ended).sum()),
                "median_days": _km_median(km, "km_sf"),
                "median_ci_low": _km_median(km, "km_ci_low"),
                "median_ci_high": _km_median(km, "km_ci_high"),
                "restricted_mean_days": _restricted_mean(km, float(days.max())),
                "mean_days_ended": float(days[ended].mean()) if ended.any() else math.nan,
                "max_days": float(days.max()),
                "_order": float(group["position"].median()),
            }
        )
    out = pd.DataFrame(rows).sort_values("_order", kind="stable").drop(columns="_order")
    return out.reset_index(drop=True)[columns]


def _km_median(km: pd.DataFrame, column: str) -> float:
    """First time the curve is at or below 1/2 (NaN if it never is: more than half still open)."""
    if km.empty:
        return math.nan
    below = km.loc[km[column] <= 0.5, "days"]
    return float(below.iloc[0]) if len(below) else math.nan


def _restricted_mean(km: pd.DataFrame, horizon: float) -> float:
    """Area under the Kaplan-Meier step curve from 0 to ``horizon``."""
    if km.empty:
        return horizon  # no spell ended: every one lasted at least its age
    t = np.r_[0.0, km["days"].to_numpy(float), horizon]
    s = np.r_[1.0, km["km_sf"].to_numpy(float)]
    widths = np.clip(np.diff(t), 0.0, None)
    return float(np.sum(widths * s))


# --- deal size -----------------------------------------------------------------------------


def fit_lognormal_sizes(amounts: np.ndarray) -> dict[str, float]:
    """Lognormal MLE of positive amounts: ``n, mean, sd, mean_ci_low, mean_ci_high, median, mu, sigma``."""
    x = np.asarray(amounts, float)
    x = x[np.isfinite(x) & (x > 0)]
    n = len(x)
    if n < 2:
        return {"n": n, "mean": math.nan, "sd": math.nan, "mean_ci_low": math.nan, "mean_ci_high": math.nan}
    logs = np.log(x)
    mu, sigma = float(logs.mean()), float(logs.std(ddof=0))
    mean = math.exp(mu + sigma**2 / 2)
    # log mean = mu + sigma^2/2: Var = sigma^2/n + sigma^2 * sigma^2/(2n)
    se = math.sqrt(sigma**2 / n + sigma**4 / (2 * n))
    return {
        "n": n,
        "mean": mean,
        "sd": mean * math.sqrt(math.expm1(sigma**2)),
        "mean_ci_low": mean * math.exp(-Z95 * se),
        "mean_ci_high": mean * math.exp(Z95 * se),
        "median": math.exp(mu),
        "mu": mu,
        "sigma": sigma,
        "sample_mean": float(x.mean()),
    }


MAX_SIZE_VALUES = 500
"""Largest number of values an empirical deal size lists in the scenario (see :func:`empirical_sizes`)."""
_BOOT_BATCH_CELLS = 4_000_000  # resampled amounts drawn at once by the mean's bootstrap (32 MB)


def equal_mass_means(sorted_values: np.ndarray, k: int) -> np.ndarray:
    r"""The means of ``k`` slices of equal probability of the empirical distribution of ``sorted_values``.

    Slice ``j`` is the quantile function :math:`Q(p)` of the ``n`` values over
    :math:`p \in [j/k, (j+1)/k]` (a value straddling two slices is shared between them):

    .. math:: m_j = k \int_{j/k}^{(j+1)/k} Q(p)\,dp, \qquad
              \frac1k \sum_j m_j = \int_0^1 Q(p)\,dp = \bar x,

    so resampling the ``k`` means has exactly the sample mean (only the spread within each
    slice is lost: the largest value becomes the mean of the top ``1/k``).
    """
    x = np.asarray(sorted_values, float)
    n = len(x)
    total = np.concatenate([[0.0], np.cumsum(x)])
    pos = np.arange(k + 1) * (n / k)  # slice edges, in values
    whole = np.minimum(np.floor(pos).astype(np.int64), n)
    part = pos - whole
    area = total[whole] + part * x[np.minimum(whole, n - 1)]  # integral of Q up to each edge, times n
    return np.diff(area) * (k / n)


def empirical_sizes(
    amounts: np.ndarray, max_values: int = MAX_SIZE_VALUES, boot: int = 400, seed: int = 0
) -> dict[str, Any]:
    """Deal size as the observed amounts, resampled (a bootstrap of the deals), with the mean's interval.

    Amounts below zero or missing are left out. Up to ``max_values`` amounts the scenario lists
    them all; above, the :func:`equal_mass_means` of ``max_values`` slices, which keep the sample
    mean exactly. The mean's 95% interval is a percentile bootstrap (``scipy.stats.bootstrap``,
    ``boot`` resamples, fixed ``seed``). The lognormal maximum-likelihood mean is returned beside it
    for comparison: on a multimodal price list it can sit far from the sample mean.

    Returns
    -------
    dict
        ``n, values`` (list, rounded to cents), ``support`` (``"observed"`` or ``"equal-mass means"``),
        ``mean`` (the sample mean), ``mean_ci_low, mean_ci_high``, ``median``, ``sd``, ``lognormal_mean``.
    """
    x = np.asarray(amounts, float)
    x = np.sort(x[np.isfinite(x) & (x >= 0)])
    n = len(x)
    if n == 0:
        return {"n": 0, "values": [], "support": "", "mean": math.nan, "mean_ci_low": math.nan,
                "mean_ci_high": math.nan, "median": math.nan, "sd": math.nan, "lognormal_mean": math.nan}  # fmt: skip
    values = x if n <= max_values else equal_mass_means(x, max_values)
    low = high = float(x[0])
    if n > 1 and x[-1] > x[0]:
        ci = stats.bootstrap(
            (x,),
            np.mean,
            n_resamples=boot,
            batch=max(1, _BOOT_BATCH_CELLS // n),
            method="percentile",
            rng=np.random.default_rng(seed),
        ).confidence_interval
        low, high = float(ci.low), float(ci.high)
    positive = x[x > 0]
    return {
        "n": n,
        "values": [round(float(v), 2) for v in values],
        "support": "observed" if n <= max_values else f"{max_values} equal-mass means",
        "mean": float(x.mean()),
        "mean_ci_low": low,
        "mean_ci_high": high,
        "median": float(np.median(x)),
        "sd": float(x.std()),
        "lognormal_mean": fit_lognormal_sizes(positive)["mean"] if len(positive) >= 2 else math.nan,
    }


# --- arrivals ------------------------------------------------------------------------------


def arrivals_by_month(created: pd.Series, first: pd.Timestamp, as_of: pd.Timestamp) -> pd.DataFrame:
    """Arrivals per calendar month between ``first`` and ``as_of``, with the days each month was observed.

    Columns: ``month`` (``YYYY-MM``), ``calendar_month`` (1-12), ``count``, ``days_observed``,
    ``per_month`` (count scaled to a full month: ``count / days_observed * 365.25/12``).
    """
    months = pd.period_range(first.to_period("M"), as_of.to_period("M"), freq="M")
    counts = created.dt.to_period("M").value_counts()
    rows = []
    for m in months:
        lo = max(m.start_time, first.normalize())
        hi = min(m.end_time.normalize() + pd.Timedelta(days=1), as_of.normalize() + pd.Timedelta(days=1))
        days = max((hi - lo).days, 0)
        count = int(counts.get(m, 0))
        rows.append(
            {
                "month": str(m),
                "calendar_month": m.month,
                "count": count,
                "days_observed": days,
                "per_month": count / days * DAYS_PER_MONTH if days else math.nan,
            }
        )
    return pd.DataFrame(rows)


def seasonality(monthly: pd.DataFrame) -> tuple[list[float] | None, str]:
    """Twelve multipliers (January first, mean 1) from at least 12 fully observed months.

    Each calendar month's rate is its arrivals over its observed days; the multipliers are
    those rates over their mean. With fewer than 12 months seen, ``None`` and why.
    """
    full = monthly[monthly["days_observed"] >= 28]
    seen = full["calendar_month"].nunique()
    if len(full) < 12 or seen < 12:
        return None, f"flat: only {len(full)} fully observed month(s), seasonality needs 12"
    per = full.groupby("calendar_month").agg(count=("count", "sum"), days=("days_observed", "sum"))
    rate = per["count"] / per["days"]
    if rate.mean() <= 0:
        return None, "flat: no arrivals"
    mult = rate / rate.mean()
    return [float(f"{v:.3f}") for v in mult.reindex(range(1, 13)).to_numpy()], f"from {len(full)} full months"


# --- conversions ---------------------------------------------------------------------------


def beta_conversion(successes: int, trials: int) -> dict[str, float]:
    """Beta(s+1, n-s+1): ``successes, trials, a, b, mean, ci_low, ci_high, observed``."""
    a, b = successes + 1, trials - successes + 1
    dist = stats.beta(a, b)
    return {
        "successes": successes,
        "trials": trials,
        "a": float(a),
        "b": float(b),
        "mean": float(dist.mean()),
        "ci_low": float(dist.ppf(0.025)),
        "ci_high": float(dist.ppf(0.975)),
        "observed": successes / trials if trials else math.nan,
    }


# --- reps -----------------------------------------------------------------------------------


def concurrency(owner: pd.Series, start_day: np.ndarray, end_day: np.ndarray) -> pd.DataFrame:
    """Open opportunities per rep per day: max and P90 over the days each rep held any.

    ``start_day``/``end_day`` are integer day numbers (a deal is open on days
    ``start <= d < end``). Columns: ``owner, deals, max_open, p90_open``.
    """
    rows = []
    start_day = np.asarray(start_day, int)
    end_day = np.maximum(np.asarray(end_day, int), start_day + 1)
    lo = int(start_day.min()) if len(start_day) else 0
    span = int(end_day.max()) - lo + 1 if len(end_day) else 1
    for name, idx in owner.groupby(owner.to_numpy()).indices.items():
        delta = np.zeros(span + 1)
        np.add.at(delta, start_day[idx] - lo, 1)
        np.add.at(delta, end_day[idx] - lo, -1)
        open_count = np.cumsum(delta)[:span]
        active = open_count[open_count > 0]
        rows.append(
            {
                "owner": str(name),
                "deals": len(idx),
                "max_open": int(open_count.max()),
                "p90_open": float(np.quantile(active, 0.9)) if len(active) else 0.0,
            }
        )
    return pd.DataFrame(rows, columns=["owner", "deals", "max_open", "p90_open"])
