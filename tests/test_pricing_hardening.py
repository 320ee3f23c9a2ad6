"""A pricing file can never hang, overflow or crawl: regexes that backtrack badly, absurd
prices and multipliers are refused at load naming file, model and field; over-long model ids
are never resolved nor cached; loading stays linear in the number of models."""

from __future__ import annotations

import sys
from decimal import Context, Decimal
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_pricing_file import GOOD_MODEL as MODEL
from test_pricing_file import load_error, write

from otel_costattr import CostStatus, PricingError, Usage, compute_cost, load_pricing
from otel_costattr.cli import main
from otel_costattr.pricing.model import MatchRule
from otel_costattr.pricing.table import _read_table_file
from otel_costattr.sdk.processor import CostSpanProcessor
from otel_costattr.semconv import COST, COST_STATUS

MATCH = 'match = [{ equals = "m1" }]'
USAGE = Usage(input_tokens=1_000_000, output_tokens=0)
PY311 = pytest.mark.skipif(sys.version_info < (3, 11), reason="re learnt this syntax in 3.11")


def load(path: Path):
    return load_pricing([path], bundled=False, use_env=False)


def with_regex(pattern: str) -> str:
    return MODEL.replace('{ equals = "m1" }', f"{{ regex = '{pattern}' }}")


# --- regexes that backtrack badly never load ---------------------------------------------

EXPONENTIAL = (
    "repeats a group holding a quantifier, alternation or lookahead: backtracking can take exponential time"
)


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("(a+)+$", f"'(a+)+' {EXPONENTIAL}"),
        ("(a|a)*", f"'(a|a)*' {EXPONENTIAL}"),
        ("(a|ab)*c", f"'(a|ab)*' {EXPONENTIAL}"),
        ("(?:x?){8}y", f"'(?:x?){{8}}' {EXPONENTIAL}"),
        (r"m\d+\d*", r"'\\d+' and '\\d*' can match the same characters back to back: merge them into one"),
        (
            ".*a.*a.*a",
            "'.*', '.*', '.*' can trade characters with one another: up to 16,777,216 ways to split "
            "a 256-character id (at most 65,536)",
        ),
        (
            "a?" * 17 + "a" * 17,
            "'a?', 'a?', 'a?' and 14 more can trade characters with one another: up to 131,072 ways "
            "to split a 256-character id (at most 65,536)",
        ),
        (r"(a)\1", r"a backreference '\1' at position 3 is not supported in pricing rules"),
        ("(?<=a)b", "lookbehind '(?<=' at position 0 is not supported in pricing rules"),
        ("(?i)m1", "inline flags '(?i' at position 0 is not supported in pricing rules"),
        pytest.param(
            "(?>a+)b", "an atomic group '(?>' at position 0 is not supported in pricing rules", marks=PY311
        ),
        pytest.param(
            "a*+b", "a possessive quantifier at position 1 is not supported in pricing rules", marks=PY311
        ),
    ],
)
def test_backtracking_regex_is_refused_naming_file_model_and_field(tmp_path, pattern, problem):
    path = write(tmp_path, with_regex(pattern))
    assert load_error(path) == f"{path}: model 'm1': match[0].regex: {problem}"


@pytest.mark.parametrize(
    "pattern",
    [
        r".*amazon\.nova-lite.*",  # the bundled aws.toml shape: two loops, quadratic at most
        r"claude-opus-5[-@]\d{8}",
        r"gpt-4o(-mini)?(-\d{4}-\d{2}-\d{2})?",
        r"llama-\d+(\.\d+)?-70b",
        r"(us|eu|apac)\.anthropic\.claude-[a-z0-9-]+",
        r"[^/]+/[^/]+",
    ],
)
def test_ordinary_regexes_still_load(tmp_path, pattern):
    table = load(write(tmp_path, with_regex(pattern)))
    assert [e.id for e in table.models()] == ["m1"]


def test_pricing_check_refuses_a_catastrophic_regex(tmp_path, capsys):
    path = write(tmp_path, with_regex("(a+)+$"))
    code = main(["pricing", "check", str(path)])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err == f"Error: {path}: model 'm1': match[0].regex: '(a+)+' {EXPONENTIAL}\n"


def test_normalize_rules_are_checked_as_searches(tmp_path):
    # A normalisation is searched for (re.sub): every start position is one more choice, so
    # `.*x.*`, fine as a whole-id match rule, is cubic there.
    table = tmp_path / "_table.toml"
    table.write_text("version = 'x'\nproviders = ['acme']\n[[normalize]]\npattern = '.*x.*'\nreplace = ''\n")
    with pytest.raises(PricingError) as info:
        _read_table_file(str(table), table.read_bytes())
    assert str(info.value) == (
        f"{table}: normalize[0].pattern: '(search)', '.*', '.*' can trade characters with one another: "
        "up to 16,777,216 ways to split a 256-character id (at most 65,536)"
    )


# --- over-long model ids are not resolved, nor cached --------------------------------------


def test_a_one_megabyte_model_id_gets_invalid_usage_on_a_real_span(tmp_path):
    table = load(write(tmp_path, MODEL.replace('{ equals = "m1" }', '{ starts_with = "m" }')))
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(CostSpanProcessor(table))
    huge = "m" * 1_000_000  # matches starts_with "m": only the length keeps it unpriced
    tracer = provider.get_tracer("test")
    for model in (huge, huge, "m" * 256):
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "acme",
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": 1_000_000,
            "gen_ai.usage.output_tokens": 0,
        }
        with tracer.start_as_current_span("chat", attributes=attrs):
            pass
    provider.shutdown()
    first, second, longest = (s.attributes for s in exporter.get_finished_spans())
    for attrs in (first, second):
        assert attrs[COST_STATUS] == "invalid_usage"
        assert COST not in attrs
    assert (longest[COST_STATUS], longest[COST]) == ("priced", 1.0)
    assert table.cached_quote((huge, "acme", None)) is None


def test_compute_cost_says_why_an_over_long_id_is_not_priced(tmp_path):
    table = load(write(tmp_path, MODEL.replace('{ equals = "m1" }', '{ starts_with = "m" }')))
    cost = compute_cost("m" * 257, USAGE, table=table)
    assert (cost.status, cost.total) == (CostStatus.INVALID_USAGE, None)
    assert cost.detail == "model id longer than 256 characters (257)"
    assert table.resolve("m" * 257) is None
    assert table.candidate_ids("m" * 257) == []
    assert compute_cost("m" * 256, USAGE, table=table).total == Decimal(1)


def test_caches_never_keep_an_over_long_key(tmp_path):
    # A span's provider and service tier are arbitrary strings too: 4096 one-megabyte keys
    # must not stay in the quote cache.
    table = load(write(tmp_path, MODEL))
    provider = "p" * 1_000
    assert compute_cost("m1", USAGE, provider=provider, table=table, start_time=0).total == Decimal(1)
    assert table.cached_quote(("m1", provider, None)) is None
    assert compute_cost("m1", USAGE, provider="acme", table=table, start_time=0).total == Decimal(1)
    assert table.cached_quote(("m1", "acme", None)) is not None


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (MATCH, 'match = [{ starts_with = "' + "m" * 257 + '" }]', "match[0].starts_with"),
        (MATCH, MATCH + '\nexamples = ["' + "m" * 257 + '"]', "examples[0]"),
    ],
)
def test_rule_values_and_examples_that_no_id_could_reach_are_refused(tmp_path, old, new, field):
    path = write(tmp_path, MODEL.replace(old, new))
    assert load_error(path) == (
        f"{path}: model 'm1': {field}: longer than 256 characters: no id that long is ever resolved"
    )


def test_an_over_long_canonical_id_is_refused(tmp_path):
    path = write(tmp_path, MODEL.replace('id = "m1"\nmatch = [{ equals = "m1" }]', f'id = "{"m" * 257}"'))
    assert load_error(path) == f"{path}: model[0].id: longer than 256 characters"


# --- prices and multipliers within sane bounds ---------------------------------------------


TOO_DEAR = "must be at most 100000 USD per million tokens, got"
BAD_FACTOR = "multiplier: must be a number > 0 and <= 100, got"
PRICED = "output = 2"  # the end of the model's first [[model.price]]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("input = 1", "input = 1e308", f"model 'm1': price[0].input: {TOO_DEAR} 1E+308"),
        ("input = 1", "input = 100000.01", f"model 'm1': price[0].input: {TOO_DEAR} 100000.01"),
        (PRICED, PRICED + "\ncache_write_1h = 2e5", f"model 'm1': price[0].cache_write_1h: {TOO_DEAR} 2E+5"),
        (
            PRICED,
            PRICED + "\nbatch = { input = 1, output = 1e9 }",
            f"model 'm1': price[0].batch.output: {TOO_DEAR} 1E+9",
        ),
        (
            PRICED,
            PRICED + "\ntiers = [{ above = 1000, input = 1e6, output = 4 }]",
            f"model 'm1': price[0].tiers[0].input: {TOO_DEAR} 1E+6",
        ),
        (
            PRICED,
            PRICED + "\nwindows = [{ start = 01:00:00, end = 02:00:00, input = 1, output = 1e300 }]",
            f"model 'm1': price[0].windows[0].output: {TOO_DEAR} 1E+300",
        ),
        (
            "input = 1",
            "input = 1e-13",
            "model 'm1': price[0].input: must have at most 12 decimal places, got 1E-13",
        ),
        (
            PRICED,
            PRICED + "\ntiers = [{ above = 1000000000, input = 2, output = 4 }]",
            "model 'm1': price[0].tiers[0].above: must be below 1,000,000,000 input tokens, "
            "got 1,000,000,000",
        ),
        (MATCH, MATCH + "\nmultiplier = 0", f"model 'm1': {BAD_FACTOR} 0"),
        (MATCH, MATCH + "\nmultiplier = 1000", f"model 'm1': {BAD_FACTOR} 1000"),
        (MATCH, MATCH + "\nmultiplier = inf", f"model 'm1': {BAD_FACTOR} Infinity"),
        (
            MATCH,
            MATCH + "\nmultiplier = '0.8'",
            "model 'm1': multiplier: must be a number (a factor on every price), got '0.8'",
        ),
        ('provider = "acme"', 'provider = "acme"\nmultiplier = 1e308', f"{BAD_FACTOR} 1E+308"),
        # Refused before too, and still, with the message tests/test_pricing_file.py pins.
        (
            "input = 1",
            "input = inf",
            "model 'm1': price[0].input: must be a finite number >= 0, got Infinity",
        ),
        ("input = 1", "input = -0.5", "model 'm1': price[0].input: must be a finite number >= 0, got -0.5"),
    ],
)
def test_absurd_prices_and_multipliers_are_refused(tmp_path, old, new, message):
    path = write(tmp_path, MODEL.replace(old, new))
    assert load_error(path) == f"{path}: {message}"


def test_pricing_check_refuses_1e308(tmp_path, capsys):
    path = write(tmp_path, MODEL.replace("input = 1", "input = 1e308"))
    code = main(["pricing", "check", str(path)])
    _, err = capsys.readouterr()
    assert code == 1
    assert err == (f"Error: {path}: model 'm1': price[0].input: {TOO_DEAR} 1E+308\n")


def test_multipliers_together_cannot_lift_a_price_past_the_bound(tmp_path):
    # Each factor is within (0, 100], yet provider x model x a $100,000 price would be $1e9.
    text = (
        MODEL.replace('provider = "acme"', 'provider = "acme"\nmultiplier = 100')
        .replace(MATCH, f"{MATCH}\nmultiplier = 100")
        .replace("input = 1", "input = 100000")
    )
    path = write(tmp_path, text)
    assert load_error(path) == (
        f"{path}: model 'm1': multiplier: x10000 makes price[0].input 1000000000 USD per million tokens,"
        " above 100000"
    )


@pytest.mark.parametrize(
    ("provider", "model", "extra", "field"),
    [
        ("0.95", "0.9375", "", "price[0].input 0.0000556640625"),  # 10 + 2 + 4 places: 13
        (
            "1",
            "0.5",
            "batch = { input = 0.000000000001, output = 1 }",
            "price[0].batch.input 0.0000000000005",
        ),
        (
            "0.5",
            "1",
            "tiers = [{ above = 1000, input = 1, output = 0.000000000003 }]",
            "price[0].tiers[0].output 0.0000000000015",
        ),
    ],
)
def test_multipliers_cannot_give_a_rate_more_places_than_repricing_holds(
    tmp_path, provider, model, extra, field
):
    # A review found such a file loading, then every `rollup --reprice` and `whatif` failing
    # on it with a message naming neither the file nor the field (rollups.queries).
    text = (
        MODEL.replace('provider = "acme"', f'provider = "acme"\nmultiplier = {provider}')
        .replace(MATCH, f"{MATCH}\nmultiplier = {model}")
        .replace("input = 1\n", "input = 0.0000625\n" if not extra else "input = 1\n")
        .replace(PRICED, f"{PRICED}\n{extra}")
    )
    path = write(tmp_path, text)
    factor = (Decimal(provider) * Decimal(model)).normalize()
    assert load_error(path) == (
        f"{path}: model 'm1': multiplier: x{factor:f} makes {field} USD per million tokens,"
        " more than 12 decimal places (what repricing holds): a multiplier of fewer decimal places"
        " avoids it"
    )


def test_trailing_zeros_are_no_decimal_places(tmp_path):
    # A review: 2.5000000000000 as written was refused (13 places) though 2.5 after a
    # multiplier is not; the places are counted alike now.
    path = write(tmp_path, MODEL.replace("input = 1\n", "input = 2.5000000000000\n"))
    table = load_pricing([path], bundled=False, use_env=False)
    assert table.resolve("m1", "acme") is not None


def test_a_rate_of_twelve_places_after_multipliers_loads_and_reprices(tmp_path):
    import duckdb

    from otel_costattr.rollups.queries import load_prices

    # 0.000000000005 x 0.2 is 1.0E-12 as Decimal arithmetic writes it: twelve places, not 13.
    text = MODEL.replace(MATCH, f"{MATCH}\nmultiplier = 0.2").replace(
        "input = 1\n", "input = 0.000000000005\n"
    )
    table = load(write(tmp_path, text))
    con = duckdb.connect()
    assert load_prices(con, table) == 1
    assert con.execute("SELECT input FROM costattr_prices").fetchone() == (Decimal("1E-12"),)


def test_an_id_that_grows_when_lower_cased_is_held_to_the_length_bound():
    from otel_costattr.pricing.resolve import candidate_ids

    assert candidate_ids("\u0130" * 256, []) == []  # 256 characters, 512 once lower-cased
    assert candidate_ids("A" * 256, []) == ["a" * 256]


def test_multipliers_on_a_precise_price_stay_exact(tmp_path):
    # 4 + 6 + 2 places: exactly the 12 a rate may have after its multipliers.
    price, by_provider, by_model = "12345.6789", "0.123457", "0.98"
    text = (
        MODEL.replace('provider = "acme"', f'provider = "acme"\nmultiplier = {by_provider}')
        .replace(MATCH, f"{MATCH}\nmultiplier = {by_model}")
        .replace("input = 1", f"input = {price}")
    )
    table = load(write(tmp_path, text))
    exact = Context(prec=100)
    expected = exact.multiply(exact.multiply(Decimal(price), Decimal(by_provider)), Decimal(by_model))
    assert compute_cost("m1", USAGE, table=table).total == expected  # a million tokens: the rate


# --- loading is linear in the number of models ---------------------------------------------


def test_overlap_check_does_not_compare_every_model_with_every_other(tmp_path, monkeypatch):
    # No timing here (see benchmarks/bench_pricing_load.py): count the rule evaluations.
    # Comparing each probe with every model costs n**2 of them; an index, about one per example.
    n = 1000
    models = "".join(
        f'[[model]]\nid = "m{i}"\nmatch = [{{ equals = "m{i}" }}, {{ starts_with = "m{i}-" }}]\n'
        f'examples = ["m{i}-2025"]\n[[model.price]]\ninput = 1\noutput = 2\n'
        for i in range(n)
    )
    regex = '[[model]]\nid = "r"\nmatch = [{ regex = "r-\\\\d+" }]\n[[model.price]]\ninput = 1\noutput = 2\n'
    path = write(tmp_path, 'provider = "acme"\n' + models + regex)
    calls = 0
    matches = MatchRule.matches

    def counting(self: MatchRule, model_id: str) -> bool:
        nonlocal calls
        calls += 1
        return matches(self, model_id)

    monkeypatch.setattr(MatchRule, "matches", counting)
    table = load(path)
    assert len(list(table.models())) == n + 1
    assert calls <= 4 * (n + 1)  # examples against their own rules, every probe against the one regex


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ('[{ ends_with = "-m1" }]', "model 'm0': match: 'x-m1' also matches model 'm1'"),
        ("[{ regex = 'x-.*' }]", "model 'm0': match: 'x-m1' also matches model 'm1'"),
        ('[{ equals = "x-m1" }]', "model 'm0': match: 'x-m1' also matches model 'm1'"),
        ('[{ starts_with = "x-" }]', "model 'm0': match: 'x-m1' also matches model 'm1'"),
    ],
)
def test_overlaps_are_still_found_by_every_kind_of_rule(tmp_path, rules, message):
    text = (
        'provider = "acme"\n'
        '[[model]]\nid = "m0"\nmatch = [{ equals = "x-m1" }]\n[[model.price]]\ninput = 1\noutput = 2\n'
        f'[[model]]\nid = "m1"\nmatch = {rules}\n[[model.price]]\ninput = 1\noutput = 2\n'
        f'[[model]]\nid = "m2"\nmatch = {rules}\n[[model.price]]\ninput = 1\noutput = 2\n'
    )
    path = write(tmp_path, text)
    assert load_error(path) == f"{path}: {message}"


# --- numbers TOML allows that no Decimal context holds, and files nested past the parser ----


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        # 1e-999999999999 was counted "0 places" (normalize rounds it to zero in a context),
        # loaded, then overflowed building the rates: a traceback, not one line.
        (
            "input = 1",
            "input = 1e-999999999999",
            "model 'm1': price[0].input: must have at most 12 decimal places, got 1E-999999999999",
        ),
        (
            MATCH,
            MATCH + "\nmultiplier = 1e-999999999",
            "model 'm1': multiplier: must have at most 18 decimal places, got 1E-999999999",
        ),
    ],
)
def test_exponents_past_any_context_are_refused_in_one_line(tmp_path, old, new, message):
    path = write(tmp_path, MODEL.replace(old, new))
    assert load_error(path) == f"{path}: {message}"


def test_a_regional_multiplier_past_any_context_is_refused_in_one_line(tmp_path, capsys):
    path = write(
        tmp_path,
        '[[region]]\nhost = "azure"\nregions = ["x"]\nmultiplier = 1e-999999999\nmodels = ["gpt-4o"]\n',
    )
    assert main(["pricing", "check", str(path)]) == 1
    _, err = capsys.readouterr()
    assert err == (
        f"Error: {path}: region[0]: multiplier: must have at most 18 decimal places, got 1E-999999999\n"
    )


@pytest.mark.parametrize("zero", ["0e-1000000", "0e-200000", "0.00000000000000000000000000000000"])
def test_a_zero_written_with_a_huge_exponent_prices_as_zero(tmp_path, zero):
    # A zero as TOML allows it: 0e-1000000 overflowed at load, 0e-200000 loaded with rates
    # scaled by 10**200000 (every call's arithmetic on 660,000-bit integers, a 82-digit total).
    path = write(tmp_path, MODEL.replace("output = 2", f"output = {zero}"))
    cost = compute_cost("m1", Usage(input_tokens=1000, output_tokens=10), table=load(path))
    assert cost.status == CostStatus.PRICED
    assert cost.total == Decimal("0.001")
    assert len(str(cost.total)) < 24


def test_a_file_nested_past_the_parser_fails_in_one_line(tmp_path, capsys):
    path = write(tmp_path, MODEL + "x = " + "[" * 5000 + "]" * 5000 + "\n")
    assert load_error(path) == f"{path}: invalid TOML: nested too deeply"
    assert main(["price", "m1", "--input", "1", "--pricing", str(path)]) == 1
    _, err = capsys.readouterr()
    assert err == f"Error: {path}: invalid TOML: nested too deeply\n"


def test_pricing_diff_of_a_json_file_nested_past_the_parser_fails_in_one_line(tmp_path, capsys):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000)
    assert main(["pricing", "diff", str(path)]) == 1
    _, err = capsys.readouterr()
    assert err == f"Error: {path}: not JSON: nested too deeply\n"
