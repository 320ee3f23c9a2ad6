"""``pricing list|show|check`` and ``price``: the pricing table, read and checked."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Sequence

import click

from ..cost.engine import Usage, compute_cost
from ..display import count, money, rate
from ..pricing.foreign import compare, coverage, read_foreign
from ..pricing.forms import UNPRICED, id_form
from ..pricing.model import MAX_MODEL_ID, RATE_KEYS, PricingError
from ..pricing.parse import parse_provider_file
from ..pricing.regions import user_file_parts
from ..pricing.table import PriceTable, load_pricing
from .options import did_you_mean, price_table, pricing_option
from .output import CLIError, Record, Table, exact, output

# The calendar date as the help shows it: Python's fromisoformat also takes 20250905 and
# 2025-W36-5, and read the epoch seconds 1757030400 as 1757-03-04 (a review: priced at
# DeepSeek's first price, silently).
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?=$|[Tt ])")
_TABLE_RATES = ("input", "output", "cache_read", "cache_write")  # the table's columns; json has all


@click.group()
def pricing() -> None:
    """Inspect and check pricing tables.

    \b
    Example:
      otel-costattr pricing list --provider openai
    """


@pricing.command("list")
@click.option("--provider", help="only this pricing provider (e.g. openai, or aws.bedrock as spans name it)")
@pricing_option
@output
def pricing_list(provider: str | None, pricing: Sequence[str]) -> Table:
    """List every priced model with its current rates (USD per million tokens).

    \b
    Example:
      otel-costattr pricing list --provider anthropic --format csv
    """
    table = price_table(pricing)
    if provider is not None:
        provider = _known_provider(table, provider)
    entries = [e for e in table.models() if provider is None or e.provider == provider]
    rows = [
        {"provider": e.provider, "model": e.id, **e.price_at(None).standard.rates.as_dict()} for e in entries
    ]
    columns = ("provider", "model", *RATE_KEYS)
    return Table(
        columns=columns,
        rows=rows,
        money=RATE_KEYS,
        cells=dict.fromkeys(RATE_KEYS, rate),
        hide=tuple(k for k in RATE_KEYS if k not in _TABLE_RATES),
        title=f"pricing version {table.version}  ({len(rows)} models, USD per million tokens)",
    )


def _known_provider(table: PriceTable, name: str) -> str:
    """A pricing provider id for ``--provider`` (an id, or a name spans carry); an unknown one
    is a usage error naming the closest and every known id."""
    known = sorted({e.provider for e in table.models()})
    found = name if name in known else table.provider_id(name)
    if found in known:
        return found
    hint = did_you_mean(name.strip().lower(), known)
    raise click.BadParameter(
        f"unknown provider {name!r}.{hint} Known: {', '.join(known)}", param_hint="'--provider'"
    )


@pricing.command("show")
@click.argument("model")
@click.option("--provider", help="provider name as spans report it (e.g. aws.bedrock)")
@pricing_option
def pricing_show(model: str, provider: str | None, pricing: Sequence[str]) -> None:
    """Show how a model id (as spans report it) resolves, and its price history.

    \b
    Example:
      otel-costattr pricing show us.anthropic.claude-sonnet-4-5-20250929-v1:0
    """
    table = price_table(pricing)
    entry = table.resolve(model, provider)
    if entry is None:
        tried = table.candidate_ids(model)
        if not tried:  # resolution never looks at such an id (span data can be anything)
            raise CLIError(
                f"model id too long to resolve ({len(model):,} characters, at most {MAX_MODEL_ID})"
            )
        form = id_form(model)
        if form is not None and form.host == UNPRICED:  # not an API price: say why
            raise CLIError(f"unknown model {model!r}: {form.why}; price it with an equals rule in a file")
        raise CLIError(
            f"unknown model {model!r} (tried: {', '.join(tried)}); see 'otel-costattr pricing list'"
        )
    echo = click.echo
    echo(f"{entry.provider}/{entry.id}" + (f"  ({entry.name})" if entry.name else ""))
    echo(f"  pricing version {table.version}, from {entry.origin}")
    echo(f"  source {entry.source or '-'} (retrieved {entry.retrieved or '-'})")
    if entry.alias_of:
        provider, target = entry.alias_target or (entry.provider, entry.alias_of)
        echo(f"  alias of {entry.alias_of} (provider {provider}, model {target})")
    for period in entry.periods:
        echo(f"  {f'since {period.since}' if period.since else 'from the start'}:")
        for label, schedule in [("standard", period.standard), *period.service_tiers.items()]:
            echo(f"    {label}: {_rates(schedule.rates)}")
            for tier in schedule.tiers:
                echo(f"      above {tier.above:,} input tokens: {_rates(tier.rates)}")
            if schedule is period.standard:  # a requested service tier wins over a window
                for window in period.windows:
                    hours = f"{_clock(window.start)}-{_clock(window.end)}"
                    echo(f"      daily {hours} UTC: {_rates(window.rates)}")


def _clock(second_of_day: int) -> str:
    """A time-of-day window's bound, HH:MM (HH:MM:SS when it has seconds)."""
    hours, rest = divmod(second_of_day, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{seconds:02d}" if seconds else "")


def _rates(rates: object) -> str:
    return ", ".join(f"{k} {rate(v)}" for k, v in rates.as_dict().items() if v is not None)  # type: ignore[attr-defined]


@pricing.command("check")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.pass_context
def pricing_check(ctx: click.Context, files: Sequence[str]) -> None:
    """Validate user price files; exit 1 with one 'Error:' line per bad file.

    Files that are each fine are then loaded together, as OTEL_COSTATTR_PRICING_FILES
    layers them: two of them pricing one model or claiming one provider name is an error.

    \b
    Example:
      otel-costattr pricing check my-prices.toml
    """
    errors = 0
    for path in files:
        try:
            raw, rules = user_file_parts(path)  # a provider file, [[region]] rules, or both
            pf = parse_provider_file(path, raw=raw, user=True) if raw is not None else None
            load_pricing([path], use_env=False)  # also checks aliases and fallbacks in context
        except PricingError as e:
            click.echo(f"Error: {e}", err=True)
            errors += 1
        else:
            what = [f"{pf.provider}, {count(len(pf.models), 'model')}"] if pf is not None else []
            what += [count(len(rules), "region rule")] if rules else []
            click.echo(f"{path}: ok ({', '.join(what)})")
    if not errors and len(files) > 1:
        try:
            load_pricing(files, use_env=False)
        except PricingError as e:
            click.echo(f"Error: {e}", err=True)
            errors += 1
    ctx.exit(1 if errors else 0)


@pricing.command("diff")
@click.argument("other", metavar="OTHER.json")
@click.option("--all", "show_all", is_flag=True, help="also list the models whose rates agree")
@click.option("--at", callback=lambda c, p, t: _date(c, p, t), metavar="YYYY-MM-DD", help="our prices then")
@pricing_option
@output
def pricing_diff(other: str, show_all: bool, at: dt.date | None, pricing: Sequence[str]) -> Table:
    """Compare our prices with a LiteLLM or genai-prices price file, model by model.

    Each chat model of OTHER.json (LiteLLM's model_prices_and_context_window.json, or
    genai-prices' data.json) is resolved as a span naming its provider would be; a row per
    rate that differs (USD per million tokens) and per model we do not price.

    \b
    Example:
      otel-costattr pricing diff model_prices_and_context_window.json --format csv
    """
    table = price_table(pricing)
    try:
        fmt, prices = read_foreign(other)
    except PricingError as e:
        raise CLIError(str(e)) from None
    diffs = compare(table, prices, at)
    rows = []
    for d in diffs:
        base = {"model": d.foreign.key, "provider": d.foreign.provider, "ours": d.entry, "status": d.status}
        if d.status == "differs":
            rows += [
                {**base, "rate": f, "ours_usd": mine, "theirs_usd": theirs} for f, mine, theirs in d.fields
            ]
        elif d.status == "unknown" or (show_all and d.status == "same"):
            rows.append({**base, "rate": None, "ours_usd": None, "theirs_usd": None})
    counts = Counter(d.status for d in diffs)
    cov = coverage(table, diffs)
    known, resolved = sum(n for n, _ in cov.values()), sum(ok for _, ok in cov.values())
    share = f"{100 * resolved / known:.1f}%" if known else "-"
    title = (
        f"{other} ({fmt}, {len(diffs)} chat models) against pricing {table.version}: "
        f"{counts['same']} same, {counts['differs']} differ, {counts['unknown']} unknown here, "
        f"{counts['other-provider']} of providers we do not price; major providers: {resolved} of "
        f"{known} resolve ({share}). Rates in USD per million tokens."
    )
    columns = ("model", "provider", "ours", "status", "rate", "ours_usd", "theirs_usd")
    return Table(columns=columns, rows=rows, money=("ours_usd", "theirs_usd"),
                 cells=dict.fromkeys(("ours_usd", "theirs_usd"), rate), title=title)  # fmt: skip


def _date(ctx: click.Context, param: click.Parameter, text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"not a date (YYYY-MM-DD): {text!r}", ctx, param) from None


def _moment(ctx: click.Context, param: click.Parameter, text: str | None) -> dt.date | dt.datetime | None:
    """A date, or a date and time (time-of-day prices depend on it); naive means UTC."""
    if text is None or "T" not in text.upper() and " " not in text.strip():
        return _date(ctx, param, text)
    try:
        if not _ISO_DATE.match(text.strip()):
            raise ValueError
        return dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        wanted = "not a date or date and time (YYYY-MM-DD[THH:MM])"
        raise click.BadParameter(f"{wanted}: {text!r}", ctx, param) from None


@click.command()
@click.argument("model")
@click.option("--provider", help="provider name as spans report it")
@click.option("--input", "input_", type=int, help="input tokens")
@click.option("--output", "output_", type=int, help="output tokens (reasoning included)")
@click.option("--cache-read", type=int, help="cache read tokens")
@click.option("--cache-write", type=int, help="cache write tokens")
@click.option("--reasoning", type=int, help="reasoning tokens")
@click.option(
    "--input-includes-cache", type=click.Choice(("auto", "yes", "no")), default="auto", show_default=True,
    help="whether --input counts the cache tokens too (auto: infer)",
)  # fmt: skip
@click.option("--service-tier", type=click.Choice(("batch", "flex", "priority")), help="service tier")
@click.option(
    "--at", callback=_moment, metavar="YYYY-MM-DD[THH:MM]",
    help="price in force then (a date: its 00:00 UTC; a time without offset: UTC)",
)  # fmt: skip
@pricing_option
@output
def price(model: str, provider: str | None, input_: int | None, output_: int | None, cache_read: int | None,
          cache_write: int | None, reasoning: int | None, input_includes_cache: str, service_tier: str | None,
          at: dt.date | dt.datetime | None, pricing: Sequence[str]) -> Record:  # fmt: skip
    """Price one call from its token counts.

    \b
    Example:
      otel-costattr price claude-sonnet-4-5 --input 1200 --output 300 --cache-read 1000
    """
    usage = Usage(
        input_tokens=input_,
        output_tokens=output_,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
        input_includes_cache={"auto": None, "yes": True, "no": False}[input_includes_cache],
    )
    cost = compute_cost(
        model, usage, provider=provider, start_time=at, service_tier=service_tier, table=price_table(pricing)
    )
    if cost.total is None:
        raise CLIError(f"{cost.status.value}: {cost.detail or 'no cost'}")
    if service_tier and cost.service_tier != service_tier:
        # As the engine bills a span whose tier the model lacks; said, never silent.
        click.echo(
            f"Note: {cost.provider}/{cost.model} has no {service_tier} tier"
            f"{f' on {at}' if at else ''}: priced at the standard rate",
            err=True,
        )
    parts = cost.parts()
    data = {
        "model": cost.model,
        "provider": cost.provider,
        "pricing_version": cost.pricing_version,
        "status": cost.status.value,
        "service_tier": cost.service_tier,  # the tier applied (None: standard)
        "usd": cost.total,
        **parts,
    }
    tier = f"  {cost.service_tier} tier" if cost.service_tier else ""
    lines = [f"{cost.provider}/{cost.model}  pricing {cost.pricing_version}{tier}"]
    lines += [f"  {name:<12}{money(value):>14}" for name, value in parts.items() if value]
    lines.append(f"  {'total':<12}{money(cost.total):>14}   (exact: {exact(cost.total)} USD)")
    return Record(data=data, text="\n".join(lines), money=("usd", *parts))
