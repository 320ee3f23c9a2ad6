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

from .cost import Usage, compute_cost
from .pricing import PriceTable, load_pricing
from .pricing_file import PricingError, parse_provider_file
from .version import __version__

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
