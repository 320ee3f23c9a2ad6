"""Regional prices: where a call was served changes what it costs, on some hosts.

Bedrock GovCloud (``us-gov-*``) bills Claude at 1.2x Anthropic's list price; Vertex AI's
regional endpoints bill recent Claude models 10% over the global endpoint. The span rarely
says so in its model id, so the region is read from the call itself (`region_of`): a Bedrock
``us-gov.`` profile id, the span's ``cloud.region`` / ``aws.region``, the server address
(``bedrock-runtime.us-gov-west-1.amazonaws.com``, ``us-east5-aiplatform.googleapis.com``),
then the resource's ``cloud.region`` (where the application runs: the weakest hint, used last,
and only when the resource's ``cloud.provider`` is the host's own cloud or is absent: an app on
AWS calling Vertex is not served in its AWS region).

The surcharges are data, `pricing/_regions.toml` (format: pricing/README.md, "Regional
prices"): each ``[[region]]`` names the host (the pricing provider the call went to), the
region patterns, the models and a multiplier applied to every rate of every price period.
`parse_regions` is the only place that checks the file; `PriceTable.quote` applies it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any

from .entry import ModelEntry
from .model import MAX_DECIMALS, MAX_MULTIPLIER, MAX_PRICE, PricingError, decimal_places, within_places
from .parse import read_toml
from .resolve import ProviderIndex

REGIONS_FILE = "_regions.toml"
# Span attributes naming the region a call was served in, in the order they are believed.
SPAN_REGION_KEYS = ("cloud.region", "aws.region")
SERVER_ADDRESS = "server.address"
RESOURCE_REGION_KEY = "cloud.region"
RESOURCE_CLOUD_KEY = "cloud.provider"
# The OTel ``cloud.provider`` value of each pricing host that runs in a cloud's regions: a
# resource's ``cloud.region`` says where a call was served only when the app runs in the same
# cloud as the host (any other host, or another cloud: the resource's region is not the call's).
HOST_CLOUDS = {"aws": "aws", "google": "gcp", "azure": "azure"}
MAX_REGION = 64  # longer values are not a region name: ignored

_KEYS = {"host", "regions", "exclude", "models", "multiplier", "source", "note"}
_REQUIRED = ("host", "regions", "models", "multiplier")
# Endpoints whose host name carries the region (lower-cased before matching).
_ADDRESSES = (
    re.compile(r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"),
    re.compile(r"([a-z]+-[a-z]+\d+)-aiplatform\.googleapis\.com"),
)
_VERTEX_GLOBAL = "aiplatform.googleapis.com"
_GOV_PROFILE = "us-gov."  # Bedrock's GovCloud cross-region inference profile prefix


@dataclass(frozen=True)
class RegionRule:
    """One ``[[region]]``: calls to ``host`` served in a region matching ``regions`` (and
    none of ``exclude``) pay ``multiplier`` x the price of ``models[entry id]`` (a
    ``provider/id`` base, or None: the entry's own price)."""

    host: str
    regions: tuple[str, ...]
    exclude: tuple[str, ...]
    models: Mapping[str, str | None]
    multiplier: Decimal
    where: str  # "pricing/_regions.toml: region[0]", for messages

    def applies(self, region: str) -> bool:
        """Whether a call served in ``region`` (lower-cased) pays this rule's price."""
        if any(fnmatchcase(region, p) for p in self.exclude):
            return False
        return any(fnmatchcase(region, p) for p in self.regions)


def _strings(where: str, field: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PricingError(f"{where}: {field}: must be a list of non-empty strings")
    return tuple(v.lower() for v in value)


def parse_regions(path: str, data: bytes) -> tuple[RegionRule, ...]:
    """The rules of a regions file, checked (unknown keys, types, bounds); raises
    `PricingError` naming the file, the rule and the field."""
    raw = read_toml(path, data)
    unknown = sorted(set(raw) - {"region"})
    if unknown:
        raise PricingError(f"{path}: {unknown[0]}: unknown key (allowed: region)")
    return region_rules(path, raw.get("region", []))


def region_rules(path: str, items: Any) -> tuple[RegionRule, ...]:
    """The ``[[region]]`` array of a file (the bundled `_regions.toml`, or a user price file
    that adds rules), checked as `parse_regions` checks a whole file."""
    if not isinstance(items, list):
        raise PricingError(f"{path}: region: must be an array of tables ([[region]])")
    rules = []
    for i, item in enumerate(items):
        where = f"{path}: region[{i}]"
        if not isinstance(item, dict):
            raise PricingError(f"{where}: must be a table")
        bad = sorted(set(item) - _KEYS)
        if bad:
            raise PricingError(f"{where}: {bad[0]}: unknown key (allowed: {', '.join(sorted(_KEYS))})")
        for key in _REQUIRED:
            if key not in item:
                raise PricingError(f"{where}: {key}: required")
        if not isinstance(item["host"], str) or not item["host"]:
            raise PricingError(f"{where}: host: must be a pricing provider id")
        models = item["models"]
        if isinstance(models, list):
            models = dict.fromkeys(_strings(where, "models", models))
        elif isinstance(models, dict) and models and all(isinstance(v, str) and v for v in models.values()):
            models = {str(k).lower(): str(v).lower() for k, v in models.items()}
        else:
            raise PricingError(f"{where}: models: a list of model ids, or a table of model id -> provider/id")
        multiplier = item["multiplier"]
        if isinstance(multiplier, int) and not isinstance(multiplier, bool):
            multiplier = Decimal(multiplier)
        # nan and inf first: comparing Decimal('NaN') raises.
        if (
            not isinstance(multiplier, Decimal)
            or not multiplier.is_finite()
            or not 0 < multiplier <= MAX_MULTIPLIER
        ):
            raise PricingError(f"{where}: multiplier: must be a number in (0, {MAX_MULTIPLIER}]")
        if decimal_places(multiplier) > MAX_DECIMALS:  # as a price file's multiplier
            raise PricingError(
                f"{where}: multiplier: must have at most {MAX_DECIMALS} decimal places, got {multiplier}"
            )
        multiplier = within_places(multiplier, MAX_DECIMALS)
        rules.append(
            RegionRule(
                item["host"].lower(),
                _strings(where, "regions", item["regions"]),
                _strings(where, "exclude", item.get("exclude", [])),
                models,
                multiplier,
                where,
            )
        )
    return tuple(rules)


def check_overlaps(rules: tuple[RegionRule, ...] | list[RegionRule]) -> None:
    """Two of ``rules`` (users' own: tried in the order of their files) pricing one model of
    one host in one region would let that order choose the price: raises `PricingError`
    naming the later rule. Decided on a region both rules' patterns match (`_common`), then
    tried against their ``exclude`` lists: rules whose shared regions an exclude removes only
    in part may pass."""
    for i, later in enumerate(rules):
        for earlier in rules[:i]:
            if earlier.host != later.host:
                continue
            shared = [m for m in later.models if m in earlier.models]
            if not shared:
                continue
            found = (_common(a, b) for a in earlier.regions for b in later.regions)
            for region in (r for r in found if r is not None):
                if earlier.applies(region) and later.applies(region):
                    raise PricingError(
                        f"{later.where}: regions: {region!r} is also priced by {earlier.where} for"
                        f" {later.host!r} model {shared[0]!r}: the order of the files would choose"
                    )


# The characters of region names: what a wildcard or a [class] is tried with.
_REGION_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_."


def _tokens(pattern: str) -> tuple[str, ...]:
    """An fnmatch pattern as its tokens: ``*``, ``?``, a ``[class]``, or one character (a
    ``]`` first in a class, after its ``!`` if any, is a member; a ``[`` never closed is
    itself, as fnmatch reads them)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "[":
            j = i + 1
            if pattern[j : j + 1] == "!":
                j += 1
            if pattern[j : j + 1] == "]":
                j += 1
            end = pattern.find("]", j)
            if end != -1:
                out.append(pattern[i : end + 1])
                i = end + 1
                continue
        out.append(pattern[i])
        i += 1
    return tuple(out)


def _chars(token: str, alphabet: str) -> str:
    """The characters of ``alphabet`` one non-``*`` token matches."""
    if token == "?":
        return alphabet
    if len(token) > 1:
        return "".join(c for c in alphabet if fnmatchcase(c, token))
    return token


def _then(chars: Any, rest: str | None) -> str | None:
    """A character of ``chars`` before ``rest``: None when either is missing."""
    return None if rest is None or not chars else chars[0] + rest


def _common(a: str, b: str) -> str | None:
    """A region both fnmatch patterns ``a`` and ``b`` match, or None when they share none
    (made of `_REGION_CHARS` and the characters they spell)."""
    ta, tb = _tokens(a), _tokens(b)
    # What a wildcard or a class is tried with: region characters and every one either spells.
    alphabet = "".join(dict.fromkeys(_REGION_CHARS + a + b))

    @functools.cache
    def walk(i: int, j: int) -> str | None:
        if i == len(ta) and j == len(tb):
            return ""
        if i < len(ta) and ta[i] == "*":
            done = walk(i + 1, j)  # the star matches nothing more
            if done is not None or j == len(tb):
                return done
            return walk(i, j + 1) if tb[j] == "*" else _then(_chars(tb[j], alphabet), walk(i, j + 1))
        if j < len(tb) and tb[j] == "*":
            done = walk(i, j + 1)
            if done is not None or i == len(ta):
                return done
            return _then(_chars(ta[i], alphabet), walk(i + 1, j))
        if i == len(ta) or j == len(tb):
            return None
        return _then([c for c in _chars(ta[i], alphabet) if c in _chars(tb[j], alphabet)], walk(i + 1, j + 1))

    return walk(0, 0)


def user_file_parts(
    path: str, data: bytes | None = None
) -> tuple[dict[str, Any] | None, tuple[RegionRule, ...]]:
    """A user price file's provider part (None when it has only ``[[region]]`` rules) and its
    regional rules, in `pricing/_regions.toml`'s format: a user file may hold either or both."""
    raw = read_toml(path, data)
    if "region" not in raw:
        return raw, ()
    rules = region_rules(path, raw.pop("region"))
    return (raw or None), rules


def _text(value: object) -> str | None:
    if type(value) is str and 0 < len(value) <= MAX_REGION:
        return value.strip().lower() or None
    return None


def region_from_address(address: object) -> str | None:
    """The region an endpoint's host name carries (Bedrock runtime, Vertex AI), else None."""
    host = _text(address)
    if host is None:
        return None
    if host == _VERTEX_GLOBAL:
        return "global"
    for pattern in _ADDRESSES:
        found = pattern.fullmatch(host)
        if found is not None:
            return found.group(1)
    return None


def region_of(
    model: object, attrs: Mapping[str, Any], resource: Mapping[str, Any] | None, host: str
) -> str | None:
    """The region a call to pricing provider ``host`` (`PriceTable.host_of`) was served in,
    lower-cased, or None: a Bedrock ``us-gov.`` profile id, the span's `SPAN_REGION_KEYS`,
    its server address, then the resource's ``cloud.region`` when the resource's
    ``cloud.provider`` is ``host``'s cloud (`HOST_CLOUDS`) or absent (every caller's rule)."""
    if type(model) is str and model[: len(_GOV_PROFILE)].lower() == _GOV_PROFILE:
        return "us-gov"
    for key in SPAN_REGION_KEYS:
        region = _text(attrs.get(key))
        if region is not None:
            return region
    region = region_from_address(attrs.get(SERVER_ADDRESS))
    if region is not None:
        return region
    if not resource:
        return None
    cloud = resource.get(RESOURCE_CLOUD_KEY)
    if cloud is not None and (_text(cloud) is None or _text(cloud) != HOST_CLOUDS.get(host)):
        return None  # the app runs in another cloud (or the host is not a cloud's service)
    return _text(resource.get(RESOURCE_REGION_KEY))


class RegionIndex:
    """The rules resolved against a loaded table: for an entry a span resolved to, the
    regional entry (same id, regional rates) a host and a region select. Built at load, so a
    rule naming a model or a base the table does not have fails there, naming the rule."""

    def __init__(
        self,
        rules: tuple[RegionRule, ...],
        providers: Mapping[str, ProviderIndex],
        listed: Mapping[tuple[str, str], ModelEntry] | None = None,
    ) -> None:
        """``listed``: bundled entries a user file replaced, by (provider, id): a base is
        the first party's list price, whatever the user negotiated with it."""
        # id(entry) -> [(rule, regional entry)]: entries live as long as their table.
        self._by_entry: dict[int, list[tuple[RegionRule, ModelEntry]]] = {}
        everything = {(e.provider, e.id): e for p in providers.values() for e in p.entries}
        everything.update(listed or {})
        for rule in rules:
            if rule.host not in providers:
                raise PricingError(f"{rule.where}: host: unknown provider {rule.host!r}")
            search = (rule.host, *providers[rule.host].fallback)
            for model_id, base in rule.models.items():
                entries = [e for pid in search for e in providers[pid].entries if e.id == model_id]
                if not entries:
                    raise PricingError(
                        f"{rule.where}: models: no model {model_id!r} in {rule.host!r} or its fallbacks"
                    )
                priced = None
                if base is not None:
                    priced = everything.get(tuple(base.split("/", 1)))  # type: ignore[arg-type]
                    if priced is None:
                        raise PricingError(f"{rule.where}: models: {model_id!r}: no model {base!r}")
                for entry in entries:
                    self._by_entry.setdefault(id(entry), []).append((rule, _scaled(rule, entry, priced)))
        self.entries = frozenset(self._by_entry)

    def regional(self, host: str, entry: ModelEntry, region: str) -> ModelEntry | None:
        """The entry pricing ``entry`` for a call to ``host`` served in ``region``, or None."""
        for rule, regional in self._by_entry.get(id(entry), ()):
            if rule.host == host and rule.applies(region):
                return regional
        return None


def _scaled(rule: RegionRule, entry: ModelEntry, base: ModelEntry | None) -> ModelEntry:
    """``entry`` as a regional call pays it: the multiplier on the base's (or its own)
    price history, every period, tier, window and service tier."""
    priced = base or entry
    periods = tuple(p.scaled(rule.multiplier) for p in priced.periods)
    for period in periods:
        schedules = [period.standard, *period.service_tiers.values()]
        rates = [s.rates for s in schedules] + [t.rates for s in schedules for t in s.tiers]
        for r in rates + [w.rates for w in period.windows]:
            if any(v is not None and v > MAX_PRICE for v in r.as_dict().values()):
                raise PricingError(
                    f"{rule.where}: multiplier: lifts {entry.id!r} above {MAX_PRICE} per million"
                )
    return replace(entry, periods=periods, _since_ns=priced._since_ns)
