r"""What a plan may change: the levers, their limits, and the edits that apply them to a scenario.

A candidate plan is the scenario with more leads, ``a`` extra AEs and ``n`` SDRs in all:

- **leads**: source ``s`` in month ``m`` brings its volume times
  :math:`1 + (k - 1)\, w_s\, v_m`, ``k`` the lead multiplier (``1 <= k <=``
  :data:`MAX_LEAD_MULTIPLIER`), ``w_s`` and ``v_m`` the weights of a :class:`LeadShape`
  (1 for every source and month by default: every volume times ``k``, seasonality and
  mix kept). A source with weight 0 keeps its volume; a month with weight 0 (e.g. before
  marketing can ramp up a campaign) too. Uniform months scale the source's volume; other
  months are written as the source's ``month_multipliers``.
- **AEs**: ``a`` (``0 <= a <=`` :data:`MAX_EXTRA_AES`) join as one hire on the hire date
  (by default the first day simulated) and ramp as ``sales.ae.ramp`` says.
- **SDRs**: the ``n - count`` SDRs above today's join as one hire on the same date and
  ramp as ``handoff.sdr.ramp`` says.

**Segments** (a segmented scenario: each segment has its own SDRs and AEs, its
territory): ``a`` and ``n`` are the totals over the segments, split so that the busiest
team is as little busy as it can be: each extra head in turn goes to the segment with the
largest need per head, :math:`k\, d_i / h_i`, ``d_i`` the segment's analytic need at
today's volume (:class:`SegmentNeeds`: its busiest month's ``aes_needed`` or
``sdrs_needed``, which grow with the lead volume ``k``) and ``h_i`` its heads so far
(today's plus those given); ties go to the larger need, then to the segment written
first. Each segment's hires are written to ``segments.<name>.sales.ae.hires`` and
``segments.<name>.handoff.sdr.hires``. With ``n`` the sum of the segments' own sizings
(:func:`~.search.sdrs_for`), every desk is sized to its own flow.

Hires leave at the team's ``attrition_per_year`` like everyone else (and are backfilled
if the team backfills). Edits are dotted paths, so a plan is written back as a scenario
file that validates again.

**Budget** (a scenario whose sources have spend curves, :mod:`funnelsim.model.spend`):
there the lead lever is the marketing budget. ``k`` multiplies today's monthly spend
``B_0`` on the curve channels (those ``--lead-sources`` names, all by default), and
``k B_0`` is split between them in the mix that earns the most
(:func:`funnelsim.model.spend.allocate`, each channel's leads weighed by
:attr:`LeadShape.values`, their expected revenue); each channel's volume is then what
its spend buys on its curve. ``k = 1`` is today's spend in today's mix. Sources without
a curve keep their volume. ``--lever budget`` names this lever and needs spend curves;
``leads`` and ``both`` use it too on such a scenario.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from funnelsim.model.loading import parse_scenario
from funnelsim.model.paths import set_paths
from funnelsim.model.scenario import Scenario
from funnelsim.model.spend import allocate
from funnelsim.studies.planner.errors import PlanError

__all__ = [
    "LEVERS",
    "LEVER_ALIASES",
    "MAX_EXTRA_AES",
    "MAX_EXTRA_SDRS",
    "MAX_LEAD_MULTIPLIER",
    "LeadShape",
    "Lever",
    "SegmentNeeds",
    "apply_changes",
    "budget_of",
    "frame_months",
    "lever_name",
    "planned_changes",
    "spend_channels",
    "split_heads",
    "team_size",
]

Lever = Literal["leads", "reps", "both", "budget"]
LEVERS: tuple[Lever, ...] = ("leads", "reps", "both", "budget")
LEVER_ALIASES: dict[str, Lever] = {"aes": "reps"}
"""Other names accepted for a lever: ``aes`` is ``reps`` (AEs, with SDRs sized to the flow)."""
MAX_LEAD_MULTIPLIER = 50.0
"""The largest lead volume a plan may ask for, in multiples of the scenario's."""
MAX_EXTRA_AES = 200
"""The most AEs a plan may hire on top of the scenario's."""
MAX_EXTRA_SDRS = 200
"""The most SDRs a plan may hire on top of the scenario's."""


def lever_name(text: str) -> Lever:
    """The lever ``text`` names (``aes`` is ``reps``); :class:`PlanError` naming ``--lever`` otherwise."""
    name = LEVER_ALIASES.get(text, text)
    if name not in LEVERS:
        names = ", ".join([*LEVERS, *LEVER_ALIASES])
        raise PlanError(f"--lever must be one of {names}, got {text!r}")
    return typing.cast(Lever, name)


@dataclass(frozen=True)
class LeadShape:
    """Where the lead lever puts extra leads: a weight per source and per month (``"YYYY-MM"``).

    ``None`` means weight 1 everywhere; a mapping gives the weights of the sources or
    months it lists and 0 to the others. On a scenario with spend curves the lead lever is
    the budget: a source weight says whether a channel takes part (0 or 1), and ``values``
    (what one lead of each curve channel earns; :func:`~funnelsim.studies.planner.plan`
    sets them) decides the mix (module docstring); without ``values`` every channel's
    spend is scaled alike.
    """

    sources: Mapping[str, float] | None = None
    months: Mapping[str, float] | None = None
    values: Mapping[str, float] | None = None

    @classmethod
    def parse(cls, sources: str | None, months: str | None) -> LeadShape:
        """From ``--lead-sources inbound=1,events=0.5`` (a bare name weighs 1) and ``--lead-months``
        ``2027-03:2027-12`` (weight 1 in the range) or ``2027-03=0.5,2027-04=1``."""
        return cls(
            None if sources is None else _weights(sources, "--lead-sources"),
            None if months is None else _month_weights(months),
        )

    @property
    def uniform(self) -> bool:
        """Whether every source and month gets weight 1 (every volume times ``k``)."""
        return self.sources is None and self.months is None

    def source_weight(self, name: str) -> float:
        """The weight of source ``name``."""
        return 1.0 if self.sources is None else float(self.sources.get(name, 0.0))

    def month_weight(self, month: str) -> float:
        """The weight of month ``month`` (``"YYYY-MM"``)."""
        return 1.0 if self.months is None else float(self.months.get(month, 0.0))

    def check(self, scenario: Scenario, months: list[str]) -> None:
        """Refuse weights that name no source of ``scenario`` or no month of ``months`` (the simulated ones),
        and, with spend curves, month weights and source weights other than 0 and 1."""
        if self.sources is not None:
            for name in self.sources:
                if name not in scenario.sources:
                    hint = difflib.get_close_matches(name, list(scenario.sources), n=1)
                    known = f"did you mean {hint[0]!r}?" if hint else f"the sources are {', '.join(scenario.sources)}"
                    raise PlanError(f"--lead-sources: no source {name!r}; {known}")
            if not any(self.source_weight(name) > 0 for name in scenario.sources):
                raise PlanError("--lead-sources: every weight is 0, so the lead lever would change nothing")
        if self.months is not None:
            outside = [m for m in self.months if m not in months]
            if outside:
                raise PlanError(
                    f"--lead-months: {outside[0]} is not a simulated month ({months[0]} to {months[-1]}, "
                    "the lead-in and the period)"
                )
            if not any(self.month_weight(m) > 0 for m in months):
                raise PlanError("--lead-months: every weight is 0, so the lead lever would change nothing")
        if spend_channels(scenario):
            self._check_budget(scenario)

    def _check_budget(self, scenario: Scenario) -> None:
        """The lead lever as a budget: the same budget every month, over whole channels on a spend curve."""
        if self.months is not None:
            raise PlanError(
                "--lead-months: with spend curves the lead lever is the monthly budget, spent alike every month; "
                "leave --lead-months out"
            )
        if self.sources is None:
            return
        odd = [name for name, w in self.sources.items() if w not in (0.0, 1.0)]
        if odd:
            raise PlanError(
                f"--lead-sources: with spend curves the budget goes where it earns most; name the channels it may "
                f"use (weight 1) or leave out (0), not {odd[0]}={self.sources[odd[0]]:g}"
            )
        if not spend_channels(scenario, self):
            raise PlanError(
                f"--lead-sources: none of the sources named has a spend curve; the budget is spent on "
                f"{', '.join(spend_channels(scenario))}"
            )


def spend_channels(scenario: Scenario, shape: LeadShape | None = None) -> list[str]:
    """The sources on a spend curve (that ``shape`` lets the budget use), in the scenario's order."""
    return [
        name
        for name, source in scenario.sources.items()
        if source.curve is not None and (shape is None or shape.source_weight(name) > 0)
    ]


def budget_of(scenario: Scenario, shape: LeadShape | None = None) -> float:
    """Today's spend a month on the channels of :func:`spend_channels`."""
    return float(sum(scenario.sources[name].spend_per_month or 0.0 for name in spend_channels(scenario, shape)))


@dataclass(frozen=True)
class SegmentNeeds:
    """Each segment's analytic need of AEs and SDRs at today's lead volume (its busiest month in the period),
    by which a segmented plan splits its extra heads (module docstring)."""

    aes: Mapping[str, float]
    sdrs: Mapping[str, float]


def team_size(scenario: Scenario, team: Literal["ae", "sdr"]) -> int:
    """Today's AEs or SDRs (``count``), summed over the segments of a segmented scenario."""
    views = [scenario.view_of(name) for name in scenario.segment_names] or [scenario]
    return sum(v.sales.ae.count if team == "ae" else v.handoff.sdr.count for v in views)


def split_heads(extra: int, have: Mapping[str, int], need: Mapping[str, float]) -> dict[str, int]:
    """``extra`` heads split by need per head: each in turn to the segment with the largest ``need / heads``
    (no heads yet and some need: first), ties to the larger need, then to the one listed first."""
    names = list(have)
    given = dict.fromkeys(names, 0)

    def load(i: int) -> tuple[float, float, int]:
        name = names[i]
        heads, wanted = have[name] + given[name], need[name]
        per_head = wanted / heads if heads > 0 else (math.inf if wanted > 0 else 0.0)
        return per_head, wanted, -i

    for _ in range(extra):
        given[names[max(range(len(names)), key=load)]] += 1
    return given


def _segment_hires(
    scenario: Scenario, extra_aes: int, sdrs: int | None, k: float, needs: SegmentNeeds, when: str
) -> dict[str, Any]:
    """The hires of a segmented plan: ``extra_aes`` AEs and the SDRs above today's ``sdrs`` split between the
    segments by :func:`split_heads`, each segment's hires written to its own team."""
    changes: dict[str, Any] = {}
    views = {name: scenario.view_of(name) for name in scenario.segment_names}
    teams = (
        ("sales.ae", extra_aes, {n: v.sales.ae for n, v in views.items()}, needs.aes),
        (
            "handoff.sdr",
            max(0, (sdrs or 0) - team_size(scenario, "sdr")),
            {n: v.handoff.sdr for n, v in views.items()},
            needs.sdrs,
        ),
    )
    for path, extra, team, need in teams:
        split = split_heads(extra, {n: t.count for n, t in team.items()}, {n: k * need[n] for n in team})
        for name, count in split.items():
            if count:
                hires = [{"date": h.date.isoformat(), "count": h.count} for h in team[name].hires]
                changes[f"segments.{name}.{path}.hires"] = [{"date": when, "count": count}, *hires]
    return changes


def _weights(text: str, flag: str) -> dict[str, float]:
    """``"a=1,b=0.5,c"`` as ``{"a": 1, "b": 0.5, "c": 1}``."""
    out: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise PlanError(f"{flag}: expected NAME[=WEIGHT],... got {text!r}")
        name, sep, value = item.partition("=")
        try:
            weight = float(value) if sep else 1.0
        except ValueError:
            raise PlanError(f"{flag}: the weight of {name.strip()!r} must be a number, got {value!r}") from None
        if not (weight >= 0 and weight < float("inf")):
            raise PlanError(f"{flag}: the weight of {name.strip()!r} must be >= 0, got {value!r}")
        out[name.strip()] = weight
    return out


def _month_weights(text: str) -> dict[str, float]:
    """``"2027-03:2027-12"`` (weight 1 in the range) or ``"2027-03=0.5,2027-04"``."""
    if ":" in text and "=" not in text:
        first, _, last = text.partition(":")
        start, end = _month(first.strip()), _month(last.strip())
        if end < start:
            raise PlanError(f"--lead-months: the range ends ({last.strip()}) before it starts ({first.strip()})")
        out, day = {}, start
        while day <= end:
            out[f"{day.year:04d}-{day.month:02d}"] = 1.0
            day = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
        return out
    weights = _weights(text, "--lead-months")
    for key in weights:
        _month(key)
    return weights


def _month(text: str) -> dt.date:
    try:
        if len(text) != 7:
            raise ValueError(text)
        return dt.date.fromisoformat(f"{text}-01")
    except ValueError:
        raise PlanError(f"--lead-months: months are YYYY-MM (e.g. 2027-03), got {text!r}") from None


def frame_months(scenario: Scenario) -> list[str]:
    """The months (``"YYYY-MM"``) the scenario's horizon touches, in order."""
    months, day = [], dt.date(scenario.start_date.year, scenario.start_date.month, 1)
    while day < scenario.end_date:
        months.append(f"{day.year:04d}-{day.month:02d}")
        day = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return months


def apply_changes(scenario: Scenario, changes: dict[str, Any]) -> Scenario:
    """``scenario`` with dotted-path values replaced (see :func:`planned_changes`), validated again."""
    return parse_scenario(set_paths(scenario.to_dict(), changes), f"{scenario.name} (planned)")


def planned_changes(
    scenario: Scenario,
    lead_multiplier: float = 1.0,
    extra_aes: int = 0,
    sdrs: int | None = None,
    *,
    shape: LeadShape | None = None,
    hire_date: dt.date | None = None,
    needs: SegmentNeeds | None = None,
) -> dict[str, Any]:
    """The dotted-path edits that turn a framed scenario into a candidate plan.

    ``lead_multiplier`` is ``k`` of the module docstring, shaped by ``shape`` (uniform
    by default); ``extra_aes`` join as one hire on ``hire_date`` (default the scenario's
    start) and ramp; ``sdrs`` is the SDR team size, the SDRs above today's hired on the
    same date. A segmented scenario's heads are split between its segments by ``needs``
    (needed as soon as a head is added).
    """
    when = (hire_date or scenario.start_date).isoformat()
    changes = _lead_changes(scenario, lead_multiplier, shape or LeadShape())
    if scenario.segments:  # heads join the segments' own teams, never the top level's (which they inherit)
        if extra_aes or (sdrs or 0) > team_size(scenario, "sdr"):
            if needs is None:
                raise ValueError("a segmented scenario's heads are split by its segments' needs: pass needs")
            changes.update(_segment_hires(scenario, extra_aes, sdrs, lead_multiplier, needs, when))
        return changes
    if extra_aes:
        hires = [{"date": h.date.isoformat(), "count": h.count} for h in scenario.sales.ae.hires]
        changes["sales.ae.hires"] = [{"date": when, "count": extra_aes}, *hires]
    sdr = scenario.handoff.sdr
    if sdrs is not None and sdrs > sdr.count:
        hires = [{"date": h.date.isoformat(), "count": h.count} for h in sdr.hires]
        changes["handoff.sdr.hires"] = [{"date": when, "count": sdrs - sdr.count}, *hires]
    return changes


def _lead_changes(scenario: Scenario, k: float, shape: LeadShape) -> dict[str, Any]:
    """The volume edits of lead multiplier ``k`` shaped by ``shape``."""
    changes: dict[str, Any] = {}
    if k == 1.0:
        return changes
    if spend_channels(scenario):
        return _spend_changes(scenario, k, shape)
    months = frame_months(scenario) if shape.months is not None else []
    for name, source in scenario.sources.items():
        w = shape.source_weight(name)
        if w == 0:
            continue
        if shape.months is None:
            factor = k if w == 1 else max(0.0, 1 + (k - 1) * w)  # below k = 1 only in the analytic search
            for key in ("leads_per_month", "leads_per_week", "leads_per_day"):
                value = getattr(source, key)
                if value is not None:
                    changes[f"sources.{name}.{key}"] = value * factor
            continue
        multipliers = dict(source.month_multipliers)
        for month in months:
            v = shape.month_weight(month)
            if v != 0:
                multipliers[month] = multipliers.get(month, 1.0) * max(0.0, 1 + (k - 1) * w * v)
        changes[f"sources.{name}.month_multipliers"] = multipliers
    return changes


def _spend_changes(scenario: Scenario, k: float, shape: LeadShape) -> dict[str, Any]:
    """The spend and volume edits of budget multiplier ``k``: ``k`` times today's budget in its best mix
    (``shape.values``; today's mix scaled without them); each channel's volume is what its spend buys."""
    names = spend_channels(scenario, shape)
    today = {name: float(scenario.sources[name].spend_per_month or 0.0) for name in names}
    curves = {name: scenario.sources[name].curve for name in names}
    if shape.values is None:
        spend = {name: k * today[name] for name in names}
    else:
        values = {name: float(shape.values[name]) for name in names}
        spend = allocate({n: c for n, c in curves.items() if c is not None}, values, k * sum(today.values())).spend
    return {f"sources.{name}.spend_per_month": spend[name] for name in names}  # the curve gives the volume
