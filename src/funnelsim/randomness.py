"""Random streams: one ``SeedSequence`` tree per run, one named stream per purpose.

Replication ``i`` of seed ``S`` is child ``i`` of ``SeedSequence(S)``; inside it each
purpose ("arrivals", "nurture", "handoff", ...) and, where it matters, each source
gets its own generator, keyed by a stable hash of its name. So adding a random
process does not shift the others, two scenarios run with the same seed see the same
leads arrive with the same traits (common random numbers), and results do not depend
on how many workers ran the replications or in which order.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np

__all__ = ["SeededScenario", "Streams", "buffered", "resolve_seed"]


class SeededScenario(Protocol):
    """Anything with a default ``seed`` (a scenario)."""

    @property
    def seed(self) -> int | None: ...


def _key(name: str) -> int:
    return zlib.crc32(name.encode())


class Streams:
    """Generators for replication ``replication`` of ``seed``.

    ``domain`` names a family of runs apart from the replications (the pilot runs of a
    warm start): its streams are disjoint from every replication's of the same seed.
    """

    def __init__(self, seed: int, replication: int = 0, domain: str = "") -> None:
        if seed < 0 or replication < 0:
            raise ValueError(f"seed and replication must be >= 0, got {seed}, {replication}")
        self.seed = seed
        self.replication = replication
        self._prefix = (_key(domain),) if domain else ()

    def within(self, domain: str) -> Streams:
        """The streams of a part of this run named ``domain`` (a segment's world): disjoint from these
        and from every other part's, the same whichever other parts the run has."""
        inner = Streams(self.seed, self.replication)
        inner._prefix = (*self._prefix, _key(domain))
        return inner

    def rng(self, purpose: str, *names: str) -> np.random.Generator:
        """A fresh generator for ``purpose`` (and optional sub-names, e.g. a source)."""
        key = (*self._prefix, self.replication, _key(purpose), *(_key(n) for n in names))
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))


class _Sampler(Protocol):
    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray: ...


def buffered(spec: _Sampler | None, rng: np.random.Generator, chunk: int = 1024) -> Callable[[], float]:
    """Scalar draws served from numpy batches, for the parts that must run event by event.

    Returns a function of no arguments giving the next draw of ``spec`` (uniform on
    [0, 1) when ``None``); batches of ``chunk`` are drawn from ``rng`` as needed. It
    is a generator's ``__next__``: the cheapest call Python has per draw.
    """

    def draws() -> Iterator[float]:
        while True:
            yield from (rng.random(chunk) if spec is None else spec.sample(rng, chunk)).tolist()

    return draws().__next__


def resolve_seed(scenario: SeededScenario, seed: int | None) -> int:
    """The seed a run uses: the given one, the scenario's, or fresh entropy."""
    if seed is not None:
        return int(seed)
    if scenario.seed is not None:
        return scenario.seed
    return int(np.random.SeedSequence().entropy) % 2**63  # type: ignore[arg-type]
