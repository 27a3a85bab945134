"""A simulated run as CRM exports: opportunities (and leads) tables as Salesforce, HubSpot or a
spreadsheet would write them, seen on an as-of date.

Think of it as pulling a report from the CRM on ``as_of`` (a number of days since the start, or
a date: the end of that day, as ``funnelsim calibrate --as-of`` reads it): only what had happened by then
is in it, deals not closed by then are open (Salesforce still shows their *expected*
close date, which :mod:`.readers` ignores for open deals), and each dialect writes dates,
flags and stage labels its own way:

============  ===============================  ==========================  ==================
dialect       created / closed                 outcome                     amount
============  ===============================  ==========================  ==================
salesforce    ``2027-03-01T09:30:00.000+0000``  ``StageName``, ``IsWon``,   ``25000.0``
              / ``2027-04-15``                  ``IsClosed``
hubspot       ``2027-03-01 09:30``              ``dealstage`` (closedwon),  ``25000.00``
                                                ``hs_is_closed_won``
generic       ``03/01/2027`` (US)               ``status`` won/lost/open    ``$25,000.00``
============  ===============================  ==========================  ==================

AE-sourced (prospected) deals appear in the opportunities table only; the leads table
holds marketing's leads with their first MQL, SQL and opportunity dates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from funnelsim.run.result import RunResult

__all__ = ["export_leads", "export_opportunities"]

OPEN_STAGES_SF = ("Prospecting", "Qualification", "Needs Analysis", "Proposal/Price Quote", "Negotiation/Review")
OPEN_STAGES_HS = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin")
PROSPECTING = "prospecting"


def _stamp(start: dt.date, days: np.ndarray) -> pd.Series:
    return pd.Series(pd.Timestamp(start) + pd.to_timedelta(np.asarray(days, float), unit="D")).dt.round("s")


def _as_of_days(result: RunResult, as_of: float | dt.date | None) -> float:
    """The export's cut in days since start: a date counts whole (the end of that day, as ``calibrate --as-of``)."""
    if as_of is None:
        return float(result.scenario.horizon_days)
    if isinstance(as_of, dt.date):
        return float((as_of - result.scenario.start_date).days + 1)
    return float(as_of)


def export_opportunities(
    result: RunResult, dialect: str = "generic", as_of: float | dt.date | None = None
) -> pd.DataFrame:
    """One row per opportunity opened by ``as_of`` (days since start, or a date counted to its end; default:
    the horizon end).

    Parameters
    ----------
    result
        A simulated run.
    dialect
        ``"salesforce"``, ``"hubspot"`` or ``"generic"``.
    """
    cut = _as_of_days(result, as_of)
    leads = result.leads
    opp = leads[leads["opportunity"].notna() & (leads["opportunity"] <= cut)].reset_index(drop=True)
    closed = opp["closed"].notna() & (opp["closed"] <= cut)
    outcome = np.where(closed, opp["state"].astype(str).where(opp["state"].isin(["won", "lost"]), "open"), "open")
    start = result.scenario.start_date
    created = _stamp(start, opp["opportunity"].to_numpy())
    close_at = _stamp(start, opp["closed"].where(closed).to_numpy())
    ids = [f"OPP-{lead:06d}" for lead in opp["lead"]]
    owner = [f"AE-{ae:02d}" for ae in opp["ae"]]
    source = opp["source"].astype(str)
    segment = opp["persona"].astype(str)
    amount = opp["amount"].to_numpy(float)
    won = outcome == "won"
    is_closed = outcome != "open"
    d = _Deals(opp["lead"], outcome, created, close_at, ids, owner, source, segment, amount, won, is_closed, opp["ae"])
    writers = {"salesforce": _salesforce, "hubspot": _hubspot, "generic": _generic}
    if dialect in writers:
        return writers[dialect](d)
    raise ValueError(f"dialect must be salesforce, hubspot or generic, got {dialect!r}")


@dataclass(frozen=True)
class _Deals:
    """The columns every dialect's export is built from, one entry per opportunity."""

    lead: Any
    outcome: Any
    created: Any
    close_at: Any
    ids: list[str]
    owner: list[str]
    source: Any
    segment: Any
    amount: Any
    won: Any
    is_closed: Any
    ae: Any


def _salesforce(d: _Deals) -> pd.DataFrame:
    """Salesforce's opportunity report; an open deal's stage is a working stage picked by its lead id."""
    expected = (d.created + pd.Timedelta(days=60)).dt.strftime("%Y-%m-%d")
    stage = [
        "Closed Won" if o == "won" else "Closed Lost" if o == "lost" else OPEN_STAGES_SF[i % 5]
        for i, o in zip(d.lead, d.outcome, strict=True)
    ]
    return pd.DataFrame(
        {
            "Id": d.ids,
            "Name": [f"Deal {i}" for i in d.lead],
            "CreatedDate": d.created.dt.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "CloseDate": np.where(d.is_closed, d.close_at.dt.strftime("%Y-%m-%d"), expected),
            "StageName": stage,
            "Amount": np.round(d.amount, 2),
            "IsWon": np.where(d.won, "true", "false"),
            "IsClosed": np.where(d.is_closed, "true", "false"),
            "OwnerId": d.owner,
            "LeadSource": d.source,
            "Type": d.segment,
        }
    )


def _hubspot(d: _Deals) -> pd.DataFrame:
    """HubSpot's deals export."""
    stage = [
        "closedwon" if o == "won" else "closedlost" if o == "lost" else OPEN_STAGES_HS[i % 4]
        for i, o in zip(d.lead, d.outcome, strict=True)
    ]
    return pd.DataFrame(
        {
            "hs_object_id": [str(9_000_000 + lead) for lead in d.lead],
            "dealname": [f"Deal {i}" for i in d.lead],
            "createdate": d.created.dt.strftime("%Y-%m-%d %H:%M"),
            "closedate": np.where(d.is_closed, d.close_at.dt.strftime("%Y-%m-%d %H:%M"), ""),
            "dealstage": stage,
            "amount": [f"{a:.2f}" for a in d.amount],
            "hs_is_closed_won": np.where(d.won, "true", "false"),
            "hs_is_closed": np.where(d.is_closed, "true", "false"),
            "hubspot_owner_id": [str(100 + ae) for ae in d.ae],
            "hs_analytics_source": d.source,
            "dealtype": d.segment,
        }
    )


def _generic(d: _Deals) -> pd.DataFrame:
    """A spreadsheet's columns: US dates and dollar amounts."""
    return pd.DataFrame(
        {
            "id": d.ids,
            "created": d.created.dt.strftime("%m/%d/%Y"),
            "closed": np.where(d.is_closed, d.close_at.dt.strftime("%m/%d/%Y"), ""),
            "status": d.outcome,
            "amount": [f"${a:,.2f}" for a in d.amount],
            "owner": d.owner,
            "source": d.source,
            "segment": d.segment,
        }
    )


def export_leads(result: RunResult, dialect: str = "generic", as_of: float | dt.date | None = None) -> pd.DataFrame:
    """One row per marketing lead created by ``as_of``, with its first MQL, SQL and opportunity dates."""
    cut = _as_of_days(result, as_of)
    leads = result.leads
    rows = leads[(leads["source"].astype(str) != PROSPECTING) & (leads["created"] <= cut)].reset_index(drop=True)
    start = result.scenario.start_date
    seen = {k: rows[k].where(rows[k] <= cut) for k in ("mql", "sql", "opportunity")}
    if dialect == "salesforce":
        day = "%Y-%m-%d"
        return pd.DataFrame(
            {
                "Id": [f"00Q{lead:09d}" for lead in rows["lead"]],
                "CreatedDate": _stamp(start, rows["created"]).dt.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                "LeadSource": rows["source"].astype(str),
                "MQL_Date__c": _stamp(start, seen["mql"]).dt.strftime(day).fillna(""),
                "SQL_Date__c": _stamp(start, seen["sql"]).dt.strftime(day).fillna(""),
                "IsConverted": np.where(seen["opportunity"].notna(), "true", "false"),
                "ConvertedDate": _stamp(start, seen["opportunity"]).dt.strftime(day).fillna(""),
            }
        )
    if dialect == "hubspot":
        stamp = "%Y-%m-%d %H:%M"
        return pd.DataFrame(
            {
                "hs_object_id": [str(5_000_000 + lead) for lead in rows["lead"]],
                "createdate": _stamp(start, rows["created"]).dt.strftime(stamp),
                "hs_analytics_source": rows["source"].astype(str),
                "hs_lifecyclestage_marketingqualifiedlead_date": _stamp(start, seen["mql"])
                .dt.strftime(stamp)
                .fillna(""),
                "hs_lifecyclestage_salesqualifiedlead_date": _stamp(start, seen["sql"]).dt.strftime(stamp).fillna(""),
                "hs_lifecyclestage_opportunity_date": _stamp(start, seen["opportunity"]).dt.strftime(stamp).fillna(""),
            }
        )
    if dialect == "generic":
        us = "%m/%d/%Y"
        return pd.DataFrame(
            {
                "id": [f"L{lead}" for lead in rows["lead"]],
                "created": _stamp(start, rows["created"]).dt.strftime(us),
                "mql": _stamp(start, seen["mql"]).dt.strftime(us).fillna(""),
                "sql": _stamp(start, seen["sql"]).dt.strftime(us).fillna(""),
                "opportunity": _stamp(start, seen["opportunity"]).dt.strftime(us).fillna(""),
                "source": rows["source"].astype(str),
            }
        )
    raise ValueError(f"dialect must be salesforce, hubspot or generic, got {dialect!r}")
