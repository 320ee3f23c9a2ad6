"""What-if: what the selected calls would have cost at another model's prices.

`whatif` reprices the stored tokens of the calls it selects (a window, ``agent``,
``feature``, ``step``, ``from_model``, ``where``) at the target model's prices with the one
repricing path the rollups use (`queries._reprice`: ``_reprice.sql``, rendered from the
billing rule, with cache rates, long-context tiers, service tiers and price periods applied),
then ``queries/_whatif.sql`` sets actual against what-if in total, per feature and per run.
On a ClickHouse store the same SQL runs over the window's calls selected there
(`clickhouse.local`).

It is an estimate, and says so: another model would tokenise the same text into other
counts, and answer at another length (or fail where this one succeeded).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ..clickhouse.local import CALLS_MACRO, local_calls
from ..clickhouse.runner import clickhouse_target
from .catalog import command_query
from .dimensions import where_pairs
from .errors import RollupError
from .params import bind
from .queries import Database, Reprice, Rows, _clear_reprice, _connection, _prepare, _pricing, _reprice, _run

__all__ = ["ESTIMATE_NOTE", "WhatIf", "whatif"]

ESTIMATE_NOTE = (
    "an estimate: the same stored tokens at the target's prices; another model would tokenise "
    "and answer differently"
)

_UNPRICEABLE = """
SELECT c.model, c.provider, c.cost_status, count(*) AS calls
FROM costattr_calls($since, $until, $service, $feature, $agent) AS c
JOIN costattr_model_map AS m
  ON m.model = coalesce(c.response_model, c.request_model) AND m.provider IS NOT DISTINCT FROM c.provider
WHERE c.usd_repriced IS NULL AND ($step IS NULL OR c.step = $step)
GROUP BY ALL
ORDER BY calls DESC, c.model NULLS LAST, c.provider NULLS LAST, c.cost_status
"""


def _identity(entry: Any) -> tuple[str, str]:
    """The model an entry prices: a host's copy of a list price is the list's own."""
    return (entry.list_of or entry.provider, entry.id)


@dataclass
class WhatIf:
    """The answer: ``rows`` (level ``total``, then ``feature``, then ``run``: calls, selected
    calls, actual_usd, whatif_usd, change_usd, change_share), the target as priced
    (``provider/id``), and ``unpriceable``: the selected calls the target could not price (by
    model, provider and status: invalid or missing usage)."""

    target: str
    rows: Rows
    unpriceable: Rows
    note: str = ESTIMATE_NOTE
    selection: dict[str, Any] = field(default_factory=dict)


def whatif(
    db: Database,
    model: str,
    *,
    provider: str | None = None,
    from_model: str | None = None,
    reprice: Reprice | None = None,
    where: Any = None,
    now: dt.datetime | None = None,
    **params: Any,
) -> WhatIf:
    """What the calls of ``db`` (a DuckDB path or connection, or a ClickHouse URL: the calls
    selected there, repriced in an in-memory DuckDB, `clickhouse.local`) selected by
    ``params`` (``days`` or ``since``/``until``, ``service``, ``feature``, ``agent``,
    ``step``, ``limit`` runs) and ``where`` would have cost
    at the prices of ``model`` (resolved as a span's model is, with ``provider`` if given).
    ``from_model``: only calls whose reported model is this one or resolves to the same
    priced entry. ``reprice``: the price table (default: the bundled one; or files layered
    over it). Raises `RollupError` (an unknown target among them) or `RollupParamError`."""
    q = command_query("whatif")
    values = bind(q, params, now=now)
    filters = where_pairs(q.name, where)
    table = _pricing(reprice if reprice is not None else [])
    target = table.resolve(model, provider)
    if target is None:
        where_ = f" (provider {provider})" if provider else ""
        raise RollupError(f"whatif: the pricing table does not know the target model {model!r}{where_}")
    source = table.resolve(from_model) if from_model else None

    def selected(reported: str | None, reported_provider: str | None) -> Any:
        if from_model is None or reported == from_model:
            return target
        entry = table.resolve(reported, reported_provider)
        if source is None or entry is None:
            return None
        if _identity(entry) == _identity(source):
            return target
        # The same model at a host with its own entry for it (Azure's o3, whose spans name
        # their host since pricing/endpoints.py): the model the source's provider gives it.
        maker = table.resolve(reported, source.list_of or source.provider)
        if maker is not None and _identity(maker) == _identity(source):
            return target
        # A host's own id of the model (Bedrock's us. or global. profile of a Claude model,
        # an entry of Bedrock's own): the source's provider's entry one of its forms names.
        maker = table.entry_in(reported, source.list_of or source.provider)
        return target if maker is not None and _identity(maker) == _identity(source) else None

    clickhouse = clickhouse_target(db)
    calls = None if clickhouse is None else CALLS_MACRO
    with _connection(db) if clickhouse is None else local_calls(clickhouse, values, where=filters) as con:
        # On ClickHouse, --where was applied there, as the calls were selected.
        _prepare(con, repricing=True, where=filters if clickhouse is None else None, calls=calls)
        try:
            _reprice(con, table, {**values, "trace_id": None}, resolve=selected)
            rows = _run(con, q.sql, values)
            unpriceable = _run(con, _UNPRICEABLE, {k: values[k] for k in (*_WINDOW, "step")})
        finally:
            _clear_reprice(con)
            _prepare(con, calls=calls)
    chosen = {"model": model, "provider": provider, "from_model": from_model, **params}
    return WhatIf(
        f"{target.provider}/{target.id}",
        rows,
        unpriceable,
        selection={k: v for k, v in chosen.items() if v is not None},
    )


_WINDOW = ("since", "until", "service", "feature", "agent")
