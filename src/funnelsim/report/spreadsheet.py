"""Making CSV outputs safe to open in a spreadsheet (CSV or "formula" injection).

A spreadsheet reads a cell that begins with ``=``, ``+``, ``-`` or ``@`` as a formula, and
a leading tab or carriage return can hide one (``"\\t=HYPERLINK(...)"``). Text in our CSV
outputs often comes from someone else -- an account, stage or owner name typed into a CRM,
a source or persona name in a scenario -- so a cell like ``=HYPERLINK("http://x", "Click")``
or ``-2+3+cmd|' /C calc'!A0`` would run when a colleague opens the file. Following the OWASP
rule, such text cells are written with a leading single quote (``'=HYPERLINK(...)``), which
spreadsheets show as the text it is.

Numbers are left alone: a numeric column is never touched, and in a text column a cell that
is a plain decimal number (``-12.5``, ``+3``, ``-1e-3``) stays as it is, since a spreadsheet
reads it as that number and nothing else. The price is that a text cell read back from one of
our CSV files may carry the extra quote; the file stays the record of what a human sees.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

__all__ = ["FORMULA_START", "neutralise_formulas", "neutralise_text"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (or hide one)."""

# A signed decimal number (what a spreadsheet reads as a number, so not a formula). No
# 'inf'/'nan': a spreadsheet reads '-inf' as the formula '=-inf'.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_FIRST = list(FORMULA_START)


def neutralise_text(value: Any) -> Any:
    """``value`` with a leading ``'`` if it is text a spreadsheet would read as a formula; else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def _is_text(dtype: Any) -> bool:
    return pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.StringDtype)


def _column(series: pd.Series) -> pd.Series | None:
    """The neutralised column, or None when no cell needs it (the common case: no copy)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        categories = series.cat.categories
        if not _is_text(categories.dtype):
            return None
        new = [neutralise_text(c) for c in categories]
        if new == list(categories):
            return None
        if len(set(new)) == len(new):
            return series.cat.rename_categories(new)
        series = series.astype(object)  # "'=x" was already a category too: give up the categories
    elif not _is_text(series.dtype):
        return None
    try:
        # vectorised first-character test; NaN (not True) for cells that are not text
        first = series.str[:1]
    except AttributeError:  # an object column without any text (e.g. all dicts)
        first = series.map(lambda v: v[:1] if isinstance(v, str) else None)
    hits = first.isin(_FIRST).to_numpy(dtype=bool)
    if not hits.any():
        return None
    out = series.astype(object)
    out[hits] = [neutralise_text(v) for v in out[hits]]
    return out


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell (and column name) that a spreadsheet would run as a formula quoted.

    A text cell (``object``, ``string`` or categorical of text) that begins with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return gets a leading ``'``, unless it is a plain decimal number.
    Numeric, boolean and date columns are never changed, so negative numbers stay numbers.

    Parameters
    ----------
    frame
        A table about to be written as CSV. It is not modified.

    Returns
    -------
    DataFrame
        ``frame`` itself when nothing needed quoting, else a shallow copy with the changed
        columns replaced.

    Examples
    --------
    >>> neutralise_formulas(pd.DataFrame({"name": ["=1+1", "Acme", "-5"], "amount": [-5.0, 1.0, 2.0]}))
        name  amount
    0  '=1+1    -5.0
    1   Acme     1.0
    2     -5     2.0
    """
    out = frame
    for position in range(frame.shape[1]):
        new = _column(frame.iloc[:, position])
        if new is not None:
            if out is frame:
                out = frame.copy(deep=False)
            out.isetitem(position, new)
    names = [neutralise_text(c) for c in frame.columns]
    if names != list(frame.columns):
        out = out.copy(deep=False) if out is frame else out
        out.columns = pd.Index(names)
    return out
