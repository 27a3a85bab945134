"""Small scenarios shared by the test modules: override lists that scale the baseline
company down, and a minimal scenario as plain data."""

from __future__ import annotations

import datetime as dt
from typing import Any

# A tenth of the baseline's lead volume, every source and mechanism still on.
TENTH_VOLUME = (
    "sources.inbound.leads_per_month=250",
    "sources.events.leads_per_month=40",
    "sources.partner.leads_per_month=8",
)
# ... and a tenth of its team: one SDR, one AE and one hire.
TENTH = (
    *TENTH_VOLUME,
    "handoff.sdr.count=1",
    "sales.ae.count=1",
    "sales.ae.hires=[{date=2027-04-01, count=1}]",
)

SPEED_TO_LEAD = {
    "contact_rate_immediate": 0.97,
    "knots_hours": [0.0, 0.0833, 0.5, 1.0, 2.0, 24.0],
    "odds_multiplier": [1.0, 1.0, 0.0476, 0.035, 0.032, 0.0039],
}


def tiny_scenario() -> dict[str, Any]:
    """A minimal valid scenario as plain data, started cold (tests of a mechanism see every lead's whole life)."""
    return {
        "start": "cold",
        "start_date": dt.date(2027, 1, 1),
        "horizon_days": 60,
        "personas": {"buyer": {"buying_intent": 0.8}},
        "sources": {"inbound": {"leads_per_day": 2.0, "persona_mix": {"buyer": 1.0}, "fit": 0.6}},
        "nurture": {
            "touch_interval_days": {"dist": "exponential", "mean": 5},
            "touch_lift": 0.3,
            "engagement_half_life_days": 30,
            "max_nurture_days": 60,
        },
        "qualification": {
            "mql": {"fit_weight": 0.5, "engagement_weight": 0.5, "threshold": 0.5},
            "sql": {"fit_weight": 0.5, "engagement_weight": 0.5, "threshold": 0.5},
        },
        "handoff": {
            "follow_up_rate": 0.8,
            "response_delay_days": 0.1,
            "speed_to_lead": SPEED_TO_LEAD,
            "sdr": {"count": 1, "work_days": 0.1},
        },
        "sales": {
            "opportunity_rate": 0.7,
            "win_rate": 0.3,
            "cycle_days": 20,
            "deal_size": 10000,
            "ae": {"count": 1, "max_open_opportunities": 3},
        },
    }
