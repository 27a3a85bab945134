"""Customers after the sale: renewal or churn at each term end, expansion and contraction, invoices.

A customer is a subscription that runs month by month from its signing: think of it as a
clock that ticks every month (``M = 365.25 / 12`` days) until the customer churns or the
horizon ends. On tick ``j`` (time ``a + j·M``, ``a`` the signing time), in this order:

1. at a term end (``j > 0`` and ``j`` a multiple of ``term_months``) the customer renews
   with probability ``r[min(k, len(r) − 1)]``, ``k`` its renewals so far, else churns
   (its ARR leaves the book, nothing else happens to it); on renewal it may expand, then
   contract, by the at-renewal probabilities and sizes;
2. it may expand (``ARR ← ARR + round(ARR · f)``) with ``probability_per_month``, then
   contract (``ARR ← ARR − round(ARR · f)``);
3. on the first tick of a billing period (``j`` a multiple of the period's months; the
   signing is tick 0) it is invoiced ``round(ARR · period / 12)``.

Money is counted in whole cents (integers) here, so the ledger's changes add up to its
balances exactly. A customer of the installed base ticks on the months before its next
renewal date: its clock is set so that the renewal date is a term end.

No customer interacts with another, so there is no event loop: all customers take each
tick together as array operations (``numpy`` only). Each tick and each quantity has a
random stream of its own (``"customers", <group>, <quantity>, <tick>``; group ``new`` or
``installed``), customer ``i`` of a group taking element ``i``: a customer's draws do not
depend on how many others there are, so two scenarios with the same wins see the same
renewals (common random numbers), and the funnel's streams are never touched.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from funnelsim.model.distributions import Fixed, Spec
from funnelsim.model.scenario import DAYS_PER_MONTH, Scenario
from funnelsim.model.subscription import (
    BILLING_MONTHS,
    Contraction,
    Customer,
    Expansion,
    Subscription,
    subscription_of,
)
from funnelsim.randomness import Streams
from funnelsim.run.recurring import LEDGER_KINDS, billings_frame, ledger_frame
from funnelsim.run.result import RunResult

__all__ = ["NewCustomers", "installed_schedule", "new_customers", "simulate_customers", "with_customers"]

UNSEGMENTED = "all"
"""The segment of every customer of a scenario without segments."""


@dataclass(frozen=True)
class NewCustomers:
    """The deals won in a run, as new customers: signing day, ARR at signing, lead and segment."""

    time: np.ndarray
    arr: np.ndarray
    lead: np.ndarray
    segment: np.ndarray

    @classmethod
    def of(cls, time: np.ndarray, arr: np.ndarray, segment: str = UNSEGMENTED) -> NewCustomers:
        """New customers without leads (lead -1), all of one segment: for tests and notebooks."""
        n = len(time)
        return cls(np.asarray(time, float), np.asarray(arr, float), np.full(n, -1), np.full(n, segment, dtype=object))


def new_customers(result: RunResult) -> NewCustomers:
    """The won deals of ``result`` in time order; a lead's segment is ``attributes["segment"]`` when the
    run has segments, else ``"all"``."""
    ev = result.events
    won = (ev["event"] == "won").to_numpy()
    lead = ev["lead"].to_numpy(np.int64)[won]
    if "segment" in result.attributes:
        segment = result.attributes["segment"].astype(str).to_numpy(object)[lead]
    else:
        segment = np.full(len(lead), UNSEGMENTED, dtype=object)
    return NewCustomers(ev["time"].to_numpy(float)[won], ev["value"].to_numpy(float)[won], lead, segment)


def with_customers(result: RunResult, streams: Streams) -> RunResult:
    """``result`` with its ARR ledger and billings when its scenario sells subscriptions; else itself."""
    scenario = result.scenario
    if scenario.subscription is None:
        return result
    ledger, billings = simulate_customers(scenario, new_customers(result), streams)
    return dataclasses.replace(result, arr_ledger=ledger, billings=billings)


def installed_schedule(customer: Customer, start_date: dt.date, term_months: int) -> tuple[float, int]:
    """When an installed-base customer's next term ends (days since ``start_date``, >= 0) and its
    renewals so far: its ``renewal_date``, or the first anniversary of its ``start_date`` (every
    ``term_months``) on or after day 0; renewals given, else the terms completed since it started."""
    term_days = term_months * DAYS_PER_MONTH
    started = None if customer.start_date is None else (customer.start_date - start_date).days
    if customer.renewal_date is not None:
        renewal = float((customer.renewal_date - start_date).days)
        done = 0 if started is None else max(0, round((renewal - started) / term_days) - 1)
    else:
        assert started is not None
        terms = max(1, int(np.ceil(-started / term_days - 1e-9)))
        renewal, done = started + terms * term_days, terms - 1
    return renewal, done if customer.renewals is None else customer.renewals


@dataclass
class _Book:
    """Every customer's state as arrays: the installed base first, then the new customers."""

    group: np.ndarray  # 0 installed, 1 new
    index: np.ndarray  # position within its group (its element of each stream)
    lead: np.ndarray
    segment: np.ndarray  # index into the segment names
    anchor: np.ndarray  # time of tick 0, days
    first: np.ndarray  # first tick inside the window
    ticks: np.ndarray  # ticks inside the window
    arr: np.ndarray  # cents
    renewals: np.ndarray
    alive: np.ndarray


class _Rows:
    """Ledger and invoice rows, collected tick by tick (concatenated once at the end)."""

    def __init__(self) -> None:
        self.ledger: list[tuple[np.ndarray, ...]] = []
        self.invoices: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, kind: str, time: np.ndarray, who: np.ndarray, change: np.ndarray, book: _Book) -> None:
        if len(who):
            code = np.full(len(who), LEDGER_KINDS.index(kind), dtype=np.int8)
            self.ledger.append((time, who, code, change, book.arr[who].copy(), book.renewals[who].copy()))


def simulate_customers(
    scenario: Scenario, new: NewCustomers, streams: Streams, horizon_days: float | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every customer's life from day 0 (or its signing) to the horizon: the ARR ledger and the invoices.

    Parameters
    ----------
    scenario
        A scenario with a ``subscription`` section (per segment: :func:`subscription_of`).
    new
        The deals won in the run (:func:`new_customers`), in any order.
    streams
        The run's streams; only purpose ``"customers"`` is drawn from.
    horizon_days
        End of the window; defaults to the scenario's horizon.

    Returns
    -------
    (ledger, billings)
        See :func:`funnelsim.run.recurring.ledger_frame` and :func:`~funnelsim.run.recurring.billings_frame`.
    """
    horizon = float(scenario.horizon_days if horizon_days is None else horizon_days)
    order = np.argsort(new.time, kind="stable")
    new = NewCustomers(new.time[order], new.arr[order], new.lead[order], new.segment[order])
    names, terms = _segment_settings(scenario, new)
    book = _open_book(scenario, new, names, terms, horizon)
    rows = _Rows()
    opening = np.flatnonzero(book.group == 0)
    rows.add("opening", np.zeros(len(opening)), opening, book.arr[opening].copy(), book)
    signed = np.flatnonzero(book.group == 1)
    rows.add("new", book.anchor[signed], signed, book.arr[signed].copy(), book)
    settings = _Terms(terms)
    _invoice(rows, book, signed, book.anchor[signed], settings)
    for tick in range(int(book.ticks.max(initial=0))):
        _tick(settings, book, tick, streams, rows)
    segment_names = [str(n) for n in names]
    return ledger_frame(rows.ledger, book.lead, book.segment, segment_names), billings_frame(rows.invoices)


def _segment_settings(scenario: Scenario, new: NewCustomers) -> tuple[list[str], list[Subscription]]:
    """The segment names of the run's customers and each one's subscription settings."""
    found = [*(c.segment for c in _installed(scenario)), *new.segment.tolist()]
    names = list(dict.fromkeys(str(s) for s in found)) or [UNSEGMENTED]
    settings = []
    for name in names:
        settings.append(subscription_of(scenario, name) or scenario.subscription)
    assert all(s is not None for s in settings)
    return names, [s for s in settings if s is not None]


def _installed(scenario: Scenario) -> list[Customer]:
    """The installed base, every customer's segment ``"all"`` in a scenario without segments."""
    assert scenario.subscription is not None
    customers = scenario.subscription.customers
    if getattr(scenario, "segments", None):
        return customers
    return [c.model_copy(update={"segment": UNSEGMENTED}) for c in customers]


def _open_book(
    scenario: Scenario, new: NewCustomers, names: list[str], terms: list[Subscription], horizon: float
) -> _Book:
    """The book on day 0: the installed base, then the new customers, with their clocks."""
    base = _installed(scenario)
    m, n = len(base), len(new.time)
    seg_of = {name: i for i, name in enumerate(names)}
    segment = np.array([seg_of[str(c.segment)] for c in base] + [seg_of[str(s)] for s in new.segment], dtype=np.int64)
    schedule = [installed_schedule(c, scenario.start_date, terms[seg_of[str(c.segment)]].term_months) for c in base]
    term_months = np.array([t.term_months for t in terms], dtype=np.int64)[segment]
    renewal = np.array([r for r, _ in schedule], dtype=float)
    anchor = np.concatenate([renewal - term_months[:m] * DAYS_PER_MONTH, new.time])
    # An installed customer's first tick on or after day 0; a new customer's the month after it signed.
    first = np.concatenate([np.ceil(-anchor[:m] / DAYS_PER_MONTH - 1e-9), np.ones(n)]).astype(np.int64)
    first += (anchor + first * DAYS_PER_MONTH < 0).astype(np.int64)
    last = np.floor((horizon - anchor) / DAYS_PER_MONTH).astype(np.int64)
    last -= (anchor + last * DAYS_PER_MONTH >= horizon).astype(np.int64)
    cents = np.rint(np.concatenate([[c.arr for c in base], new.arr]) * 100).astype(np.int64)
    return _Book(
        group=np.repeat(np.array([0, 1], dtype=np.int8), [m, n]),
        index=np.concatenate([np.arange(m), np.arange(n)]),
        lead=np.concatenate([np.full(m, -1, dtype=np.int64), new.lead.astype(np.int64)]),
        segment=segment,
        anchor=anchor,
        first=first,
        ticks=np.clip(last - first + 1, 0, None),
        arr=cents,
        renewals=np.array([d for _, d in schedule] + [0] * n, dtype=np.int64),
        alive=np.ones(m + n, dtype=bool),
    )


class _Terms:
    """The subscription settings of each segment as arrays indexed by segment."""

    def __init__(self, terms: list[Subscription]) -> None:
        self.term = np.array([t.term_months for t in terms], dtype=np.int64)
        self.period = np.array([BILLING_MONTHS[t.billing] for t in terms], dtype=np.int64)
        width = max(len(t.renewal_probability) for t in terms)
        # Renewal probability by segment (rows) and renewals so far (columns; the last value repeats).
        self.renewal = np.array([t.renewal_probability + [t.renewal_probability[-1]] * width for t in terms])[:, :width]
        self.probability: dict[tuple[str, bool], np.ndarray] = {}
        self.size: dict[tuple[str, bool], list[Spec]] = {}
        for kind in ("expansion", "contraction"):
            movements: list[Expansion | Contraction | None] = [getattr(t, kind) for t in terms]
            for at_renewal in (True, False):
                self.probability[kind, at_renewal] = np.array(
                    [_probability(mv, at_renewal) for mv in movements], dtype=float
                )
                self.size[kind, at_renewal] = [_size_spec(mv, at_renewal) for mv in movements]


def _probability(movement: Expansion | Contraction | None, at_renewal: bool) -> float:
    if movement is None:
        return 0.0
    return movement.probability_at_renewal if at_renewal else movement.probability_per_month


def _tick(terms: _Terms, book: _Book, tick: int, streams: Streams, rows: _Rows) -> None:
    """Tick number ``tick`` (counted from each customer's first tick in the window) of every customer."""
    who = np.flatnonzero(book.alive & (tick < book.ticks))
    j = book.first[who] + tick
    time = book.anchor[who] + j * DAYS_PER_MONTH
    draw = _Draws(streams, book, who, tick)
    ends = (j > 0) & (j % terms.term[draw.segment] == 0)
    if ends.any():
        k = np.minimum(book.renewals[who], terms.renewal.shape[1] - 1)
        churn = ends & ~(draw.uniform("renewal") < terms.renewal[draw.segment, k])
        gone = who[churn]
        book.alive[gone] = False
        lost = book.arr[gone].copy()
        book.arr[gone] = 0
        rows.add("churn", time[churn], gone, -lost, book)
        renew = ends & ~churn
        book.renewals[who[renew]] += 1
        rows.add("renewal", time[renew], who[renew], np.zeros(int(renew.sum()), dtype=np.int64), book)
        _move(terms, book, who, time, renew, draw, rows, at_renewal=True)
    keep = book.alive[who]
    _move(terms, book, who, time, keep, draw, rows, at_renewal=False)
    _invoice(rows, book, who[keep], time[keep], terms, j[keep])


class _Draws:
    """The draws of one tick for the customers ``who``: element ``index`` of each stream of their group."""

    def __init__(self, streams: Streams, book: _Book, who: np.ndarray, tick: int) -> None:
        self.streams, self.tick = streams, tick
        self.group, self.index, self.segment = book.group[who], book.index[who], book.segment[who]

    def _each_group(self, quantity: str, sample: Callable[[np.random.Generator, int], np.ndarray]) -> np.ndarray:
        out = np.zeros(len(self.index))
        for code, name in ((0, "installed"), (1, "new")):
            mine = self.group == code
            if mine.any():
                rng = self.streams.rng("customers", name, quantity, str(self.tick))
                out[mine] = sample(rng, int(self.index[mine].max()) + 1)[self.index[mine]]
        return out

    def uniform(self, quantity: str) -> np.ndarray:
        return self._each_group(quantity, lambda rng, n: rng.random(n))

    def size(self, quantity: str, specs: list[Spec]) -> np.ndarray:
        """A draw of each customer's segment's ``specs[segment]``; segments sharing a spec share its draw."""
        out = np.zeros(len(self.index))
        for spec in {id(s): s for s in specs}.values():
            mine = np.array([s is spec for s in specs])[self.segment]
            if mine.any():
                out[mine] = self._each_group(quantity, spec.sample)[mine]
        return out


def _move(
    terms: _Terms,
    book: _Book,
    who: np.ndarray,
    time: np.ndarray,
    eligible: np.ndarray,
    draw: _Draws,
    rows: _Rows,
    *,
    at_renewal: bool,
) -> None:
    """Expansions, then contractions, of the ``eligible`` of ``who``: on renewal or in the month."""
    when = "at_renewal" if at_renewal else "per_month"
    for kind, sign in (("expansion", 1), ("contraction", -1)):
        probability = terms.probability[kind, at_renewal]
        if not eligible.any() or not probability.any():
            continue
        hit = eligible & (draw.uniform(f"{kind}_{when}") < probability[draw.segment])
        if not hit.any():
            continue
        fraction = draw.size(f"{kind}_size_{when}", terms.size[kind, at_renewal])[hit]
        mine = who[hit]
        change = sign * np.rint(book.arr[mine] * fraction).astype(np.int64)
        book.arr[mine] += change
        rows.add(kind, time[hit], mine, change, book)


def _size_spec(movement: Expansion | Contraction | None, at_renewal: bool) -> Spec:
    """The size distribution of an expansion or contraction (0 for a segment without one: it never fires)."""
    if movement is None:
        return Fixed(value=0.0)
    own = movement.size_fraction_at_renewal if at_renewal else None
    return own if own is not None else movement.size_fraction


def _invoice(
    rows: _Rows,
    book: _Book,
    who: np.ndarray,
    time: np.ndarray,
    terms: _Terms,
    tick: np.ndarray | None = None,
) -> None:
    """Invoices of the customers ``who`` whose billing period starts at ``tick`` (signing: tick 0)."""
    period = terms.period[book.segment[who]]
    due = np.ones(len(who), dtype=bool) if tick is None else tick % period == 0
    if due.any():
        amount = np.rint(book.arr[who[due]] * period[due] / 12).astype(np.int64)
        rows.invoices.append((time[due], who[due], amount))
