"""Units of the command line's numbers: money amounts (``12M``, ``750k``, ``1.5bn``) and shares
(``20%``, ``0.2``), read into plain floats.

Input parsing for the library and the CLI alike; a string that is not such a number raises
:class:`UnitError`, a :class:`ValueError` whose message names the option it came from.
"""

from __future__ import annotations

import math

__all__ = ["UnitError", "parse_amount", "parse_share"]


class UnitError(ValueError):
    """A text is not an amount or a share of the expected form; the message names the option."""


def parse_amount(text: str, option: str = "amount") -> float:
    """``12M``, ``750k``, ``1.5bn``, ``12,000,000`` or ``12000000`` as a number."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    multipliers = {"k": 1e3, "m": 1e6, "mm": 1e6, "b": 1e9, "bn": 1e9}
    number, suffix = cleaned, ""
    for end in sorted(multipliers, key=len, reverse=True):
        if cleaned.lower().endswith(end):
            number, suffix = cleaned[: -len(end)], end
            break
    try:
        value = float(number) * multipliers.get(suffix, 1.0)
    except ValueError:
        raise UnitError(f"{option}: expected an amount such as 12M, 750k or 12000000, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise UnitError(f"{option}: must be a non-negative amount, got {text!r}")
    return value


def parse_share(text: str, option: str = "share") -> float:
    """``20%`` or ``0.2`` as 0.2; a share strictly between 0 and 1."""
    cleaned = text.strip()
    try:
        value = float(cleaned[:-1]) / 100 if cleaned.endswith("%") else float(cleaned)
    except ValueError:
        raise UnitError(f"{option}: expected a share such as 20% or 0.2, got {text!r}") from None
    if not 0 < value < 1:
        raise UnitError(f"{option} must be between 0 and 100% (exclusive), got {text!r}")
    return value
