"""What a rollup raises: one base class, `RollupError`, and the two cases callers tell apart."""

from __future__ import annotations

__all__ = ["RollupError", "RollupParamError", "UnknownRollup", "first_line"]


class RollupError(Exception):
    """A rollup could not run: bad database, DuckDB error (chained), bad pricing table."""


class UnknownRollup(RollupError, LookupError):
    """No bundled query by that name; the message lists the valid names."""


class RollupParamError(RollupError, ValueError):
    """A parameter is unknown, missing, of the wrong type or out of range; the message names it
    (and lists the valid ones when it is unknown)."""


def first_line(e: BaseException) -> str:
    """The first line of ``e``'s message (DuckDB adds lines of context), else its type."""
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
