"""The ``otel-costattr`` command line.

Library code raises specific exceptions; this module turns them into one line,
``Error: ...``, and a non-zero exit code. Commands are registered on one argparse tree;
every command and option has help text (a test checks it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal

from .. import settings
from ..cost.engine import Usage, compute_cost
from ..pricing.parse import PricingError, parse_provider_file
from ..pricing.table import PriceTable, load_pricing
from ..version import __version__

Handler = Callable[[argparse.Namespace], int]


class CLIError(Exception):
    """A user-facing error: printed as ``Error: <message>`` with exit code 1."""


def _table(args: argparse.Namespace) -> PriceTable:
    return load_pricing(args.pricing or ())


def _money(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return f"${value:,.6f}" if abs(value) < 1 else f"${value:,.2f}"


def _exact(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.normalize():f}"


def _rate(value: Decimal | None) -> str:
    return "-" if value is None else f"{value.normalize():f}"


# --- pricing ---------------------------------------------------------------------------


def cmd_pricing_list(args: argparse.Namespace) -> int:
    table = _table(args)
    rows = [
        (e.provider, e.id, e.price_at(None))
        for e in table.models()
        if args.provider is None or e.provider == args.provider
    ]
    if args.format == "json":
        out = [
            {"provider": p, "model": m, **{k: _rate(v) for k, v in period.standard.rates.as_dict().items()}}
            for p, m, period in rows
        ]
        print(json.dumps(out, indent=2))
        return 0
    print(f"pricing version {table.version}  ({len(rows)} models, USD per million tokens)")
    header = ("provider", "model", "input", "output", "cache_read", "cache_write")
    lines = [header] + [
        (p, m, _rate(r.input), _rate(r.output), _rate(r.cache_read), _rate(r.cache_write)) for p, m, r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        cells = zip(line, widths, strict=True)
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(cells)))
    return 0


def cmd_pricing_show(args: argparse.Namespace) -> int:
    table = _table(args)
    entry = table.resolve(args.model, args.provider)
    if entry is None:
        tried = ", ".join(table.candidate_ids(args.model))
        raise CLIError(f"unknown model {args.model!r} (tried: {tried}); see 'otel-costattr pricing list'")
    print(f"{entry.provider}/{entry.id}" + (f"  ({entry.name})" if entry.name else ""))
    print(f"  pricing version {table.version}, from {entry.origin}")
    print(f"  source {entry.source or '-'} (retrieved {entry.retrieved or '-'})")
    if entry.alias_of:
        print(f"  alias of {entry.alias_of}")
    for period in entry.periods:
        since = f"since {period.since}" if period.since else "from the start"
        print(f"  {since}:")
        schedules = [("standard", period.standard), *period.service_tiers.items()]
        for label, schedule in schedules:
            rates = ", ".join(f"{k} {_rate(v)}" for k, v in schedule.rates.as_dict().items() if v is not None)
            print(f"    {label}: {rates}")
            for tier in schedule.tiers:
                trates = ", ".join(
                    f"{k} {_rate(v)}" for k, v in tier.rates.as_dict().items() if v is not None
                )
                print(f"      above {tier.above:,} input tokens: {trates}")
    return 0


def cmd_pricing_check(args: argparse.Namespace) -> int:
    errors = 0
    for path in args.files:
        try:
            pf = parse_provider_file(path)
            load_pricing([path], use_env=False)  # also checks aliases and fallbacks in context
        except PricingError as e:
            print(f"Error: {e}", file=sys.stderr)
            errors += 1
        else:
            print(f"{path}: ok ({pf.provider}, {len(pf.models)} models)")
    return 1 if errors else 0


def cmd_price(args: argparse.Namespace) -> int:
    table = _table(args)
    usage = Usage(
        input_tokens=args.input,
        output_tokens=args.output,
        cache_read_tokens=args.cache_read,
        cache_write_tokens=args.cache_write,
        reasoning_tokens=args.reasoning,
        input_includes_cache={"auto": None, "yes": True, "no": False}[args.input_includes_cache],
    )
    cost = compute_cost(
        args.model,
        usage,
        provider=args.provider,
        start_time=args.at,
        service_tier=args.service_tier,
        table=table,
    )
    if cost.total is None:
        raise CLIError(f"{cost.status.value}: {cost.detail or 'no cost'}")
    if args.format == "json":
        out = {
            "model": cost.model,
            "provider": cost.provider,
            "pricing_version": cost.pricing_version,
            "status": cost.status.value,
            "usd": _exact(cost.total),
            **{k: _exact(v) for k, v in cost.parts().items()},
        }
        print(json.dumps(out, indent=2))
        return 0
    print(f"{cost.provider}/{cost.model}  pricing {cost.pricing_version}")
    for name, value in cost.parts().items():
        if value:
            print(f"  {name:<12}{_money(value):>14}")
    print(f"  {'total':<12}{_money(cost.total):>14}   (exact: {_exact(cost.total)} USD)")
    return 0


# --- rollups, runs, trace, demo ----------------------------------------------------------

_SPARSE = ("usd_repriced", "subtree_usd_repriced")  # shown only when repricing


def _db(args: argparse.Namespace) -> str:
    return args.db or settings.duckdb_path()


def _reprice(args: argparse.Namespace) -> PriceTable | None:
    if not (getattr(args, "reprice", False) or getattr(args, "pricing", None)):
        return None
    return _table(args)


def _query_params(args: argparse.Namespace) -> dict[str, object]:
    params: dict[str, object] = {}
    for key in ("days", "since", "until", "service", "feature", "agent", "limit"):
        value = getattr(args, key, None)
        if value is not None:
            params[key] = value
    for item in getattr(args, "param", None) or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"--param expects NAME=VALUE, got {item!r}")
        params[key.strip().replace("-", "_")] = value
    return params


def _run_rollup(name: str, args: argparse.Namespace, **extra: object) -> list[dict]:
    from ..rollups.queries import RollupError, rollup

    try:
        return rollup(name, db=_db(args), reprice=_reprice(args), **_query_params(args), **extra)
    except RollupError as e:
        raise CLIError(str(e)) from e


def _duration(ms: float) -> str:
    return f"{ms:,.0f} ms" if ms < 1000 else f"{ms / 1000:,.1f} s"


def _places(values: Sequence[object]) -> int:
    """Decimal places for a column of dollars: enough for its smallest amount."""
    amounts = [abs(v) for v in values if isinstance(v, Decimal) and v]
    smallest = min(amounts, default=Decimal(1))
    return 2 if smallest >= 10 else 4 if smallest >= Decimal("0.01") else 6


def _cell(column: str, value: object, places: int = 6) -> str:
    """A value as the table shows it: money as dollars, shares as percentages."""
    import datetime as dt

    if value is None:
        return "-"
    if isinstance(value, Decimal) and "usd" in column:
        return f"${value:,.{places}f}"
    if column.endswith("_share") and isinstance(value, float):
        return f"{value:.1%}"
    if column.endswith("_ms") and isinstance(value, (int, float)):
        return _duration(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (float, Decimal)):
        return f"{value:,.1f}"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _plain(value: object) -> object:
    """A value as JSON and CSV carry it: exact decimal strings, ISO times."""
    import datetime as dt

    if isinstance(value, Decimal):
        return _exact(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _print_table(rows: list[dict], *, tree: bool = False) -> None:
    if not rows:
        print("(no rows)")
        return
    columns = [c for c in rows[0] if not (c in _SPARSE and all(r[c] is None for r in rows))]
    if tree:
        columns = [c for c in columns if c not in ("depth", "parent_span_id")]
    places = {c: _places([r[c] for r in rows]) for c in columns}
    cells = [[_cell(c, r[c], places[c]) for c in columns] for r in rows]
    if tree:  # indent each span name under its parent
        name = columns.index("name")
        for line, prefix in zip(cells, _tree_prefixes(rows), strict=True):
            line[name] = prefix + line[name]
    numeric = [
        all(
            isinstance(r[c], (int, float, Decimal)) and not isinstance(r[c], bool) or r[c] is None
            for r in rows
        )
        for c in columns
    ]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]

    def fmt(line: Sequence[str]) -> str:
        out = (
            cell.rjust(w) if num else cell.ljust(w)
            for cell, w, num in zip(line, widths, numeric, strict=True)
        )
        return "  ".join(out).rstrip()

    print(fmt(columns))
    for line in cells:
        print(fmt(line))


def _tree_prefixes(rows: list[dict]) -> list[str]:
    """Box-drawing prefixes for rows in depth-first order with a ``depth`` column."""
    depths = [r["depth"] for r in rows]
    last = []
    for i, d in enumerate(depths):
        nxt = next((depths[j] for j in range(i + 1, len(depths)) if depths[j] <= d), None)
        last.append(nxt != d)
    prefixes, open_levels = [], []
    for i, d in enumerate(depths):
        del open_levels[d:]
        guide = "".join("   " if done else "│  " for done in open_levels[1:])
        prefixes.append("" if d == 0 else guide + ("└─ " if last[i] else "├─ "))
        open_levels.append(last[i])
    return prefixes


def _emit(rows: list[dict], fmt: str, *, tree: bool = False) -> None:
    if fmt == "json":
        print(json.dumps([{k: _plain(v) for k, v in r.items()} for r in rows], indent=2))
    elif fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        if rows:
            writer.writerow(rows[0])
            writer.writerows([_plain(v) for v in r.values()] for r in rows)
    else:
        _print_table(rows, tree=tree)


def cmd_rollup(args: argparse.Namespace) -> int:
    # Imported here, not at the top: the package exports a function named `rollups`.
    from ..rollups.queries import WINDOW_PARAMS, query, rollups

    if args.list:
        for name in rollups():
            q = query(name)
            print(f"{q.cli_name:<12}  {q.about}")
            for p in q.params:
                if p.name in WINDOW_PARAMS:
                    continue
                option = "--limit N" if p.name == "limit" else f"--param {p.name}=..."
                default = (
                    "required"
                    if p.required
                    else f"default {p.default:g}"
                    if isinstance(p.default, float)
                    else f"default {p.default}"
                )
                print(f"{'':<14}{option}  {p.help} ({default})")
        return 0
    if not args.name:
        raise CLIError("name a rollup (see 'otel-costattr rollup --list')")
    _emit(_run_rollup(args.name, args), args.format, tree=args.name == "trace")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    _emit(_run_rollup("per_run", args), args.format)
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    trace_id = args.trace_id.strip().lower()
    if len(trace_id) != 32 or any(c not in "0123456789abcdef" for c in trace_id):
        raise CLIError(f"not a trace id (32 hex digits): {args.trace_id!r}")
    rows = _run_rollup("trace", args, trace_id=trace_id)
    if not rows:
        raise CLIError(f"no spans for trace {trace_id} in {_db(args)}")
    _emit(rows, args.format, tree=True)
    return 0


_DEMO_COLUMNS = {  # narrower tables, so the demo fits one screen
    "per_agent": ("agent", "agent_version", "runs", "calls", "usd", "usd_per_run"),
    "top_runs": ("trace_id", "agent", "feature", "start_time", "calls", "usd"),
    "unpriced": ("cost_status", "provider", "model", "calls", "input_tokens", "output_tokens", "features"),
}


def cmd_demo(args: argparse.Namespace) -> int:
    import time

    from .. import demo
    from ..rollups.queries import rollup
    from ..store import database as store

    started = time.perf_counter()
    shown = args.db or demo.DEFAULT_PATH  # as typed, for the commands printed below
    try:
        info = demo.run_demo(shown)
    except (demo.DemoError, store.StoreError, ValueError) as e:
        raise CLIError(str(e)) from e
    db = info["path"]
    total = rollup("stats", db=db)[0]
    print(
        f"Simulated {info['runs']} agent runs ({info['first_day']} to {info['last_day']}) through "
        f"CostSpanProcessor and DuckDBSpanExporter into {shown}\n"
        f"{total['calls']} model calls, {_money(total['usd'])} in total, "
        f"{total['unpriced_calls']} calls without a price.\n"
    )
    sections = (
        ("What each feature costs", "per_feature", {}),
        ("Per agent and version", "per_agent", {}),
        (
            "The research loop, step by step (context grows; one run never stops)",
            "per_step",
            {"feature": "research"},
        ),
        ("The most expensive runs", "top_runs", {"limit": 5}),
        ("Calls without a price (never counted as $0, listed instead)", "unpriced", {}),
    )
    for title, name, params in sections:
        print(f"== {title}  [otel-costattr rollup {name.replace('_', '-')}]")
        rows = rollup(name, db=db, **params)
        keep = _DEMO_COLUMNS.get(name)
        if keep:
            rows = [{k: r[k] for k in keep} for r in rows]
        _print_table(rows)
        print()
    top = rollup("top_runs", db=db, limit=1)[0]["trace_id"]
    print("Next:")
    print(f"  otel-costattr trace {top} --db {shown}")
    print(f"  otel-costattr rollup per-model --agent triage --db {shown}  (routing on an expensive model)")
    print(f"  otel-costattr rollup step-jumps --db {shown}  (a whole document stuffed into context)")
    print(f"  otel-costattr rollup loops --db {shown}  (runs far longer than their agent's median)")
    print("  otel-costattr rollup --list")
    print(f"(done in {time.perf_counter() - started:.1f} s)")
    return 0


# --- store -----------------------------------------------------------------------------


def _size(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n / 2**10:,.1f} KiB"


def cmd_store_status(args: argparse.Namespace) -> int:
    from ..store.database import StoreError
    from ..store.maintenance import status

    try:
        st = status(_db(args))
    except StoreError as e:
        raise CLIError(str(e)) from e
    if args.format == "json":
        print(json.dumps(st.as_dict(), indent=2))
    else:
        stored = f"unknown ({st.stored_error})"
        if st.stored_spans is not None:
            stored = f"{st.stored_spans:,} spans"
        error = "none"
        if st.last_ingest_error:
            after = f"; ingesting again since {st.recovered_time}" if st.recovered_time else "; not resolved"
            error = f"{st.last_ingest_error_time}: {st.last_ingest_error}{after}"
        lines = [
            ("database", st.path),
            ("stored", stored),
            ("pending", f"{st.pending_files} files, {st.pending_spans:,} spans ({_size(st.pending_bytes)})"),
            ("quarantined", f"{len(st.quarantined)} files, {sum(q.spans or 0 for q in st.quarantined):,}"
             " spans" + (" (otel-costattr store repair retries them)" if st.quarantined else "")),
            ("dropped", f"{st.dropped_spans:,} spans"),
            ("last ingest error", error),
        ]  # fmt: skip
        for label, value in lines:
            print(f"{label:<18} {value}")
        for q in st.quarantined:
            print(f"  {q.name}: {q.reason or 'reason not recorded'}")
    return 3 if args.check and not st.healthy else 0


def cmd_store_repair(args: argparse.Namespace) -> int:
    from ..store.database import StoreError
    from ..store.maintenance import repair

    try:
        result = repair(_db(args), lock_timeout=args.lock_timeout)
    except StoreError as e:
        raise CLIError(str(e)) from e
    print(f"requeued {result.requeued} quarantined files; ingested {result.ingested_files} spool files")
    for q in result.still_quarantined:
        print(f"still quarantined: {q.name}: {q.reason or 'reason not recorded'}")
    return 1 if result.still_quarantined else 0


# --- parser ----------------------------------------------------------------------------


def _date(text: str) -> object:
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _add_pricing_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--pricing",
        action="append",
        metavar="FILE",
        help="a user price file layered over the bundled table (repeatable)",
    )


def _add_db_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="PATH",
        help="the DuckDB file the exporter writes (default: $OTEL_COSTATTR_DUCKDB_PATH, "
        "else otel-costattr.duckdb); opened read-only, retrying while an exporter writes",
    )


def _add_query_options(p: argparse.ArgumentParser, *, limit: int | None = None) -> None:
    # Values are checked by the rollups layer, so a bad one is one line: "Error: ...".
    _add_db_option(p)
    p.add_argument("--days", metavar="N", help="only the last N days (of model calls, by start time)")
    p.add_argument("--since", metavar="WHEN", help="from this UTC date or time (YYYY-MM-DD[THH:MM])")
    p.add_argument("--until", metavar="WHEN", help="up to this UTC date or time, excluded")
    p.add_argument("--service", help="only spans of this service.name")
    p.add_argument("--feature", help="only model calls attributed to this feature")
    p.add_argument("--agent", help="only model calls attributed to this agent")
    p.add_argument(
        "--limit", default=limit, metavar="N",
        help="at most N runs, 0 for all (rollups taking a limit)" + (f"; default {limit}" if limit else ""),
    )  # fmt: skip


def _add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format")
    p.add_argument(
        "--reprice",
        action="store_true",
        help="add usd_repriced: cost recomputed from the stored tokens with today's bundled "
        "table (plus any --pricing files), next to the cost stamped at the time",
    )
    _add_pricing_option(p)


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree (also used by the tests that check every command has help)."""
    parser = argparse.ArgumentParser(
        prog="otel-costattr",
        description="Cost attribution for OpenTelemetry GenAI spans.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    pricing = sub.add_parser("pricing", help="inspect and check pricing tables")
    psub = pricing.add_subparsers(dest="pricing_command", metavar="ACTION", required=True)
    p = psub.add_parser("list", help="list every priced model with its current rates")
    p.add_argument("--provider", help="only this pricing provider (e.g. openai)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    _add_pricing_option(p)
    p.set_defaults(handler=cmd_pricing_list)
    p = psub.add_parser("show", help="show how a model id resolves and its price history")
    p.add_argument("model", help="model id as spans report it (e.g. us.anthropic.claude-...-v1:0)")
    p.add_argument("--provider", help="provider name as spans report it (e.g. aws.bedrock)")
    _add_pricing_option(p)
    p.set_defaults(handler=cmd_pricing_show)
    p = psub.add_parser("check", help="validate user price files; exit 1 with the errors")
    p.add_argument("files", nargs="+", metavar="FILE", help="price files to check")
    p.set_defaults(handler=cmd_pricing_check)

    p = sub.add_parser("price", help="price one call from its token counts")
    p.add_argument("model", help="model id as spans report it")
    p.add_argument("--provider", help="provider name as spans report it")
    p.add_argument("--input", type=int, default=None, help="input tokens")
    p.add_argument("--output", type=int, default=None, help="output tokens (reasoning included)")
    p.add_argument("--cache-read", type=int, default=None, help="cache read tokens")
    p.add_argument("--cache-write", type=int, default=None, help="cache write tokens")
    p.add_argument("--reasoning", type=int, default=None, help="reasoning tokens")
    p.add_argument(
        "--input-includes-cache",
        choices=("auto", "yes", "no"),
        default="auto",
        help="whether --input counts the cache tokens too (auto: infer)",
    )
    p.add_argument("--service-tier", choices=("batch", "flex", "priority"), help="service tier")
    p.add_argument("--at", type=_date, default=None, help="price in force on this date (YYYY-MM-DD)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    _add_pricing_option(p)
    p.set_defaults(handler=cmd_price)

    p = sub.add_parser(
        "rollup",
        help="run a bundled rollup: per-feature, per-step, per-run, per-agent, per-model, "
        "stats, top-runs, step-jumps, loops, unpriced, daily, trace",
    )
    p.add_argument("name", nargs="?", help="the rollup (see --list), e.g. per-feature")
    p.add_argument("--list", action="store_true", help="list the rollups and their parameters")
    _add_query_options(p)
    p.add_argument(
        "--param", action="append", metavar="NAME=VALUE",
        help="a parameter the rollup declares (e.g. min_ratio=3); repeatable",
    )  # fmt: skip
    _add_output_options(p)
    p.set_defaults(handler=cmd_rollup)

    p = sub.add_parser("runs", help="the latest runs (traces): agent, feature, duration, calls, cost")
    _add_query_options(p, limit=20)
    _add_output_options(p)
    p.set_defaults(handler=cmd_runs)

    p = sub.add_parser("trace", help="one run as a tree: each span's own cost and its subtree's")
    p.add_argument("trace_id", metavar="TRACE_ID", help="the run's trace id (32 hex digits)")
    _add_db_option(p)
    _add_output_options(p)
    p.set_defaults(handler=cmd_trace)

    store = sub.add_parser("store", help="the span store's health: pending, quarantined and dropped spans")
    ssub = store.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    p = ssub.add_parser(
        "status",
        help="spool files waiting, files quarantined, spans dropped, the last ingest error "
        "(e.g. otel-costattr store status --db spans.duckdb)",
    )
    _add_db_option(p)
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.add_argument(
        "--check", action="store_true",
        help="exit 3 when anything is quarantined, dropped or failing (for cron and health checks)",
    )  # fmt: skip
    p.set_defaults(handler=cmd_store_status)
    p = ssub.add_parser(
        "repair",
        help="put quarantined spool files back and ingest them; exit 1 if some still cannot be read",
    )
    _add_db_option(p)
    p.add_argument(
        "--lock-timeout", type=float, default=10.0, metavar="SECONDS",
        help="how long to wait for a writer holding the database (default 10)",
    )  # fmt: skip
    p.set_defaults(handler=cmd_store_repair)

    p = sub.add_parser(
        "demo",
        help="trace a simulated multi-agent workload into a DuckDB file and show where the money goes",
    )
    p.add_argument(
        "--db", metavar="PATH",
        help="where to write it (default: otel-costattr-demo.duckdb; a previous demo file is replaced)",
    )  # fmt: skip
    p.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``otel-costattr`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (CLIError, PricingError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `otel-costattr ... | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
