"""What one run produced: the event log, the level log, the roster, and per-lead outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import pandas as pd

from funnelsim.model.scenario import Scenario
from funnelsim.vocabulary import MILESTONES, STATE_AFTER, STATES

__all__ = ["Logs", "RunResult"]


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
    """

    scenario: Scenario
    seed: int
    replication: int
    events: pd.DataFrame
    levels: pd.DataFrame
    roster: pd.DataFrame
    attributes: pd.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)

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
    ) -> RunResult:
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
        return cls(
            scenario=scenario,
            seed=seed,
            replication=replication,
            events=recorder.events_frame(),
            levels=recorder.levels_frame(),
            roster=recorder.roster_frame(),
            attributes=frame,
            metadata={
                "horizon_days": scenario.horizon_days,
                "start_date": scenario.start_date.isoformat(),
                # Rates drawn for this replication when the scenario gives them as distributions.
                "parameters": dict(parameters or {}),
            },
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
        deals = ev[ev["event"] == "opportunity"].drop_duplicates("lead", keep="last")
        amount = np.full(n, np.nan)
        amount[deals["lead"].to_numpy()] = deals["value"].to_numpy()
        out["amount"] = amount
        ae = np.full(n, -1, dtype=np.int64)
        ae[deals["lead"].to_numpy()] = deals["rep"].to_numpy()
        out["ae"] = ae
        return out
