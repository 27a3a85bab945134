"""The funnel's vocabulary: its stages, who owns them, and the closed set of events a lead goes through.

Stages, top to bottom: ``lead`` (engaged, in nurture) → ``mql`` (marketing-qualified) →
``sql`` (sales-accepted) → ``opportunity`` → ``won`` | ``lost``. Marketing owns the
first two, sales the rest (:data:`OWNER`). Every other module names stages and events
from here, so renaming or adding one is a change in one place.

The event log: one flat record per thing that happens to a lead.

Every record is ``(time, lead, event, rep, value)``:

* ``time``  -- days since the scenario's ``start_date`` (float),
* ``lead``  -- lead id (int, 0-based, unique within a run),
* ``event`` -- one of :data:`EVENTS` (a closed set, below),
* ``rep``   -- id of the SDR or AE involved, ``-1`` when none,
* ``value`` -- money for ``opportunity`` / ``won`` / ``lost`` (deal amount), the
  response delay in days for ``sdr_start``, otherwise NaN.

The state of a lead at any time is given by its last event so far
(:data:`STATE_AFTER`); so every lead is in exactly one state at every moment.

The level log has one row per change of a team's queue or capacity:
``(time, team, queue, busy, capacity)``, with ``team`` in ``{"sdr", "ae"}``.
The roster has one row per change of a rep's productivity:
``(time, team, rep, change, productivity)`` with ``change`` in
``{"joined", "ramp", "left"}`` (a new hire may join at productivity 0 while ramping).
"""

from __future__ import annotations

__all__ = [
    "EVENTS",
    "EVENT_CODE",
    "LEAKAGE_REASONS",
    "MILESTONES",
    "OPEN_STATES",
    "OWNER",
    "REP_TEAM",
    "SEGMENT",
    "STAGES",
    "STATES",
    "STATE_AFTER",
    "TEAMS",
    "TERMINAL_STATES",
]

STAGES: tuple[str, ...] = ("lead", "mql", "sql", "opportunity")
"""The open stages, in funnel order (a lead is in one of these until it is won, lost or leaks)."""

OWNER: dict[str, str] = {"lead": "marketing", "mql": "marketing", "sql": "sales", "opportunity": "sales"}
"""The team that owns each stage: marketing attracts and nurtures to the MQL, sales takes it from there."""

MILESTONES: tuple[str, ...] = ("mql", "sql", "opportunity", "won", "lost")
"""The events whose first time per lead the lead table reports."""

EVENTS: tuple[str, ...] = (
    "created",  # a lead enters the funnel (nurture, or straight to hand-off)
    "dormant",  # never reached the MQL bar within max_nurture_days
    "mql",  # marketing's score reached its threshold: handed to sales
    "not_followed_up",  # sales never worked this MQL
    "sdr_start",  # an SDR starts working the MQL (value: delay since MQL, days)
    "sdr_abandoned",  # went cold waiting for an SDR
    "unreached",  # worked too late / could not be reached (speed-to-lead decay)
    "rejected",  # reached, but below sales' bar or no buying need
    "recycled",  # sent back to nurture after unreached / rejected / disqualified
    "sql",  # passed sales' bar: waits for an AE
    "ae_abandoned",  # went cold waiting for a free AE
    "disqualified",  # the AE's discovery found no opportunity
    "opportunity",  # an AE opened a deal (value: deal amount)
    "won",  # deal closed won (value: revenue)
    "lost",  # deal closed lost (value: amount that was at stake)
    "sdr_queued",  # picked up when every SDR was busy: joins the SDR queue (last: codes stay stable)
)
EVENT_CODE = {name: i for i, name in enumerate(EVENTS)}

STATE_AFTER: dict[str, str] = {
    "created": "lead",
    "recycled": "lead",
    "mql": "mql",
    "sdr_start": "mql",
    "sql": "sql",
    "opportunity": "opportunity",
    "dormant": "dormant",
    "not_followed_up": "not_followed_up",
    "sdr_abandoned": "sdr_abandoned",
    "unreached": "unreached",
    "rejected": "rejected",
    "ae_abandoned": "ae_abandoned",
    "disqualified": "disqualified",
    "won": "won",
    "lost": "lost",
    "sdr_queued": "mql",
}
"""The state a lead is in after each event; the first four are open (still in the funnel)."""

OPEN_STATES = STAGES
TERMINAL_STATES = tuple(s for s in dict.fromkeys(STATE_AFTER.values()) if s not in OPEN_STATES)
STATES = OPEN_STATES + TERMINAL_STATES

TEAMS: tuple[str, ...] = ("sdr", "ae")
"""The teams of the level log, in the order of their index in :class:`Recorder`'s flat list."""

SEGMENT = "segment"
"""The column naming the segment of a lead (per-lead table), of a team's row (level log) and of a rep
(roster) in the results of a segmented scenario; absent from an unsegmented one's."""

REP_TEAM: dict[str, str] = {
    "sdr_start": "sdr",
    "unreached": "sdr",
    "rejected": "sdr",
    "sql": "sdr",
    "disqualified": "ae",
    "opportunity": "ae",
    "won": "ae",
    "lost": "ae",
}
"""The team of the rep an event names in its ``rep`` column (the other events name none)."""


LEAKAGE_REASONS: tuple[tuple[str, str, str], ...] = (
    ("never_mql_dormant", "dormant", "lead"),
    ("not_followed_up", "not_followed_up", "mql"),
    ("sdr_abandoned", "sdr_abandoned", "mql"),
    ("lost_to_slow_response", "unreached", "mql"),
    ("rejected_by_sales", "rejected", "mql"),
    ("disqualified_by_ae", "disqualified", "sql"),
    ("ae_abandoned", "ae_abandoned", "sql"),
    ("lost_deal", "lost", "opportunity"),
)
"""Why leads left the funnel: ``(reason, final state, stage it left from)``."""
