"""The report served live: `routes(db)` gives the Starlette routes ``serve`` mounts at ``/``
(needs the ``[server]`` extra).

- ``/``: the report's sections for a window and filters taken from the query string (``days``,
  default 7, or ``since``/``until``; ``service``, ``feature``, ``agent``), with a filter form;
- ``/runs``: the runs list (``runs_list``) with the same filters, ``sort`` ``newest`` or
  ``cost``, at most ``limit``;
- ``/runs/{trace_id}``: one run's waterfall (a unique prefix of 4 or more digits will do).

Pages are the static report's (`page`, `sections`, `waterfall`), with links between them
instead of anchors. A bad parameter is a 400 page naming it, an unknown run a 404, a store
that cannot be read a 503; nothing raises into the server. Endpoints are plain functions, so
Starlette runs them (DuckDB reads) in its thread pool, off the event loop. A page reads a
DuckDB store through one read-only connection that does not ingest (`reading`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from html import escape
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from ..clickhouse.target import is_clickhouse_url
from ..pricing.table import PriceTable
from ..rollups.catalog import as_typed
from ..rollups.errors import RollupError, RollupParamError
from ..rollups.explain import find_trace, near
from ..rollups.params import coerce
from ..rollups.queries import Database, connection, rollup
from ..server.auth import TOKEN_PARAM
from ..store.turns import turns
from .commands import Commands, store_name
from .data import Window, collect, run_detail, window
from .page import csp, nav_links, page, render_report
from .tables import table
from .waterfall import waterfall

logger = logging.getLogger(__name__)

__all__ = ["routes"]

FILTERS = ("days", "since", "until", "service", "feature", "agent")
DEFAULT_DAYS = "7"
_TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")
RUN_COLUMNS = (
    "trace_id", "run_name", "agent", "feature", "start_time", "duration_ms", "calls", "unpriced_calls", "usd",
)  # fmt: skip
LIVE_MAX_ROWS = 5000  # the runs page shows up to this many of the runs ``limit`` asks for


class _PageError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status, headers={"Content-Security-Policy": csp(), "Cache-Control": "no-store"})


_NAMES = frozenset({"feature", "agent", "service"})


def _filters(request: Request) -> dict[str, str]:
    """The filters given in the query string (blank fields dropped); ``days`` defaults to 7
    when no period is given, and a ``since`` replaces it: the form shows the last days filled
    in, so a since date typed beside them was a 400 ("give days or since"), on a page
    without the form to clear them (the API, for programs, still refuses both). A name is
    taken as written, spaces and all (`` trailing`` is another feature than ``trailing``, as
    in the API); the period's fields are trimmed."""
    given = {
        k: value if k in _NAMES else value.strip()
        for k in FILTERS
        if (value := request.query_params.get(k, "")).strip()
    }
    if "since" in given:
        given.pop("days", None)
    if not {"days", "since", "until"} & set(given):
        given["days"] = DEFAULT_DAYS
    return given


def known_only(request: Request, *valid: str) -> None:
    """A 400 for a query parameter the page does not take (``valid``): a typo
    (``featrue=research``) showed every feature under a 200 (a review). ``token``, the way in
    (`server.auth`), is every page's: a server without a token leaves it in the URL."""
    unknown = [k for k in request.query_params if k not in valid and k != TOKEN_PARAM]
    if unknown:
        takes = f"({near(unknown[0], list(valid))})" if valid else "(this page takes none)"
        raise _PageError(400, f"unknown parameter {unknown[0]!r} {takes}")


def _window(given: dict[str, str]) -> Window:
    try:
        return window(**given)
    except RollupParamError as e:
        raise _PageError(400, str(e)) from e


def _form(root: str, action: str, given: dict[str, str], extra: str = "") -> str:
    fields = []
    for name, label, kind in (
        ("days", "last days", "number"), ("since", "since (UTC)", "text"), ("until", "until (UTC)", "text"),
        ("feature", "feature", "text"), ("agent", "agent", "text"), ("service", "service", "text"),
    ):  # fmt: skip
        value = escape(given.get(name, ""))
        step = ' min="0" step="any"' if kind == "number" else ""
        fields.append(f'<label>{label}<input name="{name}" type="{kind}"{step} value="{value}"></label>')
    return (
        f'<form class="filters" method="get" action="{escape(root + action)}" role="search">'
        f'{"".join(fields)}{extra}<button type="submit">Apply</button></form>'
    )


def _query(given: dict[str, str], **more: str) -> str:
    q = urlencode({**given, **more})
    return f"?{q}" if q else ""


@contextmanager
def reading(db: Database) -> Iterator[Database]:
    """What a page reads: a database path as one read-only connection for the whole page,
    which does not ingest (the receiver's ingester keeps the spool moving: a page that
    ingested would run a busy receiver's backlog on the request thread, as the API's reads
    do not either), closed after; a connection or a ClickHouse URL as given."""
    if is_clickhouse_url(db):
        yield db
        return
    if isinstance(db, str | os.PathLike):  # a turn among this process's readers (store/turns.py)
        busy = turns(str(db)).reading(10.0, lambda why: _PageError(503, f"the store is busy: {why}"))
        with busy, connection(db, ingest=False) as con:
            yield con
        return
    with connection(db, ingest=False) as con:
        yield con


def _guard(fn: Callable[[Request], HTMLResponse]) -> Callable[[Request], HTMLResponse]:
    """A page or a short error page, never an exception into the server."""

    def endpoint(request: Request) -> HTMLResponse:
        try:
            return fn(request)
        except _PageError as e:
            status, message = e.status, str(e)
        except RollupParamError as e:
            status, message = 400, as_typed(str(e))  # runs-list: limit..., as the URL and the CLI spell it
        except RollupError as e:
            status, message = 503, str(e)
        except Exception:
            logger.exception("otel-costattr: the %s page failed", request.url.path)
            status, message = 500, "the page failed; the server log has the details"
        root = request.scope.get("root_path", "")
        body = (
            f'<p class="error" role="alert">Error: {escape(message)}</p>'
            f'<p><a href="{escape(root)}/">Overview</a></p>'
        )
        return _html(page(f"Error {status}", body, nav=nav_links(prefix=f"{root}/")), status)

    endpoint.__name__ = fn.__name__
    endpoint.__doc__ = fn.__doc__
    return endpoint


def routes(db: Database, pricing: PriceTable | None = None) -> list[Route]:
    """The dashboard's routes over ``db`` (the database path ``serve`` writes); ``pricing``:
    the table the what-if page prices with (``serve --pricing``; None: the bundled one and
    ``OTEL_COSTATTR_PRICING_FILES``, as the CLI's whatif)."""
    store = store_name(db)  # what the pages' commands name: the served store

    def overview(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        known_only(request, *FILTERS)
        given = _filters(request)
        with reading(db) as source:
            report = collect(source, _window(given), runs=20, waterfalls=0, tail=False)
        runs_link = (
            f'<a href="{escape(root)}/runs{escape(_query(given))}">All runs</a> '
            f'<a href="{escape(root)}/whatif{escape(_query(given))}">What if?</a>'
        )
        html = render_report(
            report,
            link=lambda t: f"{root}/runs/{t}",
            title="Where the money goes (live)",
            before=_form(root, "/", given),
            nav_extra=runs_link,
            commands=Commands(store, report.window),
        )
        return _html(html)

    def runs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        known_only(request, *FILTERS, "sort", "limit")
        given = _filters(request)
        sort = request.query_params.get("sort", "newest")
        if sort not in ("newest", "cost"):
            raise _PageError(400, f"sort: expected newest or cost, got {sort!r}")
        limit = request.query_params.get("limit", "100")
        win = _window(given)
        with reading(db) as source:
            rows = rollup("runs_list", db=source, order=sort, limit=limit, **win.params())
            total = None
            if len(rows) == coerce("runs_list", "limit", "INTEGER", limit):  # the limit may have cut it
                # the overview counts the runs of the same calls
                total = rollup("overview", db=source, **win.params())[0]["runs"]
        sorter = (
            '<label>sort<select name="sort">'
            + "".join(
                f'<option value="{s}"{" selected" if s == sort else ""}>{s}</option>'
                for s in ("newest", "cost")
            )
            + "</select></label>"
            + f'<label>limit<input name="limit" type="number" min="0" value="{escape(limit)}"></label>'
        )
        other = "cost" if sort == "newest" else "newest"
        body = (
            _form(root, "/runs", given, sorter)
            + f'<section id="runs"><h2>Runs</h2><p class="intro">{escape(win.label())}; sorted by {sort} '
            f'(<a href="{escape(root)}/runs{escape(_query(given, sort=other, limit=limit))}">'
            f"sort by {other}</a>). "
            "Follow a run to its waterfall.</p>"
            + table(
                "runs_list",
                rows,
                RUN_COLUMNS,
                caption=f"Runs, {sort} first",
                link=lambda t: f"{root}/runs/{t}",
                max_rows=LIVE_MAX_ROWS,
                filter_box=True,
                listing=Commands(store, win).rollup("runs_list", order=sort),
                total=total,
            )
            + "</section>"
        )
        nav = f'<nav aria-label="pages"><a href="{escape(root)}/{escape(_query(given))}">Overview</a></nav>'
        return _html(page("Runs", body, nav=nav, subtitle=win.label()))

    def run(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        trace_id = request.path_params["trace_id"]
        known_only(request)
        with reading(db) as source:
            if not _TRACE_ID.match(trace_id):
                try:  # a unique prefix, as the API and the CLI's `trace` take
                    trace_id = find_trace(source, trace_id)
                except RollupError as e:
                    raise _PageError(404 if str(e).startswith("no trace id") else 400, str(e)) from e
            detail = run_detail(source, trace_id.lower())
        if not detail.spans:
            raise _PageError(404, f"no spans for run {trace_id.lower()}")
        nav = (
            f'<nav aria-label="pages"><a href="{escape(root)}/">Overview</a>'
            f'<a href="{escape(root)}/runs">Runs</a></nav>'
        )
        return _html(
            page(
                f"Run {detail.trace_id}",
                waterfall(detail, Commands(store, Window()).trace(detail.trace_id)),
                nav=nav,
                subtitle="One run, every span",
            )
        )

    from . import whatif_page  # it builds on this module's helpers: imported once they exist

    return [
        Route("/", _guard(overview), methods=["GET"], name="report_overview"),
        Route("/runs", _guard(runs), methods=["GET"], name="report_runs"),
        Route("/runs/{trace_id}", _guard(run), methods=["GET"], name="report_run"),
        *whatif_page.routes(db, pricing),
    ]
