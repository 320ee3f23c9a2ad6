"""The dashboard's what-if page: `routes(db)` gives ``/whatif``, a Starlette route to serve
beside `report.live.routes` (needs the ``[server]`` extra).

``/whatif?model=TARGET`` answers what `rollups.whatif.whatif` answers (the selected calls'
stored tokens repriced at the target's prices), in total, per feature and per run, with the
same window and filters as the other pages (``days``, default 7, or ``since``/``until``;
``service``, ``feature``, ``agent``) plus ``from`` (only calls of this model), ``step`` and
``limit`` (runs shown). Without ``model`` it is the form. Every figure is a value cell of the
``whatif`` rows (``data-rollup="whatif"``, row and column as in ``WhatIf.rows``), labelled
as the estimate it is. An unknown target or a bad parameter is a 400 page naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from ..pricing.table import PriceTable, load_pricing
from ..rollups.queries import Database
from ..rollups.whatif import whatif
from .commands import Commands, store_name
from .live import FILTERS, _filters, _form, _guard, _html, _PageError, _window, known_only, reading
from .page import page
from .tables import table

__all__ = ["COLUMNS", "routes"]

COLUMNS = (
    "level", "feature", "trace_id", "runs", "calls", "selected_calls", "unpriceable_calls", "unpriced_calls",
    "actual_usd", "whatif_usd", "change_usd", "change_share",
)  # fmt: skip
UNPRICEABLE_COLUMNS = ("model", "provider", "cost_status", "calls")
_FIELDS = (("model", "target model"), ("from", "only calls of model"), ("step", "agent step"))
_LIMIT = "20"


def _choice(request: Request) -> dict[str, str]:
    return {name: request.query_params.get(name, "").strip() for name, _ in (*_FIELDS, ("limit", ""))}


def _choice_form(root: str, given: dict[str, str], choice: dict[str, str]) -> str:
    fields = "".join(
        f'<label>{label}<input name="{name}" type="text" value="{escape(choice[name])}"></label>'
        for name, label in _FIELDS
    )
    limit = choice["limit"] or _LIMIT
    fields += f'<label>runs shown<input name="limit" type="number" min="0" value="{escape(limit)}"></label>'
    return _form(root, "/whatif", given, fields)


def routes(db: Database, pricing: PriceTable | None = None) -> list[Route]:
    """``/whatif`` over ``db`` (the database path ``serve`` writes), priced with ``pricing``
    (None: `load_pricing` with no files, as the CLI's whatif without --pricing)."""

    loaded: list[PriceTable] = []
    store = store_name(db)

    def _bundled() -> PriceTable:
        """The table `load_pricing` gives with no files, loaded once for the server (each
        load reads and checks every file: ~66 ms a request)."""
        if not loaded:
            loaded.append(load_pricing([]))
        return loaded[0]

    def whatif_page(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        known_only(request, *FILTERS, *(name for name, _ in _FIELDS), "limit")
        given = _filters(request)
        choice = _choice(request)
        win = _window(given)
        intro = (
            '<p class="intro">What the selected calls would have cost at another model\'s prices: '
            "their stored tokens repriced (cache, long-context and service tiers applied).</p>"
        )
        body = _choice_form(root, given, choice) + intro
        if choice["model"]:
            prices = pricing if pricing is not None else _bundled()
            if prices.resolve(choice["model"]) is None:
                raise _PageError(
                    400, f"whatif: the pricing table does not know the model {choice['model']!r}"
                )
            with reading(db) as source:
                answer = whatif(
                    source,
                    choice["model"],
                    from_model=choice["from"] or None,
                    reprice=prices,
                    step=choice["step"] or None,
                    limit=choice["limit"] or _LIMIT,
                    **win.params(),
                )
            # the command that answers the same, over the served store and the page's window
            listing = Commands(store, win).command(
                "whatif",
                options=["--model", choice["model"]]
                + [word for name in ("from", "step") if choice[name] for word in (f"--{name}", choice[name])]
                # serve --pricing's files (the bundled table's, OTEL_COSTATTR_PRICING_FILES, the CLI reads)
                + [word for path in (prices.user_files if pricing else ()) for word in ("--pricing", path)]
                + ["--limit", "0"],
            )
            body += (
                f'<section id="whatif"><h2>On {escape(answer.target)}</h2>'
                f'<p class="note estimate">{escape(answer.note.capitalize())}.</p>'
                + table(
                    "whatif",
                    answer.rows,
                    COLUMNS,
                    caption="Actual against what-if: total, features, runs",
                    link=lambda t: f"{root}/runs/{t}",  # report.live's run page, served beside
                    listing=listing,
                    total=_every_row(answer.rows),
                )
                + "</section>"
            )
            if answer.unpriceable:
                body += (
                    '<section id="whatif-unpriceable"><h2>Calls the target cannot price</h2>'
                    + table(
                        "whatif_unpriceable",
                        answer.unpriceable,
                        UNPRICEABLE_COLUMNS,
                        caption="Selected calls without usable token counts (kept at their actual cost)",
                        listing=listing,
                    )
                    + "</section>"
                )
        nav = f'<nav aria-label="pages"><a href="{escape(root)}/">Overview</a></nav>'
        return _html(page("What if", body, nav=nav, subtitle=win.label()))

    return [Route("/whatif", _guard(whatif_page), methods=["GET"], name="report_whatif")]


def _every_row(rows: Sequence[Mapping[str, Any]]) -> int:
    """How many rows the answer has without its limit, which cuts the runs alone (a review:
    20 runs of 21 shown, no word of the last): one a run the total counts."""
    shown = sum(row["level"] == "run" for row in rows)
    runs = next((row["runs"] for row in rows if row["level"] == "total"), shown)
    return len(rows) - shown + max(runs, shown)
