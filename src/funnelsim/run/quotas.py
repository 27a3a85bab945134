"""Quotas and compensation: each AE's ramped quota, the bookings credited to it, attainment and commission.

A quota is to an AE what a revenue goal is to the company: the bookings it is asked to close.
Pure functions of a run's roster and event log (no simulation); they apply only when the
scenario gives ``sales.ae.quota_per_year`` (docs/model.md, "Quotas and compensation").

Ramped quota
    Month ``m`` of an AE's tenure is ``[h + m D, h + (m + 1) D)``, ``h`` its hire time and
    ``D = 365.25 / 12`` (the steps of the capacity ramp); in it the AE is asked the share
    ``r_m = quota_ramp[min(m, len - 1)]`` of ``quota_per_year``. Over a window ``[a, b)``::

        Q = quota_per_year / 365.25 * sum_m r_m * |[h + m D, h + (m + 1) D) ∩ [a, b) ∩ [joined, left)|

    An AE on staff on day 0 at full productivity with no ramp step after (the starting team; every
    AE of a warm start's day 0) counts as ramped: ``r`` is the last share throughout. An AE who
    left has the quota of its time on staff; ``quota_ramp`` defaults to the capacity ``ramp``.
Bookings credited
    ``B`` = the values of the ``won`` events whose ``rep`` is the AE, closed while it is on staff.
    A deal that closes after its AE left is credited to nobody (``uncredited_bookings``).
Attainment
    ``A = B / Q``, NaN when ``Q = 0`` (an AE whose quota share was 0 all the time it was on staff);
    the distribution is over the AEs with ``Q > 0``.
Commission
    The base commission rate ``c = variable_share * ote_per_year / quota_per_year`` (currency paid
    per currency booked at or under quota). With ``accelerator`` ``k`` and ``attainment_cap`` ``K``
    (none: infinite)::

        pay = c * (min(B, Q) + k * max(min(B, K Q) - Q, 0))     (= target incentive c Q × payout(A))

    and ``pay = c * B`` for an AE with ``Q = 0``. Commission is paid on the horizon's totals, on top
    of ``cost_per_year`` (the fixed pay).
Quota capacity
    ``sum of Q`` over the AEs, compared with the plan over the horizon (:func:`plan_over`).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from funnelsim.model.scenario import DAYS_PER_MONTH, AETeam

if TYPE_CHECKING:
    from funnelsim.model.scenario import Scenario
    from funnelsim.run.result import RunResult

__all__ = [
    "ALL",
    "QuotaReport",
    "ae_settings_of",
    "commission",
    "has_commission",
    "has_quotas",
    "period_edges",
    "plan_over",
    "quota_report",
    "quota_report_of",
    "ramped_quota",
    "staff_of",
]

DAYS_PER_YEAR = 365.25
ALL = "all"
"""The segment of every lead and rep of an unsegmented scenario."""


def has_quotas(scenario: Scenario) -> bool:
    """Whether the scenario's AEs carry a quota (in any segment)."""
    return any(ae_settings_of(scenario, name).has_quota for name in _segments(scenario))


def has_commission(scenario: Scenario) -> bool:
    """Whether the scenario's AEs earn commission (``ote_per_year`` with a quota, in any segment)."""
    return any(ae_settings_of(scenario, name).ote_per_year is not None for name in _segments(scenario))


def _segments(scenario: Scenario) -> list[str]:
    """The scenario's segment names (``segments``, the segments piece of issue 19), or ``["all"]``."""
    return [str(name) for name in getattr(scenario, "segments", None) or [ALL]]


def ae_settings_of(scenario: Scenario, segment: str) -> AETeam:
    """The AE settings (quota, ramp, compensation) of one segment (:meth:`Scenario.view_of`)."""
    return scenario.view_of(segment).sales.ae


def staff_of(roster: pd.DataFrame) -> pd.DataFrame:
    """One row per AE of the roster: when it was on staff and when its tenure started.

    Returns
    -------
    pandas.DataFrame
        ``rep``, ``segment`` (``"all"`` without a segment column), ``joined`` (first ``joined``
        row, days), ``left`` (first ``left`` row; inf while on staff), ``ramped_at_start`` (on
        staff on day 0 at full productivity with no ramp step after) and ``hired`` (the start of
        its tenure: ``joined``, or -inf for a ramped AE), in order of first appearance.
    """
    ae = roster[(roster["team"] == "ae").to_numpy(bool)]
    rep = ae["rep"].to_numpy(np.int64)
    time = ae["time"].to_numpy(float)
    change = ae["change"].astype(str).to_numpy()
    ids, first, inverse = np.unique(rep, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # the AEs in order of first appearance
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = np.arange(len(ids))
    reps, where = ids[order], rank[inverse]  # each roster row's AE, by its place in that order
    joined = np.full(len(reps), np.inf)
    left = np.full(len(reps), np.inf)
    ramps = np.zeros(len(reps), dtype=bool)
    full_on_day_0 = np.zeros(len(reps), dtype=bool)
    is_join, is_left = change == "joined", change == "left"
    np.minimum.at(joined, where[is_join], time[is_join])
    np.minimum.at(left, where[is_left], time[is_left])
    ramps[where[change == "ramp"]] = True
    day_0 = is_join & (time <= 0) & (ae["productivity"].to_numpy(float) >= 1.0)
    full_on_day_0[where[day_0]] = True
    ramped = full_on_day_0 & ~ramps
    segment = ae["segment"].astype(str).to_numpy()[first[order]] if "segment" in ae else ALL
    return pd.DataFrame(
        {
            "rep": reps,
            "segment": segment,
            "joined": joined,
            "left": left,
            "ramped_at_start": ramped,
            "hired": np.where(ramped, -np.inf, joined),
        }
    )


def ramped_quota(staff: pd.DataFrame, ae: AETeam, edges: np.ndarray) -> np.ndarray:
    """Each AE's ramped quota in each window ``[edges[j], edges[j + 1])``: shape (AEs, windows).

    ``staff`` has ``hired``, ``joined`` and ``left`` (:func:`staff_of`); the shares are
    ``ae.quota_shares``, the quota ``ae.quota_per_year`` (see the module docstring).
    """
    if ae.quota_per_year is None:
        raise ValueError("sales.ae.quota_per_year is not set: no quota to ramp")
    shares = ae.quota_shares
    ramped = np.isneginf(staff["hired"].to_numpy(float))[:, None]
    hired = np.where(ramped, 0.0, staff["hired"].to_numpy(float)[:, None])
    on = staff["joined"].to_numpy(float)[:, None]
    off = staff["left"].to_numpy(float)[:, None]
    lo, hi = np.asarray(edges, dtype=float)[None, :-1], np.asarray(edges, dtype=float)[None, 1:]
    days = np.zeros((len(staff), len(edges) - 1))
    for m, share in enumerate(shares):
        # A ramped AE is in its last month of ramp all along: its other months are empty.
        last = m == len(shares) - 1
        start = np.where(ramped, -np.inf, hired + m * DAYS_PER_MONTH)
        end = np.full_like(hired, np.inf) if last else np.where(ramped, -np.inf, hired + (m + 1) * DAYS_PER_MONTH)
        inside = np.minimum(np.minimum(end, off), hi) - np.maximum(np.maximum(start, on), lo)
        days += share * np.clip(inside, 0.0, None)
    return days * ae.quota_per_year / DAYS_PER_YEAR


def commission(bookings: np.ndarray, quota: np.ndarray, ae: AETeam) -> np.ndarray:
    """Commission of each AE on its bookings against its ramped quota (module docstring); 0 without OTE."""
    bookings, quota = np.asarray(bookings, dtype=float), np.asarray(quota, dtype=float)
    if ae.ote_per_year is None or ae.quota_per_year is None:
        return np.zeros(np.broadcast(bookings, quota).shape)
    rate = ae.variable_share * ae.ote_per_year / ae.quota_per_year
    paid_up_to = bookings if ae.attainment_cap is None else np.minimum(bookings, ae.attainment_cap * quota)
    above = np.clip(paid_up_to - quota, 0.0, None)
    paid = np.minimum(bookings, quota) + ae.accelerator * above
    return rate * np.where(quota > 0, paid, bookings)


def period_edges(start_date: dt.date, horizon_days: float, freq: str) -> tuple[list[str], np.ndarray]:
    """Calendar months or quarters covering ``[0, horizon_days)``: labels and edges in days (0 ... horizon)."""
    if freq not in ("month", "quarter"):
        raise ValueError(f"freq must be 'month' or 'quarter', got {freq!r}")
    step = 3 if freq == "quarter" else 1
    first = np.datetime64(start_date, "M").astype(np.int64)
    first -= first % step  # 1970-01 starts a quarter
    last_day = np.datetime64(start_date, "D") + max(math.ceil(horizon_days) - 1, 0)
    last = last_day.astype("datetime64[M]").astype(np.int64)
    codes = np.arange(first, last + 1, step)
    starts = codes.astype("datetime64[M]").astype("datetime64[D]")
    inner = (starts[1:] - np.datetime64(start_date, "D")).astype(np.int64).astype(float)
    edges = np.concatenate([[0.0], inner, [float(horizon_days)]])
    if freq == "quarter":
        labels = [f"{1970 + c // 12}Q{c % 12 // 3 + 1}" for c in codes.tolist()]
    else:
        labels = [f"{1970 + c // 12:04d}-{c % 12 + 1:02d}" for c in codes.tolist()]
    return labels, edges


def plan_over(scenario: Scenario, horizon_days: float, goal: float | None = None) -> tuple[float, str]:
    """The bookings plan of the horizon and where it comes from.

    ``goal`` (the command's ``--goal``, for the horizon) if given; else the forecast section's
    targets over the horizon's months (:func:`funnelsim.run.pipeline_views.monthly_targets`);
    else ``prior_year_revenue * horizon_days / 365.25``; else NaN (``"none"``).
    """
    if goal is not None:
        return float(goal), "goal"
    forecast = scenario.forecast
    if forecast is not None and (forecast.bookings_target_per_year is not None or forecast.bookings_target_by_month):
        from funnelsim.run.pipeline_views import monthly_targets

        targets = monthly_targets(scenario, horizon_days)
        return float(targets["target_in_run"].sum(skipna=False)), "forecast"  # NaN if a month has no target
    if scenario.prior_year_revenue is not None:
        return scenario.prior_year_revenue * horizon_days / DAYS_PER_YEAR, "prior_year_revenue"
    return math.nan, "none"


@dataclass(frozen=True)
class QuotaReport:
    """The quota tables of one run: per AE, per AE and quarter, and the summary keys."""

    aes: pd.DataFrame
    quarters: pd.DataFrame
    summary: dict[str, float] = field(default_factory=dict)


def quota_report(result: RunResult, goal: float | None = None) -> QuotaReport:
    """Ramped quota, bookings, attainment and commission of every AE of a run (module docstring).

    Parameters
    ----------
    result
        The run; its scenario must give ``sales.ae.quota_per_year``.
    goal
        The plan of the horizon, if the command has one (``--goal``); see :func:`plan_over`.

    Returns
    -------
    QuotaReport
        ``aes`` (``attainment.csv``), ``quarters`` (``attainment_by_quarter.csv``) and ``summary``
        (the keys :func:`funnelsim.run.metrics.summarize_run` adds; see docs/outputs.md).
    """
    return quota_report_of(result.events, result.roster, result.scenario, float(result.scenario.horizon_days), goal)


def quota_report_of(
    events: pd.DataFrame, roster: pd.DataFrame, scenario: Scenario, horizon_days: float, goal: float | None = None
) -> QuotaReport:
    """:func:`quota_report` from a run's event log and roster, over ``[0, horizon_days)``."""
    staff = staff_of(roster)
    labels, edges = period_edges(scenario.start_date, horizon_days, "quarter")
    won = events[(events["event"] == "won").to_numpy(bool)]
    if not has_quotas(scenario):
        raise ValueError("no AE of this scenario has a quota (sales.ae.quota_per_year)")
    frames, quarters = [], []
    for segment in _segments(scenario):
        ae = ae_settings_of(scenario, segment)
        if not ae.has_quota:
            continue
        mine = staff[(staff["segment"] == segment).to_numpy(bool)].reset_index(drop=True)
        quota = ramped_quota(mine, ae, edges)
        booked, deals = _credited(mine, won, edges)
        frames.append(_per_ae(mine, quota.sum(axis=1), booked.sum(axis=1), deals, ae))
        quarters.append(_per_quarter(mine, labels, quota, booked))
    aes, by_quarter = pd.concat(frames, ignore_index=True), pd.concat(quarters, ignore_index=True)
    if "segment" not in roster:
        aes, by_quarter = aes.drop(columns="segment"), by_quarter.drop(columns="segment")
    won_value = float(won["value"].to_numpy(float)[won["time"].to_numpy(float) < horizon_days].sum())
    summary = _summary(aes, won_value, plan_over(scenario, horizon_days, goal)[0])
    if has_commission(scenario):
        summary["commission_cost"] = float(np.nansum(aes["commission"].to_numpy(float)))
    return QuotaReport(aes, by_quarter, summary)


def _credited(staff: pd.DataFrame, won: pd.DataFrame, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bookings credited to each AE per window, and its credited deals over the run."""
    row = {r: i for i, r in enumerate(staff["rep"].tolist())}
    rep = won["rep"].to_numpy(np.int64)
    time = won["time"].to_numpy(float)
    value = won["value"].to_numpy(float)
    who = np.array([row.get(r, -1) for r in rep.tolist()], dtype=np.int64)
    mine = who >= 0
    on_staff = np.zeros(len(rep), dtype=bool)
    on_staff[mine] = (time[mine] >= staff["joined"].to_numpy(float)[who[mine]]) & (
        time[mine] < staff["left"].to_numpy(float)[who[mine]]
    )
    window = np.searchsorted(edges, time, side="right") - 1
    keep = on_staff & (window >= 0) & (window < len(edges) - 1)
    booked = np.zeros((len(staff), len(edges) - 1))
    np.add.at(booked, (who[keep], window[keep]), value[keep])
    deals = np.bincount(who[keep], minlength=len(staff))
    return booked, deals


def _per_ae(staff: pd.DataFrame, quota: np.ndarray, booked: np.ndarray, deals: np.ndarray, ae: AETeam) -> pd.DataFrame:
    """The rows of ``attainment.csv`` for one segment's AEs."""
    left = staff["left"].to_numpy(float)
    pay = commission(booked, quota, ae) if ae.ote_per_year is not None else np.full(len(quota), np.nan)
    return pd.DataFrame(
        {
            "rep": staff["rep"].to_numpy(np.int64),
            "segment": staff["segment"].to_numpy(object),
            "joined": staff["joined"].to_numpy(float),
            "left": np.where(np.isinf(left), np.nan, left),
            "ramped_at_start": staff["ramped_at_start"].to_numpy(bool),
            "ramped_quota": quota,
            "bookings": booked,
            "deals_won": deals.astype(np.int64),
            "attainment": _attainment(booked, quota),
            "commission": pay,
        }
    )


def _per_quarter(staff: pd.DataFrame, labels: list[str], quota: np.ndarray, booked: np.ndarray) -> pd.DataFrame:
    """The rows of ``attainment_by_quarter.csv`` for one segment's AEs (AE-major, quarters in order)."""
    n, k = quota.shape
    return pd.DataFrame(
        {
            "rep": np.repeat(staff["rep"].to_numpy(np.int64), k),
            "segment": np.repeat(staff["segment"].to_numpy(object), k),
            "quarter": np.tile(np.array(labels, dtype=object), n),
            "ramped_quota": quota.ravel(),
            "bookings": booked.ravel(),
            "attainment": _attainment(booked.ravel(), quota.ravel()),
        }
    )


def _attainment(booked: np.ndarray, quota: np.ndarray) -> np.ndarray:
    out = np.full(np.shape(quota), np.nan)
    np.divide(booked, quota, out=out, where=np.asarray(quota) > 0)
    return out


def _summary(aes: pd.DataFrame, won_value: float, plan: float) -> dict[str, float]:
    """The summary keys of the quota report (docs/outputs.md, "Quota keys")."""
    a = aes["attainment"].to_numpy(float)
    a = a[~np.isnan(a)]
    n = len(a)
    capacity = float(aes["ramped_quota"].sum())
    credited = float(aes["bookings"].sum())
    p10, p50, p90 = (float(v) for v in np.percentile(a, [10, 50, 90])) if n else (math.nan,) * 3
    return {
        "quota_capacity": capacity,
        "quota_plan": plan,
        "quota_capacity_to_plan": capacity / plan if plan > 0 else math.nan,
        "credited_bookings": credited,
        "uncredited_bookings": won_value - credited,
        "team_attainment": credited / capacity if capacity > 0 else math.nan,
        "aes_with_quota": n,
        "aes_at_quota": int(np.sum(a >= 1.0)),
        "aes_at_70pct": int(np.sum(a >= 0.7)),
        "share_aes_at_quota": float(np.mean(a >= 1.0)) if n else math.nan,
        "share_aes_at_70pct": float(np.mean(a >= 0.7)) if n else math.nan,
        "attainment_median": p50,
        "attainment_p10": p10,
        "attainment_p90": p90,
    }
