"""Malformed pricing files fail at load time with a message naming file, model and field;
user files layer over a table."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from otel_costattr import ENV_PRICING_FILES, PricingError, Usage, compute_cost, load_pricing

FIXTURE = Path(__file__).parent / "data" / "test_prices.toml"

GOOD_MODEL = """
provider = "acme"
[[model]]
id = "m1"
match = [{ equals = "m1" }]
[[model.price]]
input = 1
output = 2
"""


def write(tmp_path: Path, text: str, name: str = "prices.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_error(path: Path) -> str:
    with pytest.raises(PricingError) as info:
        load_pricing([path], bundled=False, use_env=False)
    return str(info.value)


def test_good_file_loads(tmp_path):
    table = load_pricing([write(tmp_path, GOOD_MODEL)], bundled=False, use_env=False)
    assert [e.id for e in table.models()] == ["m1"]


def test_one_path_is_one_file_not_its_characters(tmp_path):
    # load_pricing("my.toml") read "m", "y", ... and failed on "m: cannot read" (a review).
    path = write(tmp_path, GOOD_MODEL)
    for given in (path, str(path)):
        assert [e.id for e in load_pricing(given, bundled=False, use_env=False).models()] == ["m1"]
    with pytest.raises(PricingError, match=r"^/\S*missing\.toml: cannot read"):
        load_pricing(str(tmp_path / "missing.toml"), use_env=False)


def test_a_model_nothing_else_probes_is_refused_when_its_id_resolves_elsewhere(tmp_path):
    # A regex of dated snapshots and no example: its own rules are never probed, and its id
    # went to the family prefix (priced 20x) without a word once the id was skipped.
    text = GOOD_MODEL.replace('equals = "m1"', 'starts_with = "m1"') + (
        "[[model]]\nid = \"m1-mini\"\nmatch = [{ regex = 'm1-mini-[0-9]{4}' }]\n"
        "[[model.price]]\ninput = 3\noutput = 4\n"
    )
    message = load_error(write(tmp_path, text))
    assert "model 'm1-mini': match: its id 'm1-mini' resolves to model 'm1', and none" in message
    # nor does an equals value of its own (a label id) make it safe (a review): the id still
    # goes to m1
    labelled = text.replace("{ regex = 'm1-mini-[0-9]{4}' }", "{ equals = 'eu.m1' }")
    assert "its id 'm1-mini' resolves to model 'm1'" in load_error(write(tmp_path, labelled))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD_MODEL + "colour = 'red'\n", "model 'm1': price[0].colour: unknown key"),
        (GOOD_MODEL.replace("output = 2", ""), "model 'm1': price[0].output: missing price"),
        (
            GOOD_MODEL.replace("input = 1", "input = -1"),
            "model 'm1': price[0].input: must be a finite number >= 0, got -1",
        ),
        (
            GOOD_MODEL.replace("input = 1", "input = '1'"),
            "model 'm1': price[0].input: must be a number (USD per million tokens), got '1'",
        ),
        (
            GOOD_MODEL.replace("input = 1", "input = true"),
            "model 'm1': price[0].input: must be a number (USD per million tokens), got True",
        ),
        (
            GOOD_MODEL.replace("input = 1", "input = nan"),
            "model 'm1': price[0].input: must be a finite number >= 0, got NaN",
        ),
        (
            GOOD_MODEL.replace("[[model.price]]\ninput = 1\noutput = 2\n", ""),
            "model 'm1': price: missing: at least one [[model.price]] is required",
        ),
        (GOOD_MODEL + GOOD_MODEL.split("\n", 2)[2], "model 'm1': id: duplicate model id in this file"),
        (
            GOOD_MODEL
            + GOOD_MODEL.split("\n", 2)[2]
            .replace('id = "m1"', 'id = "m2"')
            .replace('equals = "m1"', 'starts_with = "m"'),
            "model 'm1': match: 'm1' also matches model 'm2'",
        ),
        (  # two prices for a call at 02:30 (the engine took the first, SQL repricing either)
            GOOD_MODEL + "windows = [{ start = 01:00:00, end = 04:00:00, input = 0.5, output = 1 },"
            " { start = 02:00:00, end = 05:00:00, input = 0.25, output = 1 }]\n",
            "model 'm1': price[0].windows[1]: overlaps price[0].windows[0]: a call in both would have"
            " two prices",
        ),
        (  # across midnight
            GOOD_MODEL + "windows = [{ start = 22:00:00, end = 02:00:00, input = 0.5, output = 1 },"
            " { start = 01:00:00, end = 03:00:00, input = 0.25, output = 1 }]\n",
            "model 'm1': price[0].windows[1]: overlaps price[0].windows[0]: a call in both would have"
            " two prices",
        ),
        (  # was cut to 02:00:00 silently
            GOOD_MODEL + "windows = [{ start = 01:00:00, end = 02:00:00.5, input = 0.5, output = 1 }]\n",
            "model 'm1': price[0].windows[0].end: whole seconds only, got 02:00:00.500000",
        ),
        (  # a family's prefix that takes another model's own id (billed at the family's rates)
            GOOD_MODEL.replace('equals = "m1"', 'starts_with = "m1"')
            + GOOD_MODEL.split("\n", 2)[2]
            .replace('id = "m1"', 'id = "m1-mini"')
            .replace('equals = "m1"', 'starts_with = "m1-mini"'),
            "model 'm1-mini': match: 'm1-mini' also matches model 'm1'",
        ),
        (
            GOOD_MODEL.replace('{ equals = "m1" }', "{ regex = 'm1(' }"),
            "model 'm1': match[0].regex: invalid regex: missing ), unterminated subpattern at position 2",
        ),
        (
            GOOD_MODEL.replace('{ equals = "m1" }', '{ glob = "m*" }'),
            "model 'm1': match[0].glob: unknown rule (allowed: equals, starts_with, ends_with, regex)",
        ),
        (
            GOOD_MODEL.replace('{ equals = "m1" }', '{ equals = "M1" }'),
            "model 'm1': match[0].equals: ids are matched lower-cased: write the rule in lower case",
        ),
        (
            GOOD_MODEL.replace(
                'match = [{ equals = "m1" }]', 'match = [{ equals = "m1" }]\nexamples = ["m2"]'
            ),
            "model 'm1': examples[0]: 'm2' matches no rule of this model",
        ),
        (
            GOOD_MODEL + "[[model.price]]\ninput = 1\noutput = 1\n",
            "model 'm1': price[1].since: missing: only the first price may omit it",
        ),
        (
            GOOD_MODEL.replace("input = 1", "since = 2026-02-01\ninput = 1")
            + "[[model.price]]\nsince = 2026-01-01\ninput = 1\noutput = 1\n",
            "model 'm1': price[1].since: dates must increase (oldest price first)",
        ),
        (
            GOOD_MODEL + "cache_read = 0.1\ntiers = [{ above = 1000, input = 2, output = 4 }]\n",
            "model 'm1': price[0].tiers[0].cache_read: missing price (the base rates have it)",
        ),
        (
            GOOD_MODEL + "cache_read = 0.1\nbatch = { input = 0.5, output = 1 }\n",
            "model 'm1': price[0].batch.cache_read: missing price (the base rates have it)",
        ),
        (  # a review found the variant's long requests priced at its base rates, not the tier's
            GOOD_MODEL
            + "tiers = [{ above = 1000, input = 2, output = 4 }]\nbatch = { input = 0.5, output = 1 }\n",
            "model 'm1': price[0].batch.tiers: missing (the base rates have tiers)",
        ),
        (
            GOOD_MODEL + "tiers = [{ above = 0, input = 2, output = 4 }]\n",
            "model 'm1': price[0].tiers[0].above: must be a whole number of input tokens > 0",
        ),
        (
            'provider = "acme"\nretrieved = "yesterday"\n',
            "retrieved: must be a TOML date like 2026-11-22, got 'yesterday'",
        ),
        ("provider = \n", "invalid TOML: "),
        ('name = "no provider"\n', "provider: must be a non-empty string"),
        (
            GOOD_MODEL.replace("[[model.price]]\ninput = 1\noutput = 2\n", 'alias_of = "nope"\n'),
            "model 'm1': alias_of: no priced model 'nope'",
        ),
        (  # said "no priced model 'a2'" of a model the file lists
            GOOD_MODEL + '[[model]]\nid = "a1"\nalias_of = "a2"\n[[model]]\nid = "a2"\nalias_of = "m1"\n',
            "model 'a1': alias_of: 'a2' is an alias itself (of 'm1'): name a priced model",
        ),
    ],
)
def test_malformed_files_name_file_model_and_field(tmp_path, text, message):
    path = write(tmp_path, text)
    error = load_error(path)
    assert error.startswith(f"{path}: ")
    assert message in error


def test_unreadable_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.toml"
    assert load_error(missing) == f"{missing}: cannot read: No such file or directory"


def test_unknown_fallback_provider(tmp_path):
    path = write(tmp_path, GOOD_MODEL.replace('provider = "acme"', 'provider = "acme"\nfallback = ["ghost"]'))
    assert load_error(path) == f"{path}: fallback: unknown provider 'ghost'"


def test_user_file_extends_a_provider(tmp_path):
    override = write(
        tmp_path,
        """
provider = "acme"
[[model]]
id = "prod-large-deployment"   # an Azure-style deployment name priced like a known model
alias_of = "acme-large"
multiplier = 0.8               # negotiated discount
""",
    )
    table = load_pricing([override, FIXTURE], bundled=False, use_env=False)
    usage = Usage(input_tokens=100_000, output_tokens=0)
    # (Both are user files here: one pricing a model the other prices is an error, below; a
    # user file replacing a bundled model is test_a_user_file_still_replaces_a_bundled_model.)
    deployment = compute_cost("prod-large-deployment", usage, table=table, start_time=0)
    assert (deployment.model, deployment.total) == ("prod-large-deployment", Decimal("0.24"))  # $3 * 0.8
    # the alias follows the target's price history
    later = compute_cost("prod-large-deployment", usage, table=table, start_time=2**62)
    assert later.total == Decimal("0.16")  # $2 * 0.8


def test_an_alias_prices_exactly_like_its_target_multipliers_included(tmp_path):
    """A review found an alias billed at its target's prices before the target's own
    multiplier (a negotiated 0.9 on the model): $3.00 where the target cost $2.70."""
    usage = Usage(input_tokens=1_000_000, output_tokens=0)
    same_file = write(
        tmp_path,
        """
provider = "mine"
multiplier = 0.8
[[model]]
id = "base"
match = [{ equals = "base" }]
multiplier = 0.9
[[model.price]]
input = 10
output = 10
[[model]]
id = "deployment"
alias_of = "base"
[[model]]
id = "cheaper-deployment"
alias_of = "base"
multiplier = 0.5
""",
        "mine.toml",
    )
    other_file = write(
        tmp_path,
        """
provider = "reseller"
multiplier = 1.25
[[model]]
id = "resold"
alias_of = "base"
""",
        "reseller.toml",
    )
    table = load_pricing([same_file, other_file], bundled=False, use_env=False)

    def total(model: str) -> Decimal:
        return compute_cost(model, usage, table=table, start_time=0).total

    assert total("base") == Decimal("7.2")  # $10 * 0.8 * 0.9
    assert total("deployment") == Decimal("7.2")  # the file's 0.8 once, the target's 0.9
    assert total("cheaper-deployment") == Decimal("3.6")  # and then its own 0.5
    assert total("resold") == Decimal("9")  # the target's price, then its own file's 1.25


def test_provider_multiplier_scales_every_rate(tmp_path):
    text = FIXTURE.read_text().replace('provider = "acme"', 'provider = "acme"\nmultiplier = 0.5')
    table = load_pricing([write(tmp_path, text)], bundled=False, use_env=False)
    usage = Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=1000, cache_write_tokens=150)
    assert compute_cost("acme-large", usage, table=table, start_time=0).total == Decimal("0.00275625")


def test_env_variable_layers_user_files(tmp_path, monkeypatch):
    extra = write(tmp_path, GOOD_MODEL.replace('"acme"', '"mine"'))
    monkeypatch.setenv(ENV_PRICING_FILES, f"{extra}")
    table = load_pricing([FIXTURE], bundled=False)
    assert table.resolve("m1").provider == "mine"
    assert table.providers == ["acme", "mine"]
    assert str(extra) in table.files


def test_version_and_digest_identify_the_exact_content(tmp_path):
    a = load_pricing([FIXTURE], bundled=False, use_env=False)
    b = load_pricing([FIXTURE], bundled=False, use_env=False)
    assert (a.version, a.digest) == (b.version, b.digest)
    changed = write(tmp_path, FIXTURE.read_text() + "\n# a comment changes the bytes\n")
    c = load_pricing([changed], bundled=False, use_env=False)
    assert c.digest != a.digest and c.version != a.version
    assert a.digest.startswith("sha256:") and len(a.digest) == 71


def test_a_user_file_is_known_by_its_content_not_its_path(tmp_path, monkeypatch):
    """A review stamped three versions for one file's bytes (relative path, absolute path, a
    copy), and a file named by the environment and by an option, spelled two ways, failed as
    two files pricing one model."""
    first = write(tmp_path, GOOD_MODEL, "a.toml")
    (tmp_path / "elsewhere").mkdir()
    copy = write(tmp_path / "elsewhere", GOOD_MODEL)
    monkeypatch.chdir(tmp_path)
    versions = {
        load_pricing([path], use_env=False).version
        for path in ("a.toml", "./a.toml", str(first), str(copy), f"{tmp_path}/elsewhere/../a.toml")
    }
    assert len(versions) == 1 and "+local." in versions.pop()
    monkeypatch.setenv(ENV_PRICING_FILES, "a.toml")
    table = load_pricing(["./a.toml"])
    assert table.resolve("m1").provider == "acme"
    assert table.version == load_pricing([first], use_env=False).version


def test_two_user_files_giving_one_provider_other_fallbacks_fail_naming_both(tmp_path):
    # A review: the first file listed chose the fallback, so the order chose whether
    # claude-sonnet-4-5 on acme was priced (at Anthropic's) or unknown, under one version.
    first = write(tmp_path, 'fallback = ["openai"]\n' + GOOD_MODEL, "a.toml")
    second = write(tmp_path, 'fallback = ["anthropic"]\n' + GOOD_MODEL.replace('"m1"', '"m2"'), "b.toml")
    for one, other in ((first, second), (second, first)):
        with pytest.raises(PricingError) as info:
            load_pricing([one, other], use_env=False)
        taken = "openai" if one == first else "anthropic"
        assert str(info.value) == f"{other}: fallback: provider 'acme' has fallback ['{taken}'] in {one}"
    same = write(tmp_path, 'fallback = ["openai"]\n' + GOOD_MODEL.replace('"m1"', '"m3"'), "c.toml")
    table = load_pricing([first, same], use_env=False)  # the same fallback twice: fine
    assert table.resolve("gpt-4o", "acme").provider == "openai"


def test_two_user_files_pricing_one_model_fail_naming_both(tmp_path):
    # The first file used to win silently, so the order of OTEL_COSTATTR_PRICING_FILES chose
    # the price.
    first = write(tmp_path, GOOD_MODEL, "a.toml")
    second = write(tmp_path, GOOD_MODEL.replace("input = 1", "input = 9"), "b.toml")
    for one, other in ((first, second), (second, first)):
        with pytest.raises(PricingError) as info:
            load_pricing([one, other], use_env=False)
        assert str(info.value) == f"{other}: model 'm1': id: provider 'acme' already has model 'm1' in {one}"
    # The same file named twice is one definition; distinct models of one provider add up.
    assert load_pricing([first, first], use_env=False).resolve("m1").provider == "acme"
    more = write(tmp_path, GOOD_MODEL.replace('"m1"', '"m2"'), "c.toml")
    table = load_pricing([first, more], bundled=False, use_env=False)
    assert sorted(e.id for e in table.models()) == ["m1", "m2"]


def test_two_user_files_claiming_one_name_fail_naming_both(tmp_path):
    first = write(tmp_path, GOOD_MODEL.replace('"acme"', '"acme"\notel_names = ["acme"]'), "a.toml")
    second = write(tmp_path, GOOD_MODEL.replace('"acme"', '"acme2"\notel_names = ["acme"]'), "b.toml")
    for one, other, owner in ((first, second, "acme"), (second, first, "acme2")):
        with pytest.raises(PricingError) as info:
            load_pricing([one, other], use_env=False)
        assert str(info.value) == f"{other}: otel_names: 'acme' is already claimed by {owner!r} in {one}"


def test_a_user_file_still_replaces_a_bundled_model(tmp_path):
    # pricing/README.md: "a model with a bundled model's id replaces it".
    mine = write(tmp_path, 'provider = "openai"\notel_names = ["openai"]\n' + GOOD_MODEL.split("\n", 2)[2]
                 .replace('"m1"', '"gpt-4o"'))  # fmt: skip
    table = load_pricing([mine], use_env=False)
    usage = Usage(input_tokens=1_000_000, output_tokens=0)
    assert compute_cost("gpt-4o", usage, table=table, provider="openai", start_time=0).total == 1


@pytest.mark.parametrize(
    ("name", "owner"),
    [("openai", "openai"), ("gcp.vertex_ai", "google"), ("aws.bedrock", "aws")],
)
def test_a_user_file_claiming_a_bundled_providers_name_is_the_file_named(tmp_path, name, owner):
    # The user's file is the mistake (the bundled table is fixed): the message names it, the
    # name and the bundled provider; a user's claim never silently takes a bundled name.
    mine = write(tmp_path, GOOD_MODEL.replace('"acme"', f'"mycorp"\notel_names = ["{name}"]'), "mycorp.toml")
    with pytest.raises(PricingError) as info:
        load_pricing([mine], use_env=False)
    assert str(info.value) == (
        f"{mine}: otel_names: {name!r} is claimed by bundled provider {owner!r} (pricing/{owner}.toml)"
    )


def test_a_price_file_with_a_byte_order_mark_is_read(tmp_path):
    # Windows editors save UTF-8 with a BOM: it is not a TOML syntax error at line 1 column 1.
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD_MODEL.encode())
    table = load_pricing([path], bundled=False, use_env=False)
    assert [e.id for e in table.models()] == ["m1"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'provider = "acme\xff\xfe"\n', "not UTF-8 text"),  # as the alert rule loader says
        (b"", "the file is empty (no TOML keys)"),
        (b"\n# only a comment\n", "the file is empty (no TOML keys)"),
    ],
)
def test_a_price_file_that_is_not_text_or_empty_says_so(tmp_path, data, message):
    path = tmp_path / "prices.toml"
    path.write_bytes(data)
    assert load_error(path) == f"{path}: {message}"
    with pytest.raises(PricingError) as info:
        load_pricing([path], use_env=False)  # over the bundled table alike
    assert str(info.value) == f"{path}: {message}"


def test_a_misspelt_region_table_names_region_among_the_keys(tmp_path):
    path = write(tmp_path, 'provider = "acme"\n[[regoin]]\nhost = "azure"\n')
    with pytest.raises(PricingError) as info:
        load_pricing([path], bundled=False, use_env=False)
    assert str(info.value) == (
        f"{path}: regoin: unknown key (allowed: fallback, model, multiplier, name, otel_names,"
        " provider, region, retrieved, source, via)"
    )


OVERRIDE = """
provider = "openai"
[[model]]
id = "gpt-4o"
[[model.price]]
input = 2
output = 8
"""


@pytest.mark.parametrize("provider", [None, "openai"])
def test_a_replaced_bundled_model_keeps_its_match_rules_for_dated_ids(tmp_path, provider):
    # A review found gpt-4o-2024-08-06 priced from Azure's list-price copy ($2.50) with no
    # provider, and unknown with provider openai, once a user file priced gpt-4o at $2.
    table = load_pricing([write(tmp_path, OVERRIDE)], use_env=False)
    usage = Usage(input_tokens=1_000_000, output_tokens=0)
    for model in ("gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-2024-11-20"):
        cost = compute_cost(model, usage, table=table, provider=provider, start_time=0)
        assert (cost.model, cost.total) == ("gpt-4o", 2), model
    entry = table.resolve("gpt-4o", "openai")
    assert entry.origin == str(tmp_path / "prices.toml")
    assert "gpt-4o-2024-08-06" in {r.value for r in entry.rules}
    # Azure resells at list price still, its dated ids too.
    assert compute_cost(
        "gpt-4o-2024-08-06", usage, table=table, provider="azure", start_time=0
    ).total == Decimal("2.5")


def test_a_match_of_its_own_replaces_the_bundled_rules(tmp_path):
    mine = write(
        tmp_path, OVERRIDE.replace('id = "gpt-4o"', 'id = "gpt-4o"\nmatch = [{ equals = "gpt-4o" }]')
    )
    table = load_pricing([mine], use_env=False)
    assert table.resolve("gpt-4o", "openai").origin == str(mine)
    assert table.resolve("gpt-4o-2024-08-06", "openai") is None  # as before: the user's rules alone
    # A model of the user's own for a dated id the bundled rules answer: the bundled rule
    # naming it is not inherited (a review: the file was refused, for a rule it never wrote),
    # and each id gets its own price; the other dated ids the user's gpt-4o.
    dated = OVERRIDE + OVERRIDE.split("\n", 2)[2].replace('"gpt-4o"', '"gpt-4o-2024-08-06"')
    path = write(tmp_path, dated, "dated.toml")
    table = load_pricing([path], use_env=False)
    assert table.resolve("gpt-4o-2024-08-06", "openai").id == "gpt-4o-2024-08-06"
    assert table.resolve("gpt-4o-2024-11-20", "openai").id == "gpt-4o"
    assert table.resolve("gpt-4o-2024-11-20", "openai").origin == str(path)
    # a pattern of another model matching a dated id the replacement inherits is refused,
    # saying both ways out; naming the id in an equals rule is one
    pattern = OVERRIDE + '[[model]]\nid = "gpt-4o-nov"\nmatch = [{ starts_with = "gpt-4o-2024-11" }]\n'
    pattern += "[[model.price]]\ninput = 1\noutput = 4\n"
    with pytest.raises(PricingError) as info:
        load_pricing([write(tmp_path, pattern, "pattern.toml")], use_env=False)
    assert str(info.value).endswith(
        "(model 'gpt-4o' keeps the match rules of the bundled model it replaces: give it a match of its own,"
        " or name 'gpt-4o-2024-11-20' in an equals rule of 'gpt-4o-nov')"
    ), str(info.value)
    # the same for a dated id the user names in a match rule of another model (a review)
    nov = OVERRIDE + '[[model]]\nid = "gpt-4o-nov"\nmatch = [{ equals = "gpt-4o-2024-11-20" }]\n'
    nov += "[[model.price]]\ninput = 1\noutput = 4\n"
    table = load_pricing([write(tmp_path, nov, "nov.toml")], use_env=False)
    assert table.resolve("gpt-4o-2024-11-20", "openai").id == "gpt-4o-nov"
    assert table.resolve("gpt-4o-2024-08-06", "openai").id == "gpt-4o"


OVERLAPS = [
    ('match = [{ starts_with = "acme-" }]', 'match = [{ equals = "acme-ft-1" }]', "'acme-ft-1'"),
    ('match = [{ regex = "acme-ft-.*" }]', "", "'acme-ft-1'"),
    ('match = [{ equals = "shared-id" }]', 'match = [{ equals = "shared-id" }]', "'shared-id'"),
]


@pytest.mark.parametrize(("first", "second", "probe"), OVERLAPS)
def test_overlapping_rules_in_two_user_files_fail_naming_both(tmp_path, first, second, probe):
    # Refused inside one file, but two files for one provider were accepted and the order of
    # the files chose the price (pricing/README.md: it never does).
    one = GOOD_MODEL.replace('id = "m1"', 'id = "wide"').replace('match = [{ equals = "m1" }]', first)
    other = GOOD_MODEL.replace('id = "m1"', 'id = "acme-ft-1"').replace('match = [{ equals = "m1" }]', second)
    if "shared" in probe:
        other = other.replace('id = "acme-ft-1"', 'id = "narrow"')
    a, b = write(tmp_path, one, "a.toml"), write(tmp_path, other, "b.toml")
    for files in ([a, b], [b, a]):
        with pytest.raises(PricingError) as info:
            load_pricing(files, bundled=False, use_env=False)
        message = str(info.value)
        assert f"match: {probe} also matches model" in message
        assert {str(a), str(b)} <= set(message.replace(":", " ").split()), message


@pytest.mark.parametrize(
    ("alias_of", "target"),
    [
        ("deepseek-chat", ("deepseek", "deepseek-chat")),  # one other provider prices the id
        ("deepseek/chat-typo", None),  # provider/id naming nothing: refused below
        ("deepseek/deepseek-reasoner", ("deepseek", "deepseek-reasoner")),  # provider/id
        ("openrouter/deepseek/deepseek-chat", ("openrouter", "deepseek/deepseek-chat")),
        ("gpt-4o", ("openai", "gpt-4o")),  # its own provider first
    ],
)
def test_an_alias_finds_its_target_in_its_provider_then_by_name(tmp_path, alias_of, target):
    # A review found "deepseek/deepseek-chat" in an openai file priced at OpenRouter's model
    # of that literal id: every provider was searched, in table order.
    mine = write(tmp_path, f'provider = "openai"\n[[model]]\nid = "mine"\nalias_of = "{alias_of}"\n')
    if target is None:
        with pytest.raises(PricingError, match="no priced model"):
            load_pricing([mine], use_env=False)
        return
    table = load_pricing([mine], use_env=False)
    entry = table.resolve("mine", "openai")
    assert entry.alias_target == target
    assert entry.periods == table.resolve(target[1], target[0]).periods


def test_an_alias_of_an_id_several_providers_price_is_refused(tmp_path):
    mine = write(tmp_path, 'provider = "mygw"\n[[model]]\nid = "oss"\nalias_of = "openai/gpt-oss-120b"\n')
    with pytest.raises(PricingError) as info:
        load_pricing([mine], use_env=False)
    assert str(info.value) == (
        f"{mine}: model 'oss': alias_of: 'openai/gpt-oss-120b' is priced by groq, together:"
        " write 'groq/openai/gpt-oss-120b' or 'together/openai/gpt-oss-120b'"
    )


def test_an_alias_a_provider_id_form_and_a_literal_id_both_read_is_refused(tmp_path):
    # A review: "perplexity/sonar" (a bundled id, copied from `pricing list`) was read as
    # provider/id, perplexity's other model "sonar": $2.00 where the literal id's is $2.75.
    for alias_of, second in (("perplexity/sonar", "perplexity"), ("deepseek/deepseek-chat", "openrouter")):
        mine = write(tmp_path, f'provider = "openai"\n[[model]]\nid = "mine"\nalias_of = "{alias_of}"\n')
        with pytest.raises(PricingError) as info:
            load_pricing([mine], use_env=False)
        head, rest = alias_of.split("/", 1)
        assert str(info.value) == (
            f"{mine}: model 'mine': alias_of: {alias_of!r} names two models, {head}'s {rest!r} and the"
            f" model {alias_of!r} of {second}: write {f'{second}/{alias_of}'!r} for the second, or {rest!r}"
            " for the first"
        )
