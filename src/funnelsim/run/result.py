"""What one run produced: the event log, the level log, the roster, and per-lead outcomes.

A segmented scenario runs each segment as a world of its own (:meth:`RunResult.of_segments`
puts their results together): lead ids and each team's rep ids are offset so they stay
unique, the per-lead table gets a ``segment`` column, and so do the level log and the
roster, whose rows are then per team *and* segment (:mod:`funnelsim.run.metrics` sums the
segments' step functions for a team's totals).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import pandas as pd

from funnelsim.model.scenario import Scenario
from funnelsim.vocabulary import EVENTS, MILESTONES, OPEN_STATES, REP_TEAM, SEGMENT, STATE_AFTER, STATES, TEAMS

__all__ = ["Logs", "RunResult", "window"]


class Logs(Protocol):
    """What a run's recorder hands over: the event, level and roster logs as tables."""

    def events_frame(self) -> pd.DataFrame: ...
    def levels_frame(self) -> pd.DataFrame: ...
    def roster_frame(self) -> pd.DataFrame: ...


@dataclass(frozen=True)
class RunResult:
    """One replication of a scenario.

    Attributes
    ----------
    events
        The event log, one row per event (see ``docs/outputs.md``).
    levels
        One row per change of a team's queue or capacity.
    roster
        One row per change of a rep's productivity.
    attributes
        Per-lead traits: source, persona, fit, has_need, recycles.
    arr_ledger
        With a ``subscription`` scenario, one row per change of a customer's ARR
        (:func:`funnelsim.run.recurring.ledger_frame`); else None.
    billings
        With a ``subscription`` scenario, one row per invoice (``time, customer, amount``); else None.
    """

    scenario: Scenario
    seed: int
    replication: int
    events: pd.DataFrame
    levels: pd.DataFrame
    roster: pd.DataFrame
    attributes: pd.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)
    arr_ledger: pd.DataFrame | None = None
    billings: pd.DataFrame | None = None

    @classmethod
    def build(
        cls,
        scenario: Scenario,
        seed: int,
        replication: int,
        recorder: Logs,
        attributes: dict[str, np.ndarray],
        source_names: list[str],
        parameters: dict[str, float] | None = None,
        origin: float = 0.0,
    ) -> RunResult:
        """The result of a run whose logs ``recorder`` holds; ``origin``: the day of the log that
        is ``start_date`` (after a warm start's burn-in): only what happens from then on is kept
        (:func:`window`)."""
        persona_names = list(scenario.personas)
        frame = pd.DataFrame(
            {
                "lead": np.arange(len(attributes["fit"])),
                "source": pd.Categorical.from_codes(attributes["source"], categories=source_names),
                "persona": pd.Categorical.from_codes(attributes["persona"], categories=persona_names),
                "fit": attributes["fit"],
                "has_need": attributes["has_need"],
                "recycles": attributes["recycles"],
            }
        )
        metadata: dict[str, Any] = {
            "horizon_days": scenario.horizon_days,
            "start_date": scenario.start_date.isoformat(),
            # Rates drawn for this replication when the scenario gives them as distributions.
            "parameters": dict(parameters or {}),
            "start": scenario.start_mode,
        }
        events, levels, roster = recorder.events_frame(), recorder.levels_frame(), recorder.roster_frame()
        if origin > 0:
            handed_over = scenario.start_mode == "pipeline"
            events, levels, roster, frame, metadata["open_at_start"] = window(
                events, levels, roster, frame, origin, handed_over
            )
            metadata["burn_in_days"] = origin
        return cls(scenario, seed, replication, events, levels, roster, frame, metadata)

    @classmethod
    def of_segments(
        cls, scenario: Scenario, parts: dict[str, RunResult], parameters: dict[str, float] | None = None
    ) -> RunResult:
        """One result of a segmented ``scenario`` from its segments' runs (``parts``, by segment name).

        The events are merged in time order (at a tie, segment by segment in the order of
        ``parts``); a segment's leads, SDRs and AEs get ids after the previous segment's. A
        rate drawn per replication is reported at its path in the segmented scenario: the top
        level's (``parameters``, drawn once for every segment) at its own, a segment's at
        ``segments.<name>.<path>``; what was open at the start is summed.
        """
        names = list(parts)
        first = next(iter(parts.values()))
        sources = list(dict.fromkeys([*scenario.sources, *(c for p in parts.values() for c in _categories(p))]))
        events, levels, roster, attributes = [], [], [], []
        leads, reps = 0, dict.fromkeys(TEAMS, 0)
        for k, part in enumerate(parts.values()):
            offsets = _rep_offsets(part, reps)
            events.append(_shift_events(part.events, leads, offsets))
            attributes.append(
                part.attributes.assign(
                    lead=part.attributes["lead"].to_numpy() + leads,
                    source=part.attributes["source"].cat.set_categories(sources),
                    segment=np.full(len(part.attributes), k, dtype=np.int16),
                )
            )
            levels.append(part.levels.assign(segment=np.full(len(part.levels), k, dtype=np.int16)))
            shift = part.roster["team"].map(offsets).to_numpy(np.int64)
            roster.append(
                part.roster.assign(
                    rep=part.roster["rep"].to_numpy() + shift, segment=np.full(len(part.roster), k, dtype=np.int16)
                )
            )
            leads += len(part.attributes)
        metadata = _merged_metadata(first.metadata, parts)
        metadata["parameters"] = {**(parameters or {}), **metadata["parameters"]}
        return cls(
            scenario,
            first.seed,
            first.replication,
            _in_time_order(pd.concat(events, ignore_index=True)),
            _segment_column(_in_time_order(pd.concat(levels, ignore_index=True)), names),
            _segment_column(_in_time_order(pd.concat(roster, ignore_index=True)), names),
            _segment_column(pd.concat(attributes, ignore_index=True), names),
            metadata,
        )

    @cached_property
    def leads(self) -> pd.DataFrame:
        """One row per lead: traits, first time at each milestone, final state, deal amount, AE."""
        ev = self.events
        out = self.attributes.copy()
        n = len(out)
        created = np.full(n, np.nan)
        is_created = (ev["event"] == "created").to_numpy()
        created[ev["lead"].to_numpy()[is_created]] = ev["time"].to_numpy()[is_created]
        out["created"] = created
        for name in MILESTONES:
            rows = ev[ev["event"] == name]
            first = rows.drop_duplicates("lead", keep="first")
            col = np.full(n, np.nan)
            col[first["lead"].to_numpy()] = first["time"].to_numpy()
            out[name] = col
        out["closed"] = np.fmin(out["won"].to_numpy(), out["lost"].to_numpy())
        out = out.drop(columns=["won", "lost"])
        last = ev.drop_duplicates("lead", keep="last")
        states = np.array(STATES)
        state_code = {s: i for i, s in enumerate(STATES)}
        final = np.zeros(n, dtype=np.int16)
        final[last["lead"].to_numpy()] = [state_code[STATE_AFTER[e]] for e in last["event"].astype(str)]
        out["state"] = pd.Categorical.from_codes(final, categories=list(states))
        # A deal's amount and AE: its opportunity's, or, for a deal opened before the run (a warm
        # start's), its close's (a close carries the amount at stake and the AE).
        closes = ev[ev["event"].isin(("won", "lost"))].drop_duplicates("lead", keep="last")
        deals = pd.concat([closes, ev[ev["event"] == "opportunity"]]).drop_duplicates("lead", keep="last")
        amount = np.full(n, np.nan)
        amount[deals["lead"].to_numpy()] = deals["value"].to_numpy()
        out["amount"] = amount
        ae = np.full(n, -1, dtype=np.int64)
        ae[deals["lead"].to_numpy()] = deals["rep"].to_numpy()
        out["ae"] = ae
        return out


def _categories(part: RunResult) -> list[str]:
    return [str(c) for c in part.attributes["source"].cat.categories]


def _rep_offsets(part: RunResult, reps: dict[str, int]) -> dict[str, int]:
    """Each team's id offset for ``part``'s reps (the reps of the segments before it), and ``reps``
    moved past the highest id of ``part``'s roster or events (a rep gone before a warm start's day 0
    may still close deals: it is in the events, not the roster)."""
    offsets = dict(reps)
    rep_team = _rep_team(part.events)
    for team in TEAMS:
        in_roster = part.roster.loc[part.roster["team"] == team, "rep"].to_numpy(np.int64)
        in_events = part.events["rep"].to_numpy(np.int64)[rep_team == team]
        reps[team] += int(max(in_roster.max(initial=-1), in_events.max(initial=-1))) + 1
    return offsets


def _rep_team(events: pd.DataFrame) -> np.ndarray:
    """The team of each event's rep (:data:`~funnelsim.vocabulary.REP_TEAM`; ``""`` where it names none)."""
    lookup = np.array([REP_TEAM.get(name, "") for name in EVENTS], dtype=object)
    event = events["event"]
    if isinstance(event.dtype, pd.CategoricalDtype) and list(event.cat.categories) == list(EVENTS):
        codes = event.cat.codes.to_numpy()  # the engine's log: no strings to compare
    else:
        codes = pd.Categorical(event.astype(str), categories=list(EVENTS)).codes
    return lookup[codes]


def _shift_events(events: pd.DataFrame, leads: int, offsets: dict[str, int]) -> pd.DataFrame:
    rep_team = _rep_team(events)
    rep = events["rep"].to_numpy().copy()
    for team, offset in offsets.items():
        mine = (rep_team == team) & (rep >= 0)
        rep[mine] += offset
    return events.assign(lead=events["lead"].to_numpy() + leads, rep=rep)


def _in_time_order(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("time", kind="stable").reset_index(drop=True)


def _segment_column(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """``frame`` with its segment numbers as the segments' names (categorical)."""
    return frame.assign(**{SEGMENT: pd.Categorical.from_codes(frame[SEGMENT].to_numpy(), categories=names)})


def _merged_metadata(first: dict[str, Any], parts: dict[str, RunResult]) -> dict[str, Any]:
    metadata = {key: value for key, value in first.items() if key not in ("parameters", "open_at_start")}
    metadata["parameters"] = {
        f"segments.{name}.{path}": value
        for name, part in parts.items()
        for path, value in part.metadata.get("parameters", {}).items()
    }
    metadata["segments"] = list(parts)
    if "open_at_start" in first:
        totals: dict[str, float] = {}
        for part in parts.values():
            for key, value in part.metadata["open_at_start"].items():
                totals[key] = totals.get(key, 0) + value
        metadata["open_at_start"] = totals
    return metadata


def window(
    events: pd.DataFrame,
    levels: pd.DataFrame,
    roster: pd.DataFrame,
    attributes: pd.DataFrame,
    origin: float,
    handed_over: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """The logs of a warm run from ``origin`` on, re-timed so that ``origin`` is day 0.

    Events before ``origin`` are dropped; leads with no event left are dropped and the
    others renumbered in order (a lead carried over from the burn-in keeps its traits
    but has no ``created`` row). A team's level and a rep's productivity at ``origin``
    become rows at time 0 (a rep on staff then "joined" at 0; one gone by then is
    left out). Also returns what was open at ``origin``: ``opportunities`` and their
    ``value``, and ``leads`` in an open state (:data:`~funnelsim.vocabulary.OPEN_STATES`).

    ``handed_over`` (a pipeline start): the SQLs of the burn-in went to the CRM's history,
    so they are not open leads, and the open opportunities are the pipeline's, opened at
    ``origin``.
    """
    time = events["time"].to_numpy(float)
    inside = time >= origin
    opening = _open_at(events[~inside], tuple(s for s in OPEN_STATES if s != "sql") if handed_over else OPEN_STATES)
    if handed_over:
        crm = events[(time == origin) & (events["event"] == "opportunity").to_numpy()]
        opening |= {"opportunities": len(crm), "value": float(crm["value"].sum())}
    kept = events[inside]
    keep = np.unique(kept["lead"].to_numpy())
    new_id = np.full(len(attributes), -1, dtype=np.int64)
    new_id[keep] = np.arange(len(keep))
    kept = kept.assign(time=kept["time"].to_numpy(float) - origin, lead=new_id[kept["lead"].to_numpy()])
    attributes = attributes.iloc[keep].assign(lead=np.arange(len(keep))).reset_index(drop=True)
    return kept.reset_index(drop=True), _levels_from(levels, origin), _roster_from(roster, origin), attributes, opening


def _open_at(before: pd.DataFrame, states: tuple[str, ...] = OPEN_STATES) -> dict[str, float]:
    """What the events ``before`` leave open: leads in ``states``, open opportunities and their value."""
    # A lead's last event in time order; its creation first at a tie in time.
    ev = before.assign(later=(before["event"] != "created").to_numpy())
    ev = ev.sort_values(["lead", "time", "later"], kind="stable").drop_duplicates("lead", keep="last")
    state = ev["event"].astype(str).map(STATE_AFTER)
    deal = (state == "opportunity").to_numpy()
    return {
        "leads": int(state.isin(states).sum()),
        "opportunities": int(deal.sum()),
        "value": float(ev["value"].to_numpy(float)[deal].sum()),
    }


def _levels_from(levels: pd.DataFrame, origin: float) -> pd.DataFrame:
    """Each team's level log from ``origin`` on, re-timed, its level at ``origin`` a row at 0."""
    before = levels[levels["time"].to_numpy(float) < origin].drop_duplicates("team", keep="last")
    after = levels[levels["time"].to_numpy(float) >= origin]
    out = pd.concat([before.assign(time=origin), after]).sort_values("time", kind="stable")
    return out.assign(time=out["time"].to_numpy(float) - origin).reset_index(drop=True)


def _roster_from(roster: pd.DataFrame, origin: float) -> pd.DataFrame:
    """The roster from ``origin`` on, re-timed: reps on staff at ``origin`` "joined" at 0."""
    early = roster["time"].to_numpy(float) < origin
    last = roster[early].drop_duplicates(["team", "rep"], keep="last")
    on_staff = last[last["change"] != "left"].assign(time=origin, change="joined")
    out = pd.concat([on_staff, roster[~early]]).sort_values("time", kind="stable")
    return out.assign(time=out["time"].to_numpy(float) - origin).reset_index(drop=True)
