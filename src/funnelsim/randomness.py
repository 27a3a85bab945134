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
from typing import Protocol

import numpy as np

__all__ = ["Buffered", "Streams"]


def _key(name: str) -> int:
    return zlib.crc32(name.encode())


class Streams:
    """Generators for replication ``replication`` of ``seed``."""

    def __init__(self, seed: int, replication: int = 0) -> None:
        if seed < 0 or replication < 0:
            raise ValueError(f"seed and replication must be >= 0, got {seed}, {replication}")
        self.seed = seed
        self.replication = replication

    def rng(self, purpose: str, *names: str) -> np.random.Generator:
        """A fresh generator for ``purpose`` (and optional sub-names, e.g. a source)."""
        key = (self.replication, _key(purpose), *(_key(n) for n in names))
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))


class _Sampler(Protocol):
    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray: ...


class Buffered:
    """Scalar draws served from numpy batches, for the parts that must run event by event."""

    __slots__ = ("_buf", "_chunk", "_i", "_rng", "_spec")

    def __init__(self, spec: _Sampler | None, rng: np.random.Generator, chunk: int = 1024) -> None:
        self._spec, self._rng, self._chunk = spec, rng, chunk
        self._buf: list[float] = []
        self._i = 0

    def __call__(self) -> float:
        if self._i == len(self._buf):
            draws = self._rng.random(self._chunk) if self._spec is None else self._spec.sample(self._rng, self._chunk)
            self._buf, self._i = draws.tolist(), 0
        value = self._buf[self._i]
        self._i += 1
        return value
