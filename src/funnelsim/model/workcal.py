r"""The working calendar: when a team works, and its working time as a map of calendar time.

A team works in its ``working_hours`` (local wall-clock time of its time zone) on the
calendar's ``business_days``, except on ``holidays``. Day 0 of a run is midnight of
``start_date`` in ``calendar.time_zone``, and time ``t`` (days) is the instant ``t × 24 h``
of *elapsed* time after it, so a team's 09:00 falls an hour earlier in ``t`` once summer
time starts: local hours are turned into instants by the time zone rules
(:mod:`zoneinfo`), day by day, never by adding a fixed offset.

Working time
    With the team's working intervals ``[o_i, c_i)`` (days since day 0, sorted, disjoint,
    adjacent ones merged) and ``B_i = Σ_{k<i} (c_k − o_k)`` the working time before
    interval ``i``, the working time elapsed by ``t`` is

    .. math:: W(t) = B_i + \min(\max(t - o_i, 0),\ c_i - o_i), \quad i = \max\{k : o_k \le t\}

    (0 before the first opening): piecewise linear, slope 1 in working hours, flat
    outside them. Its inverse takes, for a level ``W`` holds over a closed stretch, the
    *next opening*:

    .. math:: W^{-1}(w) = o_j + (w - B_j), \quad j = \min\{k : B_k + (c_k - o_k) > w\}

    so ``W(W^{-1}(w)) = w`` for every ``w ≥ 0``, ``W^{-1}(W(t)) = t`` when ``t`` is in
    working hours, and the next opening when it is not. Something that takes ``d`` days of
    working time from ``t`` is done at ``W^{-1}(W(t) + d)``, always in working hours: a
    lead arriving on Friday at 23:00 with a 5-minute working delay is picked up on Monday
    at 09:05 (Tuesday if Monday is a holiday). Working time is counted in days of 24 hours
    of work: an 8-hour working day adds 1/3, 5 working minutes are ``5 / 1440``.

    The map is precomputed as arrays over the run (burn-in included) and evaluated with
    ``searchsorted``, for all leads at once in the fast engine (:meth:`WorkingTime.working`,
    :meth:`WorkingTime.calendar`) or one at a time in the event loop (``*_one``). Past the
    end of the run it grows like calendar time (a virtual interval ``[end, ∞)``), so every
    time it gives is finite and those past the horizon are never reached.
"""

from __future__ import annotations

import bisect
import datetime as dt
import difflib
import functools
import itertools
import re
import zoneinfo
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from funnelsim.model.scenario import Scenario

__all__ = [
    "ARRIVAL_CLASSES",
    "DAY_NAMES",
    "TimeZone",
    "WorkingCalendar",
    "WorkingHours",
    "WorkingTime",
    "clock_of",
    "contact_delay",
    "office_clock",
    "parse_hours",
    "working_time",
]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names as a calendar gives them, Monday first (``datetime.date.weekday`` order)."""
SECONDS_PER_DAY = 86400.0
MINUTES_PER_DAY = 1440
ARRIVAL_CLASSES = ("working_hours", "outside_hours", "non_working_day")
"""When an MQL reaches sales, seen from a team: in its hours, on a working day outside them, or
on a weekend day or holiday (:meth:`WorkingTime.arrival_class`)."""


def _check_zone(name: str) -> str:
    """An IANA time zone name that :mod:`zoneinfo` knows, e.g. ``Europe/Berlin``."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        shown = name if len(name) <= 60 else name[:40] + "..."
        hint = difflib.get_close_matches(name, sorted(zoneinfo.available_timezones()), n=1) if len(name) < 60 else []
        raise ValueError(
            f"unknown time zone {shown!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "; give an IANA name such as 'Europe/Berlin'")
        ) from None
    return name


MAX_SPANS = 24
_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


def parse_hours(text: str) -> tuple[tuple[int, int], ...]:
    """Working hours ``"09:00-17:00"`` (or several spans, ``"08:00-12:00,13:00-17:00"``) as
    ``(start, end)`` minutes after local midnight, in order.

    Raises
    ------
    ValueError
        Not ``HH:MM-HH:MM``, a time past 24:00, a span that ends before it starts (hours
        across midnight are two spans: ``"00:00-06:00,22:00-24:00"``), or spans that overlap.
    """
    parts = text.split(",")
    if len(parts) > MAX_SPANS:
        raise ValueError(f"at most {MAX_SPANS} spans of working hours a day, got {len(parts):,}")
    spans = []
    for part in parts:
        match = _HOURS.match(part.strip())
        if match is None:
            raise ValueError(f"working hours are HH:MM-HH:MM, e.g. '09:00-17:00'; got {part.strip()[:40]!r}")
        h0, m0, h1, m1 = (int(g) for g in match.groups())
        if m0 > 59 or m1 > 59 or h0 * 60 + m0 > MINUTES_PER_DAY or h1 * 60 + m1 > MINUTES_PER_DAY:
            raise ValueError(f"{part.strip()!r}: times run from 00:00 to 24:00")
        start, end = h0 * 60 + m0, h1 * 60 + m1
        if end <= start:
            raise ValueError(
                f"{part.strip()!r} ends before it starts; hours across midnight are two spans, "
                "e.g. '00:00-06:00,22:00-24:00'"
            )
        spans.append((start, end))
    spans.sort()
    for (_, end), (start, _) in itertools.pairwise(spans):
        if start < end:
            raise ValueError(f"the spans of {text!r} overlap")
    return tuple(spans)


def _check_hours(text: str) -> str:
    parse_hours(text)
    return text


def _day_name(value: Any) -> Any:
    """``"Monday"``, ``"MON"`` and ``"mon"`` are all ``"mon"``; anything else is left to be refused."""
    if isinstance(value, str):
        low = value.strip().lower()
        full = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
        return low[:3] if low in full else low
    return value


TimeZone = Annotated[str, AfterValidator(_check_zone)]
"""An IANA time zone name (``Europe/Berlin``, ``America/New_York``, ``UTC``)."""
WorkingHours = Annotated[str, AfterValidator(_check_hours)]
"""Local working hours of a team, ``"09:00-17:00"``, or several spans ``"08:00-12:00,13:00-17:00"``."""
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DayName = Annotated[Day, BeforeValidator(_day_name)]


def _weekdays() -> list[Day]:
    return ["mon", "tue", "wed", "thu", "fri"]


class WorkingCalendar(BaseModel):
    """When the company works: its time zone, business days and holidays.

    Day 0 of the simulation is midnight of `start_date` in `time_zone`. A team works in its
    own `working_hours` (`handoff.sdr.working_hours`, `sales.ae.working_hours`, in the team's
    `time_zone` if it gives one, else this one) on the business days that are not holidays,
    both read in the team's local calendar. Without working hours a team works around the
    clock, as without a calendar (docs/model.md, section 7a).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    time_zone: TimeZone = Field(
        description="IANA time zone of the company, e.g. 'Europe/Berlin': day 0 is midnight of start_date there."
    )
    business_days: Annotated[list[DayName], Field(min_length=1)] = Field(
        default_factory=_weekdays,
        description="Days of the week the teams work: 'mon' ... 'sun' (full names are accepted).",
    )
    holidays: list[dt.date] = Field(
        default_factory=list,
        description="Dates nobody works (YYYY-MM-DD), in each team's local calendar; the burn-in's too.",
    )
    office_hours: WorkingHours | None = Field(
        None,
        description="Hours buyers are at work, e.g. '09:00-18:00' (in time_zone, on the business days): with "
        "arrival_share_in_office_hours, when leads arrive. None: leads arrive evenly around the clock.",
    )
    arrival_share_in_office_hours: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Share of each month's leads that arrive in office_hours (e.g. 0.8: B2B form fills and demo "
        "requests come in working hours); the month's volume is unchanged. Needs office_hours.",
    )

    @model_validator(mode="after")
    def _office_hours_with_share(self) -> WorkingCalendar:
        if (self.office_hours is None) != (self.arrival_share_in_office_hours is None):
            raise ValueError("give office_hours and arrival_share_in_office_hours together (or neither)")
        return self

    @field_validator("business_days")
    @classmethod
    def _once_each(cls, days: list[str]) -> list[str]:
        twice = sorted({d for d in days if days.count(d) > 1}, key=DAY_NAMES.index)
        if twice:
            raise ValueError(f"each day once; listed twice: {', '.join(twice)}")
        return days


class WorkingTime:
    """One team's working time as a map of run time (see the module docstring).

    ``opens``, ``closes``: the working intervals in days since day 0, the last one open-ended
    (the virtual ``[end, ∞)``, or the last real one when it reaches the end of the map);
    ``before``: working time before each; ``day_starts``: local midnights of the team (one
    per local day covered, and the end of the last), with ``working_day``: whether each is
    a business day and no holiday. Read-only arrays.
    """

    def __init__(
        self, opens: np.ndarray, closes: np.ndarray, before: np.ndarray, day_starts: np.ndarray, working_day: np.ndarray
    ) -> None:
        self.opens, self.closes, self.before = opens, closes, before
        self.day_starts, self.working_day = day_starts, working_day
        self.lengths = _frozen(closes - opens)
        self.ends = _frozen(before + self.lengths)
        # Python lists for the event loop: bisect on a list beats numpy on one value.
        self._o: list[float] = opens.tolist()
        self._c: list[float] = closes.tolist()
        self._l: list[float] = self.lengths.tolist()
        self._b: list[float] = before.tolist()
        self._e: list[float] = self.ends.tolist()

    # -- arrays (the fast engine, metrics) ---------------------------------------
    def working(self, t: np.ndarray | float) -> np.ndarray:
        """``W(t)``: working days elapsed by run time ``t`` (days)."""
        t = np.asarray(t, dtype=float)
        i = np.searchsorted(self.opens, t, side="right") - 1
        k = np.maximum(i, 0)
        w = self.before[k] + np.minimum(np.maximum(t - self.opens[k], 0.0), self.lengths[k])
        return np.where(i < 0, 0.0, w)

    def calendar(self, w: np.ndarray | float) -> np.ndarray:
        """``W⁻¹(w)``: the run time at which ``w`` working days have elapsed (the next opening
        where ``W`` is flat at ``w``)."""
        w = np.maximum(np.asarray(w, dtype=float), 0.0)
        j = np.searchsorted(self.ends, w, side="right")
        t = self.opens[j] + (w - self.before[j])
        # A level an ulp short of a closing can round onto the closing itself: the next opening.
        return np.where(t < self.closes[j], t, self.opens[np.minimum(j + 1, len(self.opens) - 1)])

    def after(self, t: np.ndarray | float, days: np.ndarray | float) -> np.ndarray:
        """When ``days`` of working time from ``t`` are done: ``W⁻¹(W(t) + days)``."""
        return self.calendar(self.working(t) + np.asarray(days, dtype=float))

    def is_open(self, t: np.ndarray | float) -> np.ndarray:
        """True where ``t`` is in working hours (``o_i ≤ t < c_i``)."""
        t = np.asarray(t, dtype=float)
        i = np.searchsorted(self.opens, t, side="right") - 1
        return (i >= 0) & (t < self.closes[np.maximum(i, 0)])

    def arrival_class(self, t: np.ndarray | float) -> np.ndarray:
        """Index into :data:`ARRIVAL_CLASSES` of each time ``t``: 0 in working hours, 1 outside
        them on a working day, 2 on a weekend day or holiday."""
        t = np.asarray(t, dtype=float)
        day = np.clip(np.searchsorted(self.day_starts, t, side="right") - 1, 0, len(self.working_day) - 1)
        return np.where(self.is_open(t), 0, np.where(self.working_day[day], 1, 2)).astype(np.int8)

    # -- one value at a time (the event loop) -------------------------------------
    def working_one(self, t: float) -> float:
        """:meth:`working` of one time."""
        i = bisect.bisect_right(self._o, t) - 1
        if i < 0:
            return 0.0
        return float(self._b[i] + min(max(t - self._o[i], 0.0), self._l[i]))

    def calendar_one(self, w: float) -> float:
        """:meth:`calendar` of one working time."""
        w = max(w, 0.0)
        j = bisect.bisect_right(self._e, w)
        t = self._o[j] + (w - self._b[j])
        return t if t < self._c[j] else self._o[j + 1]

    def after_one(self, t: float, days: float) -> float:
        """:meth:`after` of one time and duration."""
        return self.calendar_one(self.working_one(t) + days)

    def boundaries(self) -> list[tuple[float, bool]]:
        """Every opening and closing in order, ``(time, opens)``, up to the end of the map."""
        out: list[tuple[float, bool]] = []
        for o, c in zip(self._o, self.closes.tolist(), strict=True):
            out += [(o, True), (c, False)] if np.isfinite(c) else [(o, True)]
        return out


def _timestamp(day: dt.date, minutes: int, zone: zoneinfo.ZoneInfo) -> float:
    """The instant (POSIX seconds) of ``minutes`` after local midnight of ``day`` in ``zone``.

    A local time that does not exist (the hour skipped when summer time starts) is read
    with the offset before the change, one that occurs twice (the hour repeated in
    autumn) as its first occurrence (``fold = 0``), as :mod:`zoneinfo` does.
    """
    day += dt.timedelta(days=minutes // MINUTES_PER_DAY)
    minutes %= MINUTES_PER_DAY
    return dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), tzinfo=zone).timestamp()


@functools.lru_cache(maxsize=64)
def _build(
    zone_name: str,
    team_zone_name: str,
    days: tuple[int, ...],
    holidays: frozenset[dt.date],
    hours: tuple[tuple[int, int], ...],
    anchor: dt.date,
    origin: float,
    span_days: float,
) -> WorkingTime:
    zone, team_zone = zoneinfo.ZoneInfo(zone_name), zoneinfo.ZoneInfo(team_zone_name)
    anchor_ts = _timestamp(anchor, 0, zone)

    def run_time(ts: float) -> float:
        return origin + (ts - anchor_ts) / SECONDS_PER_DAY

    start_ts = anchor_ts - origin * SECONDS_PER_DAY
    first = dt.datetime.fromtimestamp(start_ts, team_zone).date() - dt.timedelta(days=1)
    last = dt.datetime.fromtimestamp(start_ts + span_days * SECONDS_PER_DAY, team_zone).date() + dt.timedelta(days=1)
    day_starts, working_day, spans = [], [], []
    day = first
    while day <= last:
        day_starts.append(run_time(_timestamp(day, 0, team_zone)))
        works = day.weekday() in days and day not in holidays
        working_day.append(works)
        if works:
            spans += [
                (run_time(_timestamp(day, a, team_zone)), run_time(_timestamp(day, b, team_zone))) for a, b in hours
            ]
        day += dt.timedelta(days=1)
    day_starts.append(run_time(_timestamp(day, 0, team_zone)))
    opens, closes = _merged(spans)
    end = max(day_starts[-1], closes[-1] if closes else day_starts[-1])
    if closes and closes[-1] >= end:
        closes[-1] = np.inf  # the last interval runs to the end of the map: it goes on from there
    else:
        opens, closes = [*opens, end], [*closes, np.inf]
    lengths = np.array(closes) - np.array(opens)
    before = np.concatenate([[0.0], np.cumsum(lengths[:-1])])
    return WorkingTime(
        opens=_frozen(np.array(opens, dtype=float)),
        closes=_frozen(np.array(closes, dtype=float)),
        before=_frozen(before),
        day_starts=_frozen(np.array(day_starts, dtype=float)),
        working_day=_frozen(np.array(working_day, dtype=bool)),
    )


def _merged(spans: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Sorted, non-empty spans with the overlapping or touching ones merged (a team working
    ``00:00-24:00`` has one interval a week, not seven)."""
    opens: list[float] = []
    closes: list[float] = []
    for o, c in sorted(spans):
        if c <= o:
            continue
        if closes and o <= closes[-1]:
            closes[-1] = max(closes[-1], c)
        else:
            opens.append(o)
            closes.append(c)
    return opens, closes


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def working_time(
    calendar: WorkingCalendar,
    hours: str,
    *,
    start_date: dt.date,
    span_days: float,
    origin: float = 0.0,
    time_zone: str | None = None,
) -> WorkingTime:
    """The working-time map of a team working ``hours`` (in ``time_zone``, default the calendar's).

    Parameters
    ----------
    calendar
        The scenario's calendar (time zone, business days, holidays).
    hours
        The team's working hours, ``"09:00-17:00"`` (:func:`parse_hours`).
    start_date
        The date whose local midnight (in the calendar's zone) is run time ``origin``.
    span_days
        The map covers run times ``[0, span_days]`` (and grows like calendar time after).
    origin
        The run time of ``start_date``: a warm run's burn-in days before it (then run time 0
        is ``origin`` days of elapsed time before that midnight).
    time_zone
        The team's own time zone, if it is not the calendar's: its hours are converted.
    """
    return _build(
        calendar.time_zone,
        time_zone or calendar.time_zone,
        tuple(DAY_NAMES.index(d) for d in calendar.business_days),
        frozenset(calendar.holidays),
        parse_hours(hours),
        start_date,
        float(origin),
        float(span_days),
    )


def office_clock(scenario: Scenario, origin: float = 0.0) -> WorkingTime | None:
    """The calendar's ``office_hours`` as a working-time map over a run of ``scenario`` (``origin`` as in
    :func:`clock_of`), or None when leads arrive evenly around the clock."""
    calendar: WorkingCalendar | None = getattr(scenario, "calendar", None)
    if calendar is None or calendar.office_hours is None:
        return None
    return _over_run(scenario, calendar, calendar.office_hours, origin)


def clock_of(scenario: Scenario, team: Literal["sdr", "ae"], origin: float = 0.0) -> WorkingTime | None:
    """The working time of ``team`` (``"sdr"``: ``handoff.sdr``, ``"ae"``: ``sales.ae``) over a run of
    ``scenario``, or None when the team has no working hours (it works around the clock).

    ``origin``: the run time of the reported ``start_date`` (a warm start's burn-in), when
    ``scenario`` is the one the engine runs (:func:`funnelsim.engine.warmup.shifted`, whose
    ``start_date`` is ``origin`` days earlier).
    """
    staff = scenario.handoff.sdr if team == "sdr" else scenario.sales.ae
    calendar: WorkingCalendar | None = getattr(scenario, "calendar", None)
    if calendar is None or staff.working_hours is None:
        return None
    return _over_run(scenario, calendar, staff.working_hours, origin, staff.time_zone)


def _over_run(
    scenario: Scenario, calendar: WorkingCalendar, hours: str, origin: float, time_zone: str | None = None
) -> WorkingTime:
    """:func:`working_time` of ``hours`` over a run of ``scenario`` whose reported start is run time ``origin``."""
    return working_time(
        calendar,
        hours,
        start_date=scenario.start_date + dt.timedelta(days=round(origin)),
        span_days=float(scenario.horizon_days),
        origin=origin,
        time_zone=time_zone,
    )


def contact_delay(
    clock: WorkingTime,
    response_clock: str,
    speed_to_lead_clock: str,
    arrival: np.ndarray,
    delay: np.ndarray,
) -> np.ndarray:
    """The delay the speed-to-lead curve reads for an MQL handed over at ``arrival`` with response
    delay ``delay``, when an SDR of a team with working hours (``clock``) starts on it at once
    (no queue): the start is ``W⁻¹(W(arrival) + delay)`` with ``response_clock = "working"``, else
    the pick-up ``arrival + delay`` or the next opening after it; the curve reads ``start −
    arrival`` (``speed_to_lead_clock = "calendar"``) or ``W(start) − W(arrival)``. Broadcasts."""
    if response_clock == "working":
        start = clock.after(arrival, delay)
    else:
        start = clock.calendar(clock.working(np.asarray(arrival) + np.asarray(delay)))
    if speed_to_lead_clock == "working":
        return clock.working(start) - clock.working(arrival)
    return start - np.asarray(arrival)
