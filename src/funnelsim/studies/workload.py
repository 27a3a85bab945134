"""How much work a command asks for, estimated from the scenario before anything runs.

A typo such as ``leads_per_month = 1e7`` (meant ``1e4``), ``horizon_days = 100000`` or
``--runs 1000000000`` must be refused in a second, not discovered by the OOM killer an
hour later. The estimate is a cheap formula, not a trial run:

.. math::

    L &= \\sum_s \\lambda_s \\, \\bar m_s \\, H + D_0 \\quad \\text{(leads per run)} \\\\
    A &= (N_{AE} + \\text{hires}) \\cdot H \\quad \\text{(AE-days per run)} \\\\
    t_{run} &= t_0 + c_L L + c_A A, \\qquad
    M_{worker} = M_0 + b_L L + b_A N_{AE} \\\\
    t_{job} &= t_{run} \\cdot R / \\min(J, R), \\qquad M_{job} = M_{worker} \\cdot \\min(J, R)

with :math:`\\lambda_s` a source's leads per day, :math:`\\bar m_s` its mean seasonality,
:math:`H` the horizon in days, :math:`D_0` the open deals on day 0, :math:`R`
replications and :math:`J` workers. The coefficients were measured with
``python benchmarks/workload.py`` (which prints measured against estimated for a range
of sizes) and rounded up: the estimate is meant to be pessimistic by up to ~2x, never
optimistic by more than that.

Above :class:`Limits` (half the machine's memory, one hour of estimated wall time) a
command refuses with :class:`WorkloadTooLarge`, which names the estimate, the field
that drives it and the ``--allow-large`` flag that overrides.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

from funnelsim.engine.warmup import PILOT_DAYS, PILOT_RUNS
from funnelsim.files import human_size
from funnelsim.model.scenario import Scenario

__all__ = [
    "UNLIMITED",
    "Budget",
    "Limits",
    "Workload",
    "WorkloadTooLarge",
    "check",
    "estimate",
    "largest",
    "machine_memory_bytes",
    "workers_of",
]

# Measured by benchmarks/workload.py on the baseline company (rounded up, see the module docstring).
SECONDS_PER_RUN_FIXED = 0.05
SECONDS_PER_LEAD = 6e-6
SECONDS_PER_AE_DAY = 1.5e-6
BYTES_BASE = 200e6  # the interpreter with numpy, pandas, scipy and simpy loaded
BYTES_PER_LEAD = 1_000.0
BYTES_PER_AE = 20_000.0
# Events in the log per lead (most leads never reach sales: ~2 per lead in the baseline).
EVENTS_PER_LEAD = 2.5


class WorkloadTooLarge(ValueError):
    """The work asked for is above the limits; the message says what drives it and how to override."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """What a command may ask for without ``--allow-large``."""

    memory_bytes: float
    seconds: float

    @classmethod
    def default(cls) -> Limits:
        return cls(memory_bytes=machine_memory_bytes() / 2, seconds=3600.0)


def machine_memory_bytes() -> float:
    """Physical memory, or the cgroup's memory limit when that is smaller (containers, CI)."""
    try:
        physical = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a small machine
        physical = 8e9
    try:
        text = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if text != "max":
            return min(physical, float(text))
    except (OSError, ValueError):
        pass
    return physical


@dataclasses.dataclass(frozen=True)
class Workload:
    """The estimated size of one command's work.

    ``replications`` is the number of simulated years in the whole job (runs ×
    scenarios × grid points ...), ``workers`` how many run at once.
    """

    leads_per_run: float
    ae_days_per_run: float
    replications: int
    workers: int
    drivers: tuple[tuple[str, float], ...]  # (field, leads it brings), largest first
    horizon_days: float = 365.0
    burn_in_days: float = 0.0  # simulated before the horizon in every run (a warm start)
    pilot_days: float = 0.0  # simulated once, before the runs, to choose the burn-in

    @property
    def simulated_days(self) -> float:
        """Days one run simulates: its burn-in and its horizon."""
        return self.horizon_days + self.burn_in_days

    @property
    def events_per_run(self) -> float:
        return EVENTS_PER_LEAD * self.leads_per_run

    @property
    def seconds_per_run(self) -> float:
        return SECONDS_PER_RUN_FIXED + SECONDS_PER_LEAD * self.leads_per_run + SECONDS_PER_AE_DAY * self.ae_days_per_run

    @property
    def seconds(self) -> float:
        """Estimated wall time of the whole job."""
        at_once = max(1, min(self.workers, self.replications))
        pilot = self.seconds_per_run * self.pilot_days / self.simulated_days
        return pilot + self.seconds_per_run * self.replications / at_once

    @property
    def memory_bytes_per_worker(self) -> float:
        ae_count = self.ae_days_per_run / max(1.0, self.simulated_days)
        return BYTES_BASE + BYTES_PER_LEAD * self.leads_per_run + BYTES_PER_AE * ae_count

    @property
    def memory_bytes(self) -> float:
        """Estimated peak memory of the whole job (every worker holding one run)."""
        return self.memory_bytes_per_worker * max(1, min(self.workers, self.replications))

    def describe(self) -> str:
        """One line for the progress narration: ``~12,345 leads per run; 200 runs; ~1.2 min, ~0.4 GB``."""
        return (
            f"~{self.leads_per_run:,.0f} leads per run, {self.replications:,} run"
            f"{'s' if self.replications != 1 else ''} on {max(1, min(self.workers, self.replications))} "
            f"worker{'s' if min(self.workers, self.replications) > 1 else ''}: "
            f"estimated {_duration(self.seconds)}, {human_size(self.memory_bytes)} of memory"
        )

    def headline(self) -> str:
        """The estimate a command announces before it starts: ``about 40 s on 2 workers (200 runs × 0.4 s)``;
        with a warm start, the pilot runs that choose its burn-in first (``warm-start pilot 6 s, then ...``)."""
        workers = max(1, min(self.workers, self.replications))
        work = f"{self.replications:,} run{'s' if self.replications != 1 else ''} × {_duration(self.seconds_per_run)}"
        if self.pilot_days > 0:
            pilot = self.seconds_per_run * self.pilot_days / self.simulated_days
            work = f"warm-start pilot {_duration(pilot)}, then {work}"
        return (
            f"about {_duration(self.seconds)} on {workers} worker{'s' if workers > 1 else ''} "
            f"({work}; ~{self.leads_per_run:,.0f} leads per run, {human_size(self.memory_bytes)} of memory)"
        )

    def scaled(self, replications: int) -> Workload:
        """The same runs, ``replications`` of them (e.g. a sweep's points × runs)."""
        return dataclasses.replace(self, replications=int(replications))


@dataclasses.dataclass(frozen=True)
class Budget:
    """What a study may spend: refuse above ``limits`` unless ``allow_large``; ``announce`` hears the estimate.

    Every study (:func:`funnelsim.studies.replications.run`, compare, sweep, sensitivity, plan)
    takes one and calls :meth:`admit` with its whole job before simulating anything;
    the runs inside it then get :data:`UNLIMITED`, so the job is judged once, whole.
    """

    allow_large: bool = False
    limits: Limits | None = None
    announce: Callable[[Workload, str], None] | None = None

    def admit(self, work: Workload, what: str) -> None:
        """Refuse ``work`` (described as ``what``) above the limits, else announce it."""
        check(work, self.allow_large, self.limits, what)
        if self.announce is not None:
            self.announce(work, what)


UNLIMITED = Budget(allow_large=True)


def workers_of(pool: Executor | None) -> int:
    """How many replications ``pool`` runs at once (1 when it does not say).

    ``ProcessPoolExecutor`` keeps its size in ``_max_workers`` and offers no public
    accessor; a Dask executor's workers are on other machines, so 1 is the right
    count for this machine's memory.
    """
    return int(getattr(pool, "_max_workers", None) or 1)


def estimate(scenario: Scenario, replications: int = 1, workers: int = 1) -> Workload:
    """The work of ``replications`` runs of ``scenario`` on ``workers`` processes.

    Cheap (no simulation): O(sources + hires + listed month multipliers). See the module docstring for the formula.
    """
    horizon = float(scenario.horizon_days)
    burn_in, pilot = 0.0, 0.0
    if scenario.burns_in:
        # Unchosen, the burn-in of a funnel that settles is at most half the first pilot's length
        # (one that does not settle runs a longer pilot and burn-in: up to ~1.6x this).
        burn_in = float(scenario.burn_in_days if scenario.burn_in_days is not None else PILOT_DAYS[0] // 2)
        pilot = 0.0 if scenario.burn_in_days is not None else float(PILOT_RUNS * PILOT_DAYS[0])
    days = horizon + burn_in
    drivers = []
    for name, source in scenario.sources.items():
        seasonal = sum(source.seasonality) / len(source.seasonality)
        drivers.append(
            (
                f"sources.{name}.{source.volume_key}",
                source.leads_per_day_mean * (seasonal * days + _extra(scenario, name)),
            )
        )
    drivers.append(("initial_pipeline", float(len(scenario.open_deals))))
    drivers.sort(key=lambda d: d[1], reverse=True)
    leads = sum(n for _, n in drivers)
    ae = scenario.sales.ae
    # Backfills at most double a team; hires join for part of the horizon, counted whole (pessimistic).
    aes = (ae.count + sum(h.count for h in ae.hires)) * (2 if ae.backfill_days is not None else 1)
    sdr = scenario.handoff.sdr
    aes += (sdr.count + sum(h.count for h in sdr.hires)) * (2 if sdr.backfill_days is not None else 1)
    return Workload(leads, aes * days, int(replications), int(workers), tuple(drivers), horizon, burn_in, pilot)


def _extra(scenario: Scenario, source: str) -> float:
    """Days of volume a source's ``month_multipliers`` add (or remove) within the horizon: O(months listed)."""
    src, start = scenario.sources[source], scenario.start_date
    extra = 0.0
    for key, multiplier in src.month_multipliers.items():
        first = dt.date.fromisoformat(f"{key}-01")
        after = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
        t0 = max(0.0, float((first - start).days))
        t1 = min(float(scenario.horizon_days), float((after - start).days))
        if t1 > t0:
            extra += (multiplier - 1) * src.seasonality[first.month - 1] * (t1 - t0)
    return extra


def largest(scenarios: list[Scenario] | tuple[Scenario, ...], replications: int, workers: int) -> Workload:
    """The work of ``replications`` runs in all, each as large as the largest of ``scenarios`` (pessimistic)."""
    per_run = max((estimate(sc, 1, workers) for sc in scenarios), key=lambda w: w.seconds_per_run)
    return per_run.scaled(replications)


def check(work: Workload, allow_large: bool = False, limits: Limits | None = None, what: str = "this run") -> None:
    """Refuse ``work`` above ``limits`` unless ``allow_large``.

    Raises
    ------
    WorkloadTooLarge
        With the estimate, the field or flag that drives it and the flag that overrides.
    """
    if allow_large:
        return
    limits = limits or Limits.default()
    over = _over(work, limits)
    if not over:
        return
    one = dataclasses.replace(work, replications=1, workers=1)
    if not _over(one, limits):  # one run is fine: it is how many, or how many at once
        memory_only = work.seconds <= limits.seconds
        driver = (
            f"{min(work.workers, work.replications)} workers holding a run each: lower --jobs"
            if memory_only
            else f"{work.replications:,} replications of {_duration(work.seconds_per_run)} each: lower --runs"
        )
    elif SECONDS_PER_AE_DAY * work.ae_days_per_run > SECONDS_PER_LEAD * work.leads_per_run:
        reps = work.ae_days_per_run / max(1.0, work.simulated_days)
        driver = f"~{reps:,.0f} reps over {_days(work)}: check sales.ae.count, handoff.sdr.count"
    else:
        field, leads = work.drivers[0]
        driver = (
            f"{work.leads_per_run:,.0f} leads per run, {leads:,.0f} of them from {field}, "
            f"over {_days(work)}: check {field} and horizon_days"
        )
    raise WorkloadTooLarge(
        f"{what} is too large: estimated {' and '.join(over)}; {driver}. "
        "If that is what you meant, pass --allow-large to run it anyway."
    )


def _days(work: Workload) -> str:
    burn_in = f" and a warm start's burn-in of up to {work.burn_in_days:,.0f} days" if work.burn_in_days else ""
    return f"horizon_days = {work.horizon_days:g}{burn_in}"


def _over(work: Workload, limits: Limits) -> list[str]:
    over = []
    if work.memory_bytes > limits.memory_bytes:
        over.append(
            f"{human_size(work.memory_bytes)} of memory (limit {human_size(limits.memory_bytes)}, half this machine's)"
        )
    if work.seconds > limits.seconds:
        over.append(f"{_duration(work.seconds)} (limit {_duration(limits.seconds)})")
    return over


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "forever"
    if seconds < 10:
        return f"{seconds:.2g} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.0f} days"
