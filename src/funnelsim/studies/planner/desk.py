r"""The SDR desk as a queue: what waiting for an SDR costs the MQLs, day by day.

An SDR desk is a set of servers with one lead each: followed-up MQLs arrive at rate
:math:`\lambda(t)` a day, :math:`c(t)` SDR slots work them for a mean of :math:`1/\mu`
days each (``handoff.sdr.work_days``). Volumes change over months while an SDR's work
takes hours, so each day is taken as a stationary M/M/c queue (the pointwise-stationary
approximation): an MQL finds every SDR busy with the Erlang C probability
:math:`C(c, a)`, :math:`a = \lambda / \mu`, and then waits :math:`W \sim
\text{Exp}(c\mu - \lambda)`. The wait adds to the response delay :math:`D` before the
first call, and the speed-to-lead curve :math:`P_c` falls steeply with it, so the share of
contacts the desk keeps is

.. math:: \text{kept}(t) = \frac{(1 - C)\, E_D P_c(D) + C\, E_{D, W} P_c(D + W)}{E_D P_c(D)}.

A day with :math:`a \ge c` is saturated: :math:`c / a` of the arrivals are worked, after
waits of the order of the SDRs' patience (30 days without one). Fractional slots (ramp,
attrition, averages) interpolate between the whole numbers around them.

A segmented scenario has one desk per segment (its territory), none taking another's MQLs:
:class:`Desks` puts them side by side, each queue on its own, and reads them as one.

The *load factor* :math:`\varphi` scales the flow the desk sees: 1 for the analytic
waterfall's own MQLs. Recycled leads, bursts of MQLs and a warm pipeline load a simulated
desk beyond that flow, so the both-lever search fits :math:`\varphi` to the share of MQLs
that waited in the simulation of today's scenario (:meth:`SDRDesk.fit_load`). Typical
desks run at utilisation 0.4-0.8; below 0.3 hardly anyone waits.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from funnelsim.model.analytic import expected_contact_rate
from funnelsim.model.scenario import Scenario, rate

__all__ = ["LOAD_RANGE", "Desks", "SDRDesk", "erlang_c_days", "sdr_desk"]

LOAD_RANGE = (0.5, 3.0)
"""The load factors :meth:`SDRDesk.fit_load` chooses from."""
_WAITS = np.concatenate([[0.0], np.geomspace(1e-4, 60.0, 48)])  # days: the grid of E_D P_c(D + w)
_WAIT_POINTS = (np.arange(16) + 0.5) / 16  # quantile midpoints of the exponential wait
_NO_PATIENCE_WAIT = 30.0  # days an MQL of a saturated desk waits when SDRs have no patience
_CONTACT: dict[str, np.ndarray] = {}  # E_D P_c(D + w) on _WAITS, by the hand-off's curve and delay (as text)


def erlang_c_days(servers: int, load: np.ndarray) -> np.ndarray:
    """Erlang C ``C(servers, a)`` for every offered load ``a`` of an array (1 where ``a >= servers``).

    The stable recursion of :func:`funnelsim.model.analytic.erlang_b`, one array at a time.
    """
    a = np.asarray(load, dtype=float)
    if servers < 1:
        return np.ones_like(a)
    b = np.ones_like(a)
    for k in range(1, servers + 1):
        b = a * b / (k + a * b)
    rho = a / servers
    stable = rho < 1
    out = np.ones_like(a)
    out[stable] = b[stable] / (1 - rho[stable] * (1 - b[stable]))
    return out


class _Queue(abc.ABC):
    """What a desk is read as, from its ``arrivals`` a day and :meth:`queue` (kept and waiting shares a day)."""

    arrivals: np.ndarray

    @abc.abstractmethod
    def queue(self, load: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Per day at load factor ``load``: the share of contacts kept and the share of MQLs that wait."""

    def kept(self, load: float = 1.0) -> np.ndarray:
        """The share of contacts the desk keeps, per day (1: no MQL waits)."""
        return self.queue(load)[0]

    def p_wait(self, load: float = 1.0) -> float:
        """The share of the horizon's MQLs that find every SDR busy, at load factor ``load``."""
        total = float(self.arrivals.sum())
        return float(self.arrivals @ self.queue(load)[1]) / total if total > 0 else 0.0

    def fit_load(self, observed_p_wait: float) -> float:
        """The load factor (within :data:`LOAD_RANGE`) at which the desk's share of MQLs that wait is
        ``observed_p_wait``; the nearer end of the range when none is."""
        low, high = LOAD_RANGE
        if not observed_p_wait > self.p_wait(low):
            return low
        if observed_p_wait >= self.p_wait(high):
            return high
        return float(optimize.brentq(lambda x: self.p_wait(x) - observed_p_wait, low, high, xtol=1e-3))


@dataclass(frozen=True)
class SDRDesk(_Queue):
    """One scenario's desk on the day grid: ``arrivals`` (followed-up MQLs a day, at load factor 1),
    ``slots`` (SDR slots a day: hires, ramp, attrition), ``mean_work`` (days per MQL), ``contact``
    (``E_D P_c(D + w)`` on the grid of waits ``waits``) and ``saturated_wait`` (days)."""

    arrivals: np.ndarray
    slots: np.ndarray
    mean_work: float
    waits: np.ndarray
    contact: np.ndarray
    saturated_wait: float

    def _contact_after(self, wait: np.ndarray) -> np.ndarray:
        return np.interp(wait, self.waits, self.contact)

    def _whole(self, servers: int, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Kept share and P(wait) per day with ``servers`` SDRs (a whole number)."""
        c0 = float(self.contact[0])
        if servers < 1:
            return np.zeros_like(lam), np.ones_like(lam)
        mu = 1.0 / self.mean_work
        a = lam * self.mean_work
        wait = erlang_c_days(servers, a)
        spare = np.maximum(servers * mu - lam, 1e-12)
        waits = -np.log1p(-_WAIT_POINTS)[None, :] / spare[:, None]
        after = self._contact_after(waits).mean(axis=1)
        kept = ((1 - wait) * c0 + wait * after) / c0
        saturated = a >= servers
        share = servers / np.maximum(a, 1e-12)
        kept[saturated] = share[saturated] * float(self._contact_after(np.array([self.saturated_wait]))[0]) / c0
        return kept, wait

    def queue(self, load: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Per day at load factor ``load``: the share of contacts kept and the share of MQLs that wait."""
        lam = load * self.arrivals
        if self.mean_work <= 0:
            return np.ones_like(lam), np.zeros_like(lam)
        low = np.floor(self.slots).astype(int)
        frac = self.slots - low
        kept, wait = np.zeros_like(lam), np.zeros_like(lam)
        for c in np.unique(np.concatenate([low, low + 1])):
            weight = np.where(low == c, 1 - frac, 0.0) + np.where(low + 1 == c, frac, 0.0)
            if not weight.any():
                continue
            k, w = self._whole(int(c), lam)
            kept += weight * k
            wait += weight * w
        return kept, wait


class Desks(_Queue):
    """A segmented scenario's desks, one per segment, read as one: their days side by side (each queue on its
    own; the load factor the same for all)."""

    def __init__(self, desks: list[SDRDesk]) -> None:
        self.desks = desks
        self.arrivals = np.concatenate([d.arrivals for d in desks])

    def queue(self, load: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Per day and desk, in the desks' order: the shares of :meth:`SDRDesk.queue`."""
        parts = [d.queue(load) for d in self.desks]
        return np.concatenate([k for k, _ in parts]), np.concatenate([w for _, w in parts])


def sdr_desk(scenario: Scenario, mqls: np.ndarray, slots: np.ndarray) -> SDRDesk:
    """The desk of ``scenario`` fed with ``mqls`` a day (every source) and ``slots`` SDR slots a day."""
    h = scenario.handoff
    key = f"{h.speed_to_lead!r} {h.response_delay_days!r}"
    if key not in _CONTACT:
        curve, delay = h.speed_to_lead, h.response_delay_days
        _CONTACT[key] = np.array([expected_contact_rate(curve, delay, w, points=256) for w in _WAITS])
    contact = _CONTACT[key]
    patience = h.sdr.patience_days
    return SDRDesk(
        arrivals=np.asarray(mqls, dtype=float) * rate(h.follow_up_rate),
        slots=np.asarray(slots, dtype=float),
        mean_work=h.sdr.work_days.mean,
        waits=_WAITS,
        contact=contact,
        saturated_wait=_NO_PATIENCE_WAIT if patience is None else patience.mean,
    )
