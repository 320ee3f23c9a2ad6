"""The catalogue of bundled SQL rollups (``queries/*.sql``): read each file's header, look
queries up by name, and read the prelude files.

Each ``queries/<name>.sql`` answers one question and declares what it takes in a header::

    -- @about Cost per feature: runs, calls, input and output tokens, usd and usd per run.
    -- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
    -- @param limit INTEGER = 10      how many runs
    -- @param order VARCHAR = newest  newest, or cost
    -- @choices order newest cost

(``@choices``: the values a VARCHAR parameter may take, checked when it is bound, before
either engine runs the SQL.)

``--group-by KEY`` is generic (`dimensions.render_group`): a rollup whose text carries
``{{group...}}`` placeholders takes it; one that cannot says why in a ``-- @nogroup`` line
(``trace``, the run lists); a rollup that declares ``@param group_by`` groups by itself.

Files starting with ``_`` are preludes, run once per connection: the macros `contract` derives
from ``_calls.sql`` (the call contract, persisted as the views ``calls`` and ``runs``; see that
file for the attribution rules).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from .._resources import bundled_dir
from .contract import rollup_prelude
from .dimensions import groupable, render_dimensions
from .errors import RollupError, UnknownRollup
from .params import AGO, NOW, TYPES, coerce

__all__ = [
    "Param", "Query", "as_typed", "command_query", "contract_prelude", "is_money_column", "prelude", "query",
    "rollups",
]  # fmt: skip

_PARAM = re.compile(r"--\s*@param\s+(\w+)\s+(\w+)(?:\s*=\s*(\S+))?\s*(.*)$")
_ABOUT = re.compile(r"--\s*@about\s+(.*)$")
_NOGROUP = re.compile(r"--\s*@nogroup\s+(.*)$")
_CHOICES = re.compile(r"--\s*@choices\s+(\w+)\s+(.*)$")


@dataclass(frozen=True)
class Param:
    """One declared parameter of a query."""

    name: str
    type: str
    default: Any
    required: bool
    help: str
    choices: tuple[str, ...] = ()  # the values it may take (``-- @choices NAME a b``), checked by bind


@dataclass(frozen=True)
class Query:
    """A bundled query: its name, what it answers, its parameters and its SQL."""

    name: str
    about: str
    params: tuple[Param, ...]
    sql: str
    nogroup: str = ""

    @property
    def groups(self) -> bool:
        """Whether ``--group-by`` is the generic one (`dimensions.render_group`) here."""
        return groupable(self.sql) and not any(p.name == "group_by" for p in self.params)

    @property
    def cli_name(self) -> str:
        """The name as the CLI spells it (``per-feature``)."""
        return self.name.replace("_", "-")

    def accepts(self) -> list[str]:
        """Every parameter this query binds (``days`` included when it applies; ``group_by``
        for a rollup that takes it). `rollup` also takes ``where`` for every bundled one."""
        names = [p.name for p in self.params]
        if "since" in names:
            names.insert(names.index("since"), "days")
        return [*names, "group_by"] if self.groups else names


def is_money_column(column: str) -> bool:
    """Whether a rollup's column holds USD: its name says ``usd`` (``usd``, ``cost_usd``,
    ``usd_per_run``), except a share of the money (``usd_share``), a fraction of 1. JSON gives
    each one ``<column>_exact`` beside it, null or not, in the CLI's output and the API's."""
    return "usd" in column and not column.endswith("_share")


def _parse(name: str, sql: str) -> Query:
    about = nogroup = ""
    params: list[Param] = []
    choices: dict[str, tuple[str, ...]] = {}
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        m = _ABOUT.match(line)
        if m:
            about = m.group(1).strip()
            continue
        m = _CHOICES.match(line)
        if m:
            choices[m.group(1)] = tuple(m.group(2).split())
            continue
        m = _NOGROUP.match(line)
        if m:
            nogroup = m.group(1).strip()
            continue
        m = _PARAM.match(line)
        if m:
            pname, ptype, default, text = m.groups()
            if ptype not in TYPES:
                raise RollupError(f"queries/{name}.sql: @param {pname}: unknown type {ptype}")
            required = default is None
            if ptype == "TIMESTAMP" and default is not None and (default == NOW or AGO.fullmatch(default)):
                value: Any = default  # made a time by bind, at the time of the call
            else:
                value = None if default in (None, "NULL") else coerce(name, pname, ptype, default)
            params.append(Param(pname, ptype, value, required, text.strip()))
    if not about:
        raise RollupError(f"queries/{name}.sql: no '-- @about' line")
    for pname, values in choices.items():
        index = next((i for i, p in enumerate(params) if p.name == pname), None)
        if index is None or params[index].type != "VARCHAR" or not values:
            raise RollupError(f"queries/{name}.sql: @choices {pname}: not a VARCHAR @param, or no values")
        params[index] = dataclasses.replace(params[index], choices=values)
    return Query(name, about, tuple(params), render_dimensions(sql), nogroup)


_cache: dict[str, Query] | None = None


def _queries() -> dict[str, Query]:
    global _cache
    if _cache is None:
        folder = bundled_dir("queries")
        found = {}
        for item in sorted(folder.iterdir(), key=lambda t: t.name):
            if item.name.endswith(".sql") and not item.name.startswith("_"):
                qname = item.name[: -len(".sql")]
                q = found[qname] = _parse(qname, item.read_text(encoding="utf-8"))
                if not (q.groups or q.nogroup or "group_by" in q.accepts()):
                    raise RollupError(
                        f"queries/{item.name}: no {{{{group}}}} placeholder and no '-- @nogroup' line"
                    )
        _cache = found
    return _cache


_contract: str | None = None


def contract_prelude() -> str:
    """The rollups' TEMP macros derived from the call contract (`contract.rollup_prelude`),
    built once per process."""
    global _contract
    if _contract is None:
        _contract = rollup_prelude()
    return _contract


def prelude(name: str) -> str:
    """The text of the bundled prelude file ``queries/<name>`` (``_prices.sql``, ...)."""
    return (bundled_dir("queries") / name).read_text(encoding="utf-8")


def rollups() -> list[str]:
    """The names of the bundled rollups, sorted (``per_feature``, ``per_step``, ...)."""
    return list(_queries())


def query(name: str) -> Query:
    """The bundled query ``name`` (``per_feature`` or ``per-feature``)."""
    queries = _queries()
    key = name.strip().replace("-", "_")
    if key not in queries:
        valid = ", ".join(q.replace("_", "-") for q in queries)
        raise UnknownRollup(f"unknown rollup {name!r} (valid: {valid})")
    return queries[key]


def as_typed(message: str) -> str:
    """A message naming a rollup as Python does (per_feature: ...) named as a user types it on
    the command line and in the API's path (per-feature: ...)."""
    name, colon, rest = message.partition(":")
    if colon and "_" in name and name in _queries():
        return name.replace("_", "-") + colon + rest
    return message


def command_query(name: str) -> Query:
    """The query behind a command of its own (``whatif``: ``queries/_whatif.sql``): a header
    like a rollup's, but not in the catalogue, since it needs more than bound values."""
    return _parse(name, prelude(f"_{name}.sql"))
