"""Recurring revenue: ARR by month, the ARR bridge, customers, retention and unit economics.

Pure functions of a run's **ARR ledger** (:attr:`funnelsim.run.result.RunResult.arr_ledger`, one row
per change of a customer's ARR, :data:`LEDGER_KINDS`) and its invoices. Money is summed in whole
cents (the ledger's amounts are whole cents), so the bridge holds exactly.

Definitions (a period ``p`` is ``[e_p, e_{p+1})``, calendar months or quarters of
:func:`funnelsim.run.metrics.period_edges`; the installed base's ``opening`` rows count as
before day 0)
    ``ARR(t)`` = the sum over customers of their ARR after their last row before ``t``;
    ``customers(t)`` = the customers whose last row before ``t`` is not a churn;
    ``MRR = ARR / 12``.
The ARR bridge of a period
    ``closing = opening + new + expansion − contraction − churn``, with ``opening = ARR(e_p)``,
    ``closing = ARR(e_{p+1})`` (both read from the customers' balances) and the flows the sums of the
    ledger's changes in the period (contraction and churn as positive amounts). ``net new ARR =
    new + expansion − contraction − churn``.
Retention over ``[s, e)`` (cohort: the customers of ``s``)
    ``NRR = Σ_i ARR_i(e) / Σ_i ARR_i(s)``; ``GRR = Σ_i min(ARR_i(e), ARR_i(s)) / Σ_i ARR_i(s)``
    (each customer's expansion left out, so ``GRR ≤ 1``); a churned customer has ``ARR_i(e) = 0``.
    Trailing 12 months: ``s`` the start of the month 11 months before.
Unit economics over ``[0, H)``
    customer-months ``= ∫ customers(t) dt / (365.25 / 12)``; ``ARPA = ∫ MRR dt / ∫ customers dt``
    (per month); monthly churn rate ``c = churned customers / customer-months``;
    ``LTV = ARPA × gross margin / c``; ``CAC = (marketing + sales cost) / new customers``;
    CAC payback ``= CAC / (ARR of new customers / new customers / 12 × gross margin)`` months;
    magic number of quarter ``q`` ``= net new ARR(q) / sales and marketing spend(q − 1)``.

A ratio whose denominator is 0 is NaN.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from funnelsim.run.metrics import Freq, period_edges, spend_by_period

if TYPE_CHECKING:
    from funnelsim.run.result import RunResult

__all__ = [
    "BRIDGE_COLUMNS",
    "LEDGER_KINDS",
    "arr_bridge",
    "arr_by_quarter",
    "billings_frame",
    "ledger_frame",
    "retention",
    "summarize_recurring",
    "unit_economics",
]

LEDGER_KINDS = ("opening", "new", "renewal", "expansion", "contraction", "churn")
"""Rows of the ARR ledger: a customer of the installed base on day 0 (``opening``), a won deal
(``new``), a renewal at term end (no change), an expansion, a contraction, a churn."""

FLOWS = {"new": "new_arr", "expansion": "expansion_arr", "contraction": "contraction_arr", "churn": "churned_arr"}
BRIDGE_COLUMNS = ("opening_arr", *FLOWS.values(), "closing_arr", "net_new_arr")
DAYS_PER_MONTH = 365.25 / 12


def ledger_frame(
    rows: list[tuple[np.ndarray, ...]], lead: np.ndarray, segment: np.ndarray, segment_names: list[str]
) -> pd.DataFrame:
    """The ARR ledger from the engine's rows ``(time, customer, kind code, change, after, renewals)``,
    amounts in cents; ``lead`` and ``segment`` (codes into ``segment_names``) by customer.

    Returns
    -------
    pandas.DataFrame
        In time order (rows at one time in the order they happened): ``time`` (days), ``customer``
        (the installed base first, in file order, then the won deals in signing order), ``lead``
        (-1 for the installed base), ``segment``, ``kind`` (:data:`LEDGER_KINDS`), ``arr_change``
        (signed, currency), ``arr_after`` (the customer's ARR after the row), ``renewals`` (renewals
        made after the row; for a churn, before it).
    """
    parts = list(zip(*rows, strict=True)) if rows else [[np.zeros(0)]] * 6
    time, customer, code, change, after, renewals = (np.concatenate(p) for p in parts)
    order = np.argsort(time, kind="stable")
    customer = customer[order].astype(np.int64)
    return pd.DataFrame(
        {
            "time": time[order].astype(float),
            "customer": customer,
            "lead": lead[customer].astype(np.int64),
            "segment": pd.Categorical.from_codes(segment[customer], categories=segment_names),
            "kind": pd.Categorical.from_codes(code[order].astype(np.int8), categories=list(LEDGER_KINDS)),
            "arr_change": change[order] / 100,
            "arr_after": after[order] / 100,
            "renewals": renewals[order].astype(np.int64),
        }
    )


def billings_frame(invoices: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """The invoices ``(time, customer, amount in cents)`` as a table ``time, customer, amount`` in time order."""
    parts = list(zip(*invoices, strict=True)) if invoices else [[np.zeros(0)]] * 3
    time, customer, amount = (np.concatenate(p) for p in parts)
    order = np.argsort(time, kind="stable")
    return pd.DataFrame(
        {"time": time[order].astype(float), "customer": customer[order].astype(np.int64), "amount": amount[order] / 100}
    )


def _cents(money: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(money, dtype=float) * 100).astype(np.int64)


class _Ledger:
    """The ledger as numpy columns in time order (``opening`` rows first, before day 0), with each
    row's change of the book's balances: ``arr`` (its ``arr_after`` minus the customer's previous)
    and ``count`` (+1 for a customer appearing, −1 for a churn)."""

    def __init__(self, ledger: pd.DataFrame) -> None:
        kind = ledger["kind"].astype(str).to_numpy(object)
        self.time = np.where(kind == "opening", -1.0, ledger["time"].to_numpy(float))
        order = np.argsort(self.time, kind="stable")
        self.time, self.kind = self.time[order], kind[order]
        self.customer = ledger["customer"].to_numpy(np.int64)[order]
        self.change = _cents(ledger["arr_change"].to_numpy(float)[order])
        self.after = _cents(ledger["arr_after"].to_numpy(float)[order])
        self.n = int(self.customer.max()) + 1 if len(self.customer) else 0
        by_customer = np.lexsort((np.arange(len(self.customer)), self.customer))
        same = self.customer[by_customer][1:] == self.customer[by_customer][:-1]
        self.next_row = np.full(len(self.customer), len(self.customer))  # each row's customer's next row
        self.next_row[by_customer[:-1][same]] = by_customer[1:][same]
        alive = (self.kind != "churn").astype(np.int64)
        self.arr = self.after - self._previous(self.after)
        self.count = alive - self._previous(alive)
        self.cum_arr = np.concatenate([[0], np.cumsum(self.arr)])
        self.cum_count = np.concatenate([[0], np.cumsum(self.count)])

    def _previous(self, values: np.ndarray) -> np.ndarray:
        """Each row's customer's value on its previous row (0 on its first)."""
        by_customer = np.lexsort((np.arange(len(values)), self.customer))
        previous = np.zeros(len(values), dtype=values.dtype)
        first = np.r_[True, self.customer[by_customer][1:] != self.customer[by_customer][:-1]]
        shifted = np.concatenate([np.zeros(1, dtype=values.dtype), values[by_customer][:-1]])
        previous[by_customer] = np.where(first, 0, shifted)
        return previous

    def before(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ARR (cents) and customers just before each of ``times``."""
        at = np.searchsorted(self.time, np.asarray(times, dtype=float), side="left")
        return self.cum_arr[at], self.cum_count[at]

    def customers_before(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Each customer's ARR (cents) and whether it is a customer, just before ``t``."""
        k = int(np.searchsorted(self.time, t, side="left"))
        last = np.full(self.n, -1)
        # A customer's last row before t: one of the first k rows whose next row is not among them.
        rows = np.flatnonzero(self.next_row[:k] >= k)
        last[self.customer[rows]] = rows
        seen = last >= 0
        arr = np.where(seen, self.after[last], 0)
        return arr, seen & (self.kind[last] != "churn")

    def flows(self, edges: np.ndarray) -> dict[str, np.ndarray]:
        """Per period, the sum of the changes of each flow kind (cents, signed) and the row counts."""
        period = np.searchsorted(edges, self.time, side="right") - 1
        inside = (self.time >= 0) & (period < len(edges) - 1)
        out = {}
        for kind in (*FLOWS, "renewal"):
            mine = inside & (self.kind == kind)
            out[kind] = np.bincount(period[mine], weights=self.change[mine], minlength=len(edges) - 1)
            out[f"{kind}_rows"] = np.bincount(period[mine], minlength=len(edges) - 1)
        return out

    def integral(self, end: float) -> tuple[float, float]:
        """``∫_0^end ARR(t) dt`` (cents × days) and ``∫_0^end customers(t) dt`` (customer-days)."""
        t = np.clip(np.r_[self.time, end], 0.0, end)
        span = np.diff(t)
        return float(np.dot(self.cum_arr[1:], span)), float(np.dot(self.cum_count[1:], span))


def arr_bridge(
    ledger: pd.DataFrame,
    start_date: dt.date,
    horizon_days: float,
    freq: Freq = "month",
    billings: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """ARR by period and its bridge, customers, and (monthly) trailing-12-month retention.

    Parameters
    ----------
    ledger
        The ARR ledger (:func:`ledger_frame`).
    start_date, horizon_days
        The run's calendar: periods from the one of day 0 to the one of the horizon's last day.
    freq
        ``"month"`` or ``"quarter"``.
    billings
        The invoices (:func:`billings_frame`); adds the column ``billings``.

    Returns
    -------
    pandas.DataFrame
        ``period``; ``opening_arr``, ``new_arr``, ``expansion_arr``, ``contraction_arr``,
        ``churned_arr`` (contraction and churn as positive amounts), ``closing_arr``,
        ``net_new_arr`` (``new + expansion − contraction − churn``), ``closing_mrr``; ``opening_customers``,
        ``new_customers``, ``renewals``, ``churned_customers``, ``closing_customers``; with
        ``billings``, the amount invoiced; monthly, ``nrr_trailing_12m`` and ``grr_trailing_12m``
        (NaN before 12 months). Money in the scenario's currency.
    """
    labels, edges = period_edges(start_date, horizon_days, freq)
    book = _Ledger(ledger)
    arr, count = book.before(edges)
    flows = book.flows(edges)
    out: dict[str, Any] = {"period": labels, "opening_arr": arr[:-1] / 100}
    for kind, column in FLOWS.items():
        out[column] = np.abs(flows[kind]) / 100
    out["closing_arr"] = arr[1:] / 100
    out["net_new_arr"] = (flows["new"] + flows["expansion"] + flows["contraction"] + flows["churn"]) / 100
    out["closing_mrr"] = arr[1:] / 1200
    out["opening_customers"] = count[:-1]
    out["new_customers"] = flows["new_rows"]
    out["renewals"] = flows["renewal_rows"]
    out["churned_customers"] = flows["churn_rows"]
    out["closing_customers"] = count[1:]
    if billings is not None:
        period = np.searchsorted(edges, billings["time"].to_numpy(float), side="right") - 1
        cents = np.bincount(period, weights=_cents(billings["amount"].to_numpy(float)), minlength=len(labels))
        out["billings"] = cents[: len(labels)] / 100
    frame = pd.DataFrame(out)
    if freq == "month":
        trailing = [_retention(book, edges[p - 11], edges[p + 1]) if p >= 11 else {} for p in range(len(labels))]
        frame["nrr_trailing_12m"] = [r.get("nrr", math.nan) for r in trailing]
        frame["grr_trailing_12m"] = [r.get("grr", math.nan) for r in trailing]
    return frame


def retention(ledger: pd.DataFrame, start: float, end: float) -> dict[str, float]:
    """Net and gross revenue retention of the customers of ``start`` at ``end`` (days).

    Returns
    -------
    dict
        ``nrr``, ``grr`` (shares; NaN without ARR at ``start``), ``cohort_customers`` and
        ``cohort_arr`` (the customers just before ``start``, day 0's being the installed base).
    """
    return _retention(_Ledger(ledger), start, end)


def _retention(book: _Ledger, start: float, end: float) -> dict[str, float]:
    """:func:`retention` of a ledger already read."""
    first, cohort = book.customers_before(start)
    last, _ = book.customers_before(end)
    base = float(first[cohort].sum())
    return {
        "nrr": float(last[cohort].sum()) / base if base else math.nan,
        "grr": float(np.minimum(last, first)[cohort].sum()) / base if base else math.nan,
        "cohort_customers": int(cohort.sum()),
        "cohort_arr": base / 100,
    }


def unit_economics(ledger: pd.DataFrame, horizon_days: float, gross_margin: float, cac: float) -> dict[str, float]:
    """ARPA, churn rate, LTV, CAC payback and LTV:CAC over ``[0, horizon_days)`` (module docstring).

    Parameters
    ----------
    ledger
        The ARR ledger.
    horizon_days
        Length of the window.
    gross_margin
        Share of revenue left after the cost of serving it.
    cac
        Sales and marketing cost per new customer (the run's ``cac``).

    Returns
    -------
    dict
        ``arpa_per_month`` (currency per customer-month), ``customer_months``, ``monthly_churn_rate``
        (churned customers per customer-month), ``ltv`` (NaN when nobody churned: the data bound no
        lifetime), ``new_customer_arr`` (mean ARR of a new customer), ``cac_payback_months``,
        ``ltv_to_cac``.
    """
    book = _Ledger(ledger)
    arr_days, customer_days = book.integral(horizon_days)
    inside = book.time >= 0
    churned = int(((book.kind == "churn") & inside).sum())
    new = (book.kind == "new") & inside
    customer_months = customer_days / DAYS_PER_MONTH
    arpa = arr_days / 100 / 12 / customer_days if customer_days else math.nan
    churn_rate = churned / customer_months if customer_months else math.nan
    ltv = arpa * gross_margin / churn_rate if churn_rate else math.nan
    new_arr = float(book.change[new].sum()) / 100 / int(new.sum()) if new.any() else math.nan
    monthly_profit = new_arr / 12 * gross_margin
    return {
        "arpa_per_month": arpa,
        "customer_months": customer_months,
        "monthly_churn_rate": churn_rate,
        "ltv": ltv,
        "new_customer_arr": new_arr,
        "cac_payback_months": cac / monthly_profit if monthly_profit else math.nan,
        "ltv_to_cac": ltv / cac if cac else math.nan,
    }


def arr_by_quarter(result: RunResult) -> pd.DataFrame:
    """The quarterly ARR bridge with the quarter's sales and marketing spend and magic number.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`arr_bridge` by quarter (``period`` "2027Q1"), then
        ``sales_marketing_spend`` (``total_cost`` of :func:`~funnelsim.run.metrics.spend_by_period`)
        and ``magic_number`` (this quarter's ``net_new_arr`` over the previous quarter's spend; NaN
        for the first quarter).
    """
    sc = result.scenario
    assert result.arr_ledger is not None
    bridge = arr_bridge(result.arr_ledger, sc.start_date, float(sc.horizon_days), "quarter", result.billings)
    spend = spend_by_period(result, "quarter")["total_cost"].to_numpy(float)
    bridge["sales_marketing_spend"] = spend
    previous = np.r_[math.nan, spend[:-1]]
    bridge["magic_number"] = np.divide(
        bridge["net_new_arr"].to_numpy(float), previous, out=np.full(len(spend), math.nan), where=previous > 0
    )
    return bridge


def summarize_recurring(result: RunResult, cac: float) -> dict[str, float]:
    """The recurring-revenue keys of :func:`funnelsim.run.metrics.summarize_run` (docs/outputs.md).

    ``cac`` is the run's cost per new customer (its ``cac``); the gross margin is the scenario's
    ``subscription.gross_margin``.
    """
    sc = result.scenario
    assert result.arr_ledger is not None and sc.subscription is not None
    horizon = float(sc.horizon_days)
    ledger = result.arr_ledger
    month = arr_bridge(ledger, sc.start_date, horizon, "month", result.billings)
    quarter = arr_by_quarter(result)
    out: dict[str, float] = {
        "opening_arr": float(month["opening_arr"].iloc[0]),
        **{column: float(month[column].sum()) for column in FLOWS.values()},
        "ending_arr": float(month["closing_arr"].iloc[-1]),
        "net_new_arr": float(month["net_new_arr"].sum()),
        "ending_mrr": float(month["closing_mrr"].iloc[-1]),
        "opening_customers": int(month["opening_customers"].iloc[0]),
        "new_customers": int(month["new_customers"].sum()),
        "churned_customers": int(month["churned_customers"].sum()),
        "ending_customers": int(month["closing_customers"].iloc[-1]),
        "billings": float(month["billings"].sum()),
    }
    kept = retention(ledger, 0.0, horizon)
    out |= {"nrr": kept["nrr"], "grr": kept["grr"]}
    out |= unit_economics(ledger, horizon, sc.subscription.gross_margin, cac)
    net_new = quarter["net_new_arr"].to_numpy(float)[1:]
    spend = quarter["sales_marketing_spend"].to_numpy(float)[:-1]
    out["magic_number"] = float(net_new.sum() / spend.sum()) if spend.sum() > 0 else math.nan
    return out
