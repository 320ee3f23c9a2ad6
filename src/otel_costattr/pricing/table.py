"""The versioned pricing table: bundled provider files layered with the user's own.

`load_pricing()` reads and validates everything once; `PriceTable.resolve()` maps a model id
as spans report it (dated snapshots, Bedrock / Vertex / OpenRouter shapes) to one entry, and
caches the answer so pricing stays cheap on a hot path.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from .. import _forks, settings
from .._resources import bundled_dir
from .entry import ModelEntry, build_entry, with_earlier
from .forms import SELF_HOSTED, UNLISTED_HOSTS, UNPRICED, id_form
from .model import (
    MAX_MODEL_ID,
    MatchRule,
    ModelSpec,
    PricePeriod,
    PricingError,
    ProviderFile,
    Rates,
    Tier,
    TimeWindow,
)
from .parse import check_overlaps as check_model_overlaps
from .parse import compile_rule, parse_provider_file, read_toml
from .regions import (
    REGIONS_FILE,
    RegionIndex,
    RegionRule,
    check_overlaps,
    parse_regions,
    user_file_parts,
)
from .resolve import ProviderIndex, candidate_ids, snapshot_of

ENV_PRICING_FILES = settings.PRICING_FILES
TABLE_FILE = "_table.toml"
_TABLE_KEYS = {"version", "providers", "normalize"}
# Entries per resolution cache. Only keys whose strings are at most MAX_MODEL_ID characters
# are ever stored (see _cacheable), so a cache holds at most 4096 x 3 x 256 characters of
# keys (about 13 MB in the worst, 4-byte-per-character case, 3 MB for ASCII): span data can
# hold arbitrary strings, and 4096 one-megabyte ids would otherwise pin 4 GB.
_CACHE_LIMIT = 4096


_ALWAYS = (float("-inf"), float("inf"))


class Quote(NamedTuple):
    """What prices one call: the entry, the schedule in force (rates and long-context
    tiers), the time-of-day windows that may override it (none when a service tier applies),
    the service tier applied (None: standard) and the input size above which the base rates
    may not apply (the first tier's threshold, -inf with windows, inf with neither)."""

    entry: ModelEntry
    rates: Rates
    tiers: tuple[Tier, ...]
    windows: tuple[TimeWindow, ...]
    service_tier: str | None
    base_up_to: float
    region: str | None = None  # the region whose rates `entry` carries (pricing/regions.py)


# What the quote cache holds for (model, provider, service tier): the quote in force from
# ns [0] until ns [1], [2] (None: unknown model), and, for hot paths, what they read of it as
# items of one plain tuple (a NamedTuple's fields are read by a descriptor call each, a plain
# tuple's items by one specialised instruction): [3] the entry, [4] the base rates as
# integers (`Rates.ints`), [5] their scale, [6] their USD divisor, [7] the service tier
# applied and [8] the quote's base_up_to. The bounds [0], [1] and [8] are ints, the
# infinities stood for by _FIRST and _LAST: an int compared with a float takes CPython's slow
# road (NotImplemented, then the reflected float comparison). Start times are epoch ns (one
# beyond _LAST, after the year 2262, misses the cache and is priced by `PriceTable.quote`
# each time, alike), token totals at most a few times MAX_TOKENS.
QuoteHit = tuple[int, int, "Quote | None", "ModelEntry | None", tuple[int, ...], int, int, "str | None", int]
_FIRST, _LAST = -(1 << 63), 1 << 63


def _bound(value: float, infinite: int) -> int:
    return value if type(value) is int else infinite  # type: ignore[return-value]


_UNKNOWN_HIT: QuoteHit = (_FIRST, _LAST, None, None, (), 0, 1, None, _LAST)


def hit_of(quote: Quote | None, start: float = _ALWAYS[0], end: float = _ALWAYS[1]) -> QuoteHit:
    """The `QuoteHit` of ``quote`` for [start, end) (the hot paths' shape for a quote
    that came from `PriceTable.quote` rather than from the cache)."""
    if quote is None:
        return _UNKNOWN_HIT
    rates = quote.rates
    # base_up_to is -inf when time-of-day windows apply: -1, below any token total.
    up_to = _bound(quote.base_up_to, -1 if quote.base_up_to < 0 else _LAST)
    return (_bound(start, _FIRST), _bound(end, _LAST), quote, quote.entry, rates.ints, rates.scale,
            rates.usd_divisor, quote.service_tier, up_to)  # fmt: skip


class PriceTable:
    """A validated, versioned pricing table. Build it with `load_pricing()`."""

    def __init__(
        self,
        version: str,
        digest: str,
        providers: Sequence[ProviderIndex],
        names: dict[str, str],
        normalize: Sequence[tuple[re.Pattern[str], str]],
        files: Sequence[str],
        regions: tuple[RegionRule, ...] = (),
        listed: dict[tuple[str, str], ModelEntry] | None = None,
    ) -> None:
        self.version = version
        self.digest = digest
        self.files = tuple(files)
        # The user's files among them, made absolute (`load_pricing`): what --pricing names
        # again, from any directory (the what-if page's command).
        self.user_files: tuple[str, ...] = ()
        self._providers = {p.id: p for p in providers}
        self._order = tuple(p.id for p in providers)
        self._names = names
        self._normalize = tuple(normalize)
        self._regions = RegionIndex(regions, self._providers, listed)
        # id() of the entries some region prices otherwise: a caller skips region lookups
        # for every other entry (nearly all of them) with one set lookup.
        self.regional_entries = self._regions.entries
        self._cache: dict[tuple[str, str | None], ModelEntry | None] = {}
        # (model, provider, service tier) -> a `QuoteHit`: one lookup per call while the same
        # price period is in force.
        self._quotes: dict[tuple[object, object, object], QuoteHit] = {}
        # For hot paths that cannot afford a method call: the cache's own get(). A hit answers
        # for a start time in [hit[0], hit[1]); on a miss or outside the range, call quote().
        self.cached_quote = self._quotes.get
        self._lock = threading.Lock()
        _forks.renew_in_child(self)

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock (one another thread held at the fork, a quote's
        miss, stays held there, and the child's pricing hung)."""
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        models = sum(1 for _ in self.models())
        return f"PriceTable(version={self.version!r}, providers={len(self._order)}, models={models})"

    @property
    def providers(self) -> list[str]:
        """Pricing provider ids, in search order."""
        return list(self._order)

    def models(self) -> Iterator[ModelEntry]:
        """Every model entry, provider by provider in search order."""
        for pid in self._order:
            yield from self._providers[pid].entries

    def provider_id(self, name: str | None) -> str | None:
        """The pricing provider for an OTel provider name (``aws.bedrock``) or id, or None."""
        if not name:
            return None
        return self._names.get(name.strip().lower())

    def candidate_ids(self, model: str) -> list[str]:
        """The forms of ``model`` tried in turn: lower-cased, then each normalisation."""
        return candidate_ids(model, self._normalize)

    def entry_in(self, model: str | None, provider_id: str) -> ModelEntry | None:
        """The entry of the pricing provider ``provider_id`` alone (no fallback, no host the
        id's form names) that ``model`` or one of its normalised forms matches, or None: which
        first-party model a host's id is (Bedrock's ``us.anthropic.claude-sonnet-4-5-...`` is
        Anthropic's ``claude-sonnet-4-5``), for what asks which model a call went to."""
        rules = self._providers.get(provider_id)
        if rules is None or not isinstance(model, str) or not model or len(model) > MAX_MODEL_ID:
            return None
        for form in self.candidate_ids(model):
            hit = rules.match(form)
            if hit is not None:
                return hit
        return None

    def resolve(self, model: str | None, provider: str | None = None) -> ModelEntry | None:
        """The entry pricing ``model`` as reported by a span, or None when it is unknown.

        With a provider the table knows, only that provider and its declared fallbacks are
        searched (a Llama on Bedrock is never priced at another host's rate); none for a
        self-hosted server or a host the table does not list (`forms.UNLISTED_HOSTS`); else, when the
        id's own form names its host (`forms.id_form`), that host and its fallbacks; otherwise
        every provider, in table order. Self-hosted forms and servers are priced by an exact
        rule only. Answers are cached.
        """
        if not isinstance(model, str) or not model or len(model) > MAX_MODEL_ID:
            return None  # an over-long id never reaches a match rule, nor a cache
        key = (model, provider)
        try:
            return self._cache[key]
        except KeyError:
            pass
        entry = self._resolve(model, provider)
        if _cacheable(key):
            with self._lock:
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()
                self._cache[key] = entry
        return entry

    def approximate(self, response_model: object, request_model: object, provider: str | None) -> str | None:
        """The request model to price a call with when the response model is unknown but is
        the request model plus a date or version suffix and the request model is known (a
        snapshot newer than the table); else None. Callers record ``model_source=request``."""
        if not snapshot_of(response_model, request_model):
            return None
        if self.resolve(response_model, provider) is not None:  # type: ignore[arg-type]
            return None
        return request_model if self.resolve(request_model, provider) is not None else None  # type: ignore

    def quote(
        self,
        model: str | None,
        provider: str | None,
        service_tier: str | None,
        ns: int,
        region: str | None = None,
    ) -> Quote | None:
        """The prices for a call to ``model`` (as a span reports it) that started at epoch
        nanoseconds ``ns`` with ``service_tier`` requested, or None when the model is unknown.
        ``region`` (lower-case, see `regions.region_of`) selects a regional price where
        `pricing/_regions.toml` has one. Cached per (model, provider, service tier[, region])
        for the price period in force."""
        key: tuple[object, ...] = (model, provider, service_tier)
        if region is not None:
            key = (model, provider, service_tier, region)
        try:
            hit = self._quotes.get(key)  # type: ignore[arg-type]
        except TypeError:  # unhashable arguments from a caller of compute_cost
            return self._quote(model, provider, service_tier, ns, region)[2]
        if hit is not None and hit[0] <= ns < hit[1]:
            return hit[2]
        found = self._quote(model, provider, service_tier, ns, region)
        if _cacheable(key):
            with self._lock:
                if len(self._quotes) >= _CACHE_LIMIT:
                    self._quotes.clear()
                self._quotes[key] = found  # type: ignore[index]
        return found[2]

    def _quote(
        self, model: object, provider: object, service_tier: object, ns: int, region: object = None
    ) -> QuoteHit:
        entry = self.resolve(model, provider)  # type: ignore[arg-type]
        if entry is None:
            return _UNKNOWN_HIT
        applied = None
        if type(region) is str and id(entry) in self.regional_entries:
            regional = self._regions.regional(self.host_of(model, provider, entry), entry, region)
            if regional is not None:
                entry, applied = regional, region
        index = entry.period_index(ns)
        since = entry._since_ns
        period = entry.periods[index]
        start = since[index] if index > 0 else _ALWAYS[0]  # the first price also applies before
        end = since[index + 1] if index + 1 < len(since) else _ALWAYS[1]
        schedule, windows, tier = period.standard, period.windows, None
        if isinstance(service_tier, str) and service_tier in period.service_tiers:
            schedule, windows, tier = period.service_tiers[service_tier], (), service_tier
        tiers = schedule.tiers
        base_up_to = _ALWAYS[0] if windows else tiers[0].above if tiers else _ALWAYS[1]
        return hit_of(Quote(entry, schedule.rates, tiers, windows, tier, base_up_to, applied), start, end)

    def host_of(self, model: object, provider: object, entry: ModelEntry) -> str:
        """The pricing provider a call went to: the span's, else the one its id's form
        names, else the entry's own (what a regional rule's ``host`` names, and what
        `regions.region_of` checks a resource's ``cloud.provider`` against)."""
        pid = self.provider_id(provider)  # type: ignore[arg-type]
        if type(model) is str:
            pid = self._form_host(pid, id_form(model))
        return pid or entry.provider

    def _form_host(self, pid: str | None, form: Any) -> str | None:
        """The provider to search: ``pid`` (the span's), or the host the id's own form names
        when the span names none, or names a maker that host resells (a Bedrock id beside
        llm.system "anthropic", as OpenInference's Bedrock spans say: Anthropic's API never
        answers with a Bedrock id, and Bedrock's regional profiles cost 10% more: a review)."""
        if form is None or form.host not in self._providers:
            return pid
        if pid is None or (form.host in _SOLE_HOST_FORMS and pid in self._providers[form.host].fallback):
            return form.host
        return pid

    def _resolve(self, model: str, provider: str | None) -> ModelEntry | None:
        pid = self.provider_id(provider)
        form = id_form(model)
        unpriced = form is not None and form.host == UNPRICED
        if pid is None and isinstance(provider, str) and provider.strip().lower() in _NOT_PRICED:
            return None  # a self-hosted server or an unlisted host no price file claims
        if unpriced:  # never an API's list price: only an exact rule for the whole id
            exact = model.strip().lower()
            return next((p.exact[exact] for p in self._providers.values() if exact in p.exact), None)
        pid = self._form_host(pid, form)  # the id's own form names its host (pricing/forms.py)
        order: Iterable[str]
        order = self._order if pid is None else (pid, *self._providers[pid].fallback)
        # The id as reported first, across every provider, then each normalised form: a
        # Bedrock regional id must reach Bedrock's own (dearer) price before its stripped form
        # reaches the first-party one.
        for form in self.candidate_ids(model):
            for search in order:
                hit = self._providers[search].match(form)
                if hit is not None:
                    return hit
        return None


# Provider names priced by no API's list price unless a price file claims them.
_NOT_PRICED = SELF_HOSTED | UNLISTED_HOSTS

# Hosts whose id form no other server answers with (a Bedrock profile, a Vertex @version): a
# maker's name beside such an id is the maker, not the host. OpenRouter's vendor/model is also
# what Groq, Together and other OpenAI-compatible servers answer with (qwen/qwen3-32b), so
# beside a provider name it names no host (a review: Groq calls priced at OpenRouter's rate).
_SOLE_HOST_FORMS = frozenset({"aws", "google"})


def _cacheable(key: tuple[object, ...]) -> bool:
    """Whether a cache may keep ``key``: strings no longer than MAX_MODEL_ID (or None)."""
    return all(k is None or (type(k) is str and len(k) <= MAX_MODEL_ID) for k in key)


def _read_table_file(path: str, data: bytes) -> tuple[str, list[str], list[tuple[re.Pattern[str], str]]]:
    raw = read_toml(path, data)
    unknown = sorted(set(raw) - _TABLE_KEYS)
    if unknown:
        raise PricingError(f"{path}: {unknown[0]}: unknown key (allowed: {', '.join(sorted(_TABLE_KEYS))})")
    version = raw.get("version")
    if not isinstance(version, str) or not version:
        raise PricingError(f"{path}: version: must be a non-empty string")
    order = raw.get("providers")
    if not isinstance(order, list) or not all(isinstance(p, str) for p in order) or not order:
        raise PricingError(f"{path}: providers: must be a non-empty list of provider ids")
    normalize = []
    for i, rule in enumerate(raw.get("normalize", [])):
        if not isinstance(rule, dict) or set(rule) != {"pattern", "replace"}:
            raise PricingError(f"{path}: normalize[{i}]: must have exactly 'pattern' and 'replace'")
        try:
            normalize.append((compile_rule(rule["pattern"], search=True), str(rule["replace"])))
        except ValueError as e:
            raise PricingError(f"{path}: normalize[{i}].pattern: {e}") from e
    return version, order, normalize


def _bundled_files() -> tuple[bytes, bytes, dict[str, tuple[str, bytes]]]:
    """`_table.toml`, `_regions.toml` and the provider files (every other ``*.toml``)."""
    try:
        folder = bundled_dir("pricing")
        table = (folder / TABLE_FILE).read_bytes()
        regions = (folder / REGIONS_FILE).read_bytes()
        files = {}
        for item in sorted(folder.iterdir(), key=lambda t: t.name):
            if item.name.endswith(".toml") and item.name not in (TABLE_FILE, REGIONS_FILE):
                files[item.name[: -len(".toml")]] = (f"pricing/{item.name}", item.read_bytes())
    except OSError as e:
        raise PricingError(f"bundled pricing table unreadable (broken install?): {e}") from e
    return table, regions, files


def _digest_parts(
    table: bytes, regions: bytes, files: dict[str, tuple[str, bytes]]
) -> list[tuple[str, bytes]]:
    parts = [(TABLE_FILE, table), (REGIONS_FILE, regions)]
    return parts + [(f"{k}.toml", v[1]) for k, v in sorted(files.items())]


def _digest(parts: Iterable[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, data in parts:
        h.update(name.encode("utf-8", "surrogateescape") + b"\0" + data + b"\0")  # a file name not UTF-8
    return "sha256:" + h.hexdigest()


def bundled_digest() -> str:
    """The digest of the bundled pricing files (what the release pins check)."""
    return _digest(_digest_parts(*_bundled_files()))


def env_pricing_files() -> list[str]:
    """User price files named by ``OTEL_COSTATTR_PRICING_FILES`` (os.pathsep-separated)."""
    return settings.pricing_files()


def read_user_files(
    paths: Iterable[str],
) -> tuple[list[tuple[str, bytes]], list[ProviderFile], list[RegionRule]]:
    """Read and check users' price files, without the bundled table: each file's bytes, its
    provider entries, its ``[[region]]`` rules. Raises `PricingError` naming file, model and
    field. `load_pricing` reads them so (what only the whole table can check, it checks
    after: `settings.check` loads the table)."""
    parts: list[tuple[str, bytes]] = []
    files: list[ProviderFile] = []
    regions: list[RegionRule] = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise PricingError(f"{path}: cannot read: {e.strerror or e}") from e
        parts.append((path, data))
        raw, rules = user_file_parts(path, data)  # a provider file, [[region]] rules, or both
        regions += rules
        if raw is not None:
            files.append(parse_provider_file(path, raw=raw, user=True))
    return parts, files, regions


def load_pricing(
    extra_files: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] = (),
    *,
    use_env: bool = True,
    bundled: bool = True,
) -> PriceTable:
    """Load the bundled table, layered with ``extra_files`` (paths, or one path) and (by
    default) the files named in ``OTEL_COSTATTR_PRICING_FILES``. ``bundled=False`` uses only
    the given files. Raises `PricingError` naming file, model and field.
    """
    if isinstance(extra_files, (str, os.PathLike)):
        # One path (a string was read a character at a time: "t: cannot read"; a review).
        extra_files = [extra_files]  # type: ignore[list-item]
    parsed: list[ProviderFile] = []
    digest_parts: list[tuple[str, bytes]] = []
    normalize: list[tuple[re.Pattern[str], str]] = []
    version = "local"
    regions: tuple[RegionRule, ...] = ()
    if bundled:
        table_bytes, regions_bytes, files = _bundled_files()
        regions = parse_regions(f"pricing/{REGIONS_FILE}", regions_bytes)
        version, order, normalize = _read_table_file(f"pricing/{TABLE_FILE}", table_bytes)
        for stem in files:
            if stem not in order:
                raise PricingError(f"pricing/{TABLE_FILE}: providers: pricing/{stem}.toml is not listed")
        for pid in order:
            if pid not in files:
                raise PricingError(f"pricing/{TABLE_FILE}: providers: no file pricing/{pid}.toml")
            path, data = files[pid]
            pf = parse_provider_file(path, data)
            if pf.provider != pid:
                raise PricingError(f"{path}: provider: must be {pid!r} (the file name), got {pf.provider!r}")
            parsed.append(pf)
        digest_parts = _digest_parts(table_bytes, regions_bytes, files)

    user_paths = [str(p) for p in extra_files]
    if use_env:
        user_paths += env_pricing_files()
    # One file named twice (by the environment and an option, spelled two ways) is one file.
    seen = {}
    for path in user_paths:
        seen.setdefault(os.path.realpath(path), path)
    user_paths = list(seen.values())
    user_parts, user_files, user_regions = read_user_files(user_paths)
    check_overlaps(user_regions)
    # A user's regional rule is tried before the bundled ones: the first that applies wins.
    regions = (*user_regions, *regions)
    if not parsed and not user_files:
        raise PricingError("no pricing files: bundled=False needs at least one file")

    # A user file by its content alone: an application and `serve` naming one file by two
    # paths (or two copies of it) stamp one version.
    # In any order of the files the same version: their order chooses no price.
    digest = _digest(digest_parts + [("user", data) for data in sorted(data for _, data in user_parts)])
    if user_parts:  # any user file, provider or regional rules, makes it a local table
        version = f"{version}+local.{digest[len('sha256:') :][:8]}" if bundled else f"local.{digest[7:15]}"
    names = [p for p, _ in digest_parts] + user_paths
    table = _build(version, digest, parsed, user_files, normalize, names, regions)
    table.user_files = tuple(os.path.abspath(path) for path in user_paths)
    return table


def _build(
    version: str,
    digest: str,
    bundled: list[ProviderFile],
    user: list[ProviderFile],
    normalize: list[tuple[re.Pattern[str], str]],
    files: list[str],
    regions: tuple[RegionRule, ...] = (),
) -> PriceTable:
    user = _keep_bundled_rules(bundled, user)
    providers: dict[str, ProviderIndex] = {}
    specs: dict[str, list[tuple[ModelSpec, ProviderFile]]] = {}
    # Which user file defined each (provider, model id), and which file claimed each name (a
    # provider id or an otel_names entry) for which provider: two files saying the same thing
    # differently is a mistake, not a choice the file order should make. A user file may
    # replace a bundled model, or add to a bundled provider under its id, never take a name
    # a bundled provider claims for another provider.
    user_models: dict[tuple[str, str], str] = {}
    claims: dict[str, tuple[str, str, bool, str]] = {}  # name -> (provider, path, by user, field)
    fallbacks: dict[str, tuple[tuple[str, ...], str]] = {}  # provider -> (a user file's fallback, path)
    # User files first: their models shadow bundled ones (the search order: at the end).
    ordered = [*user, *bundled]
    for n, pf in enumerate(ordered):
        is_user = n < len(user)
        if is_user and pf.fallback:
            # Two of the user's files giving one provider other fallbacks: the first listed
            # chose (a review), and one version stood for two tables.
            first = fallbacks.setdefault(pf.provider, (tuple(pf.fallback), pf.path))
            if first[0] != tuple(pf.fallback):
                raise PricingError(
                    f"{pf.path}: fallback: provider {pf.provider!r} has fallback {list(first[0])!r}"
                    f" in {first[1]}"
                )
        if pf.provider not in providers:
            providers[pf.provider] = ProviderIndex(pf.provider, pf.fallback)
            specs[pf.provider] = []
        elif pf.fallback and not providers[pf.provider].fallback:
            providers[pf.provider].fallback = pf.fallback
        if is_user:
            for spec in pf.models:
                first = user_models.setdefault((pf.provider, spec.id), pf.path)
                if first != pf.path:
                    raise PricingError(
                        f"{pf.path}: model {spec.id!r}: id: provider {pf.provider!r} already has "
                        f"model {spec.id!r} in {first}"
                    )
        taken = {s.id for s, _ in specs[pf.provider]}
        specs[pf.provider].extend((s, pf) for s in pf.models if s.id not in taken)
        for name in dict.fromkeys(n.lower() for n in (pf.provider, *pf.otel_names)):
            field = "otel_names" if name in pf.otel_names else "provider"  # otel_names: lower-case
            claim = claims.setdefault(name, (pf.provider, pf.path, is_user, field))
            owner, where, by_user, their_field = claim
            if owner == pf.provider:
                continue
            if by_user and not is_user:
                # User files are read first, but the mistake is in the user's file: name it.
                raise PricingError(
                    f"{where}: {their_field}: {name!r} is claimed by bundled provider "
                    f"{pf.provider!r} ({pf.path})"
                )
            raise PricingError(f"{pf.path}: {field}: {name!r} is already claimed by {owner!r} in {where}")

    # Each file was checked on its own; a provider's models from every user file together,
    # so that no order of the files chooses between two rules matching one id, and again
    # when a model kept a bundled model's rules.
    mine: dict[str, list[tuple[ModelSpec, str]]] = {}
    for pf in user:
        mine.setdefault(pf.provider, []).extend((spec, pf.path) for spec in pf.models)
    for models in mine.values():
        if len({path for _, path in models}) > 1 or any(m.rules_from == "bundled" for m, _ in models):
            check_model_overlaps(models)

    for prov in providers.values():
        for fb in prov.fallback:
            if fb not in providers:
                path = next(pf.path for pf in ordered if pf.provider == prov.id)
                raise PricingError(f"{path}: fallback: unknown provider {fb!r}")

    # Priced (non-alias) specs by id, per provider: an alias finds its target in a few dict
    # lookups instead of a scan of every model (quadratic with many aliases).
    priced = {pid: {s.id: (s, pf) for s, pf in items if s.alias_of is None} for pid, items in specs.items()}

    def find(spec: ModelSpec, pf: ProviderFile) -> tuple[ModelSpec, ProviderFile]:
        """An alias's target: a model of its provider or that provider's fallbacks (first
        found in that order, as a span is resolved); else ``provider/id`` naming another
        provider's model; else the one other provider that prices the id. Never the first of
        several (the table's order would choose the price): that is refused."""
        model_id, pid = spec.alias_of, pf.provider
        assert model_id is not None
        near = (pid, *providers[pid].fallback)
        for search in near:
            found = priced[search].get(model_id)
            if found is not None:
                return found
        head, _, rest = model_id.partition("/")
        found = priced[head].get(rest) if rest and head in priced else None
        others = [p for p in providers if p not in near and model_id in priced[p]]
        where = f"{pf.path}: model {spec.id!r}: alias_of"
        if found is not None:
            if others:  # an id with a '/' of its own (OpenRouter's, Perplexity's): which?
                forms = " or ".join(repr(f"{p}/{model_id}") for p in others)
                raise PricingError(
                    f"{where}: {model_id!r} names two models, {head}'s {rest!r} and the model"
                    f" {model_id!r} of {', '.join(others)}: write {forms} for the second, or"
                    f" {rest!r} for the first"
                )
            return found
        if not others:
            alias = next((s for search in near for s, _ in specs.get(search, ()) if s.id == model_id), None)
            if alias is not None:  # an alias of an alias: said, not "no priced model"
                raise PricingError(
                    f"{where}: {model_id!r} is an alias itself (of {alias.alias_of!r}): name a priced model"
                )
            raise PricingError(f"{where}: no priced model {model_id!r} in {pid!r} or its fallbacks")
        if len(others) > 1:
            forms = " or ".join(repr(f"{p}/{model_id}") for p in others)
            raise PricingError(f"{where}: {model_id!r} is priced by {', '.join(others)}: write {forms}")
        return priced[others[0]][model_id]

    # Each alias's target, by (provider, alias id), resolved once (the list prices need them).
    targets = {(pf.provider, s.id): find(s, pf) for items in specs.values() for s, pf in items if s.alias_of}
    hosts = {pf.provider for pf in bundled}  # the providers we ship: hosts resell at list
    listed = _list_specs(bundled, user, targets)
    shipped = {(pf.provider, s.id): (s, pf) for pf in bundled for s in pf.models if s.alias_of is None}
    ours = {id(pf) for pf in user}

    def earlier(spec: ModelSpec, pf: ProviderFile) -> tuple[PricePeriod, ...]:
        """For a user's model replacing a bundled one from a date (its first ``since``): the
        bundled model's prices in force before that date, exactly as the bundled entry has
        them. Its price list before the user's contract began is what those calls paid."""
        first = spec.periods[0].since if spec.periods and id(pf) in ours else None
        base = shipped.get((pf.provider, spec.id)) if first is not None else None
        if base is None:
            return ()
        bundled_periods = build_entry(base[0], base[1], base[0].periods).periods
        return tuple(p for p in bundled_periods if p.since is None or p.since < first)  # type: ignore[operator]

    for pid, items in specs.items():
        for spec, pf in items:
            periods, inherited = spec.periods, ()
            before = earlier(spec, pf)
            if spec.alias_of is not None:
                found = targets[(pid, spec.id)]
                # Exactly its target's prices, the target's multipliers included (its file's
                # once, when the alias is listed in that file too), then the alias's own; an
                # alias a host we ship makes of another provider's model: its list price.
                target, where = found
                if pid in hosts and where.provider != pid:
                    target, where, *_ = listed.get((where.provider, target.id), (target, where))
                periods = target.periods
                inherited = (None if where is pf else where.multiplier, target.multiplier)
                # Before its target's user prices begin: the bundled ones, then the alias's
                # own file's and its own multipliers (the target's are the user's contract;
                # so is its file's, when the alias is listed in that file too).
                before = earlier(target, where)
                own_file = pf if pf is not where else replace(pf, multiplier=None)
                before = build_entry(spec, own_file, before).periods if before else ()
            entry = build_entry(spec, pf, periods, inherited)
            if spec.alias_of is not None:
                entry = replace(entry, alias_target=(found[1].provider, found[0].id))
            providers[pid].entries.append(with_earlier(entry, before) if before else entry)
        providers[pid].index()

    bases = _keep_list_prices(providers, hosts, listed)
    names = {name: claim[0] for name, claim in claims.items()}  # name -> the provider it means
    # The search order for a span naming no provider: the user's own providers first, then the
    # bundled ones in the table's order. A user file under a bundled provider adds its models
    # before that provider's own, not the provider before the others: one custom model in an
    # `aws` file moved every Claude call naming no provider to Bedrock's regional prices, and
    # two such files listed in another order chose another price (a review).
    # The user's own by id, so that no order of the files chooses between two of them.
    shipped = {pf.provider for pf in bundled}
    order = sorted((p for p in providers.values() if p.id not in shipped), key=lambda p: p.id)
    order += [providers[pid] for pid in dict.fromkeys(pf.provider for pf in bundled)]
    return PriceTable(version, digest, order, names, normalize, files, regions, bases)


def _keep_bundled_rules(bundled: list[ProviderFile], user: list[ProviderFile]) -> list[ProviderFile]:
    """``user`` with each model that replaces a bundled one (same provider and id) and has no
    ``match`` of its own given that model's match rules and examples: the dated ids the
    bundled model answers (gpt-4o-2024-08-06 for gpt-4o) get the user's price, rather than
    a host's list-price copy or no price at all."""
    shipped = {(pf.provider, spec.id): spec for pf in bundled for spec in pf.models}
    # The ids the user prices apart (as ids, equals rules or examples): a bundled rule naming
    # one is not inherited (a file pricing gpt-4o and gpt-4o-2024-08-06 each was refused, by
    # rules it never wrote).
    own = {(pf.provider, spec.id) for pf in user for spec in pf.models}
    own |= {
        (pf.provider, r.value) for pf in user for spec in pf.models for r in spec.rules if r.kind == "equals"
    }
    own |= {(pf.provider, e) for pf in user for spec in pf.models for e in spec.examples}

    def inherited(pid: str, spec: ModelSpec, base: ModelSpec) -> ModelSpec:
        rules = tuple(
            r for r in base.rules if r.kind != "equals" or (pid, r.value) not in own or r.value == spec.id
        )
        examples = tuple(e for e in base.examples if (pid, e) not in own or e == spec.id)
        return replace(spec, rules=rules, examples=examples, rules_from="bundled")

    out = []
    for pf in user:
        models = tuple(
            inherited(pf.provider, spec, base)
            if spec.rules_from == "id" and (base := shipped.get((pf.provider, spec.id))) is not None
            else spec
            for spec in pf.models
        )
        out.append(replace(pf, models=models) if models != pf.models else pf)
    return out


# A model's list price: its spec and file, the user's extra match rules, and whether it is a
# bundled model the user replaced.
ListSpec = tuple[ModelSpec, ProviderFile, tuple[MatchRule, ...], bool]


def _list_specs(
    bundled: list[ProviderFile],
    user: list[ProviderFile],
    targets: dict[tuple[str, str], tuple[ModelSpec, ProviderFile]],
) -> dict[tuple[str, str], ListSpec]:
    """The list price of each model a user file prices, by (provider, id): the bundled
    model it replaces (with the user's extra match rules), or, for a model only the user
    prices, its prices as written, without the user's multipliers (a negotiated discount is
    the user's contract with that provider); an alias of one of those, or of a bundled model
    of its provider, that one's list price."""
    shipped = {
        (pf.provider, spec.id): (spec, pf) for pf in bundled for spec in pf.models if spec.alias_of is None
    }
    out: dict[tuple[str, str], ListSpec] = {}
    models = [(pf, spec) for pf in user for spec in pf.models]
    # The models first: an alias then finds its target's list price among them.
    for pf, spec in sorted(models, key=lambda m: m[1].alias_of is not None):
        key, target = (pf.provider, spec.id), None
        if spec.alias_of is not None:
            found, home = targets[key]
            target = (home.provider, found.id) if home.provider == pf.provider else None
        if key in shipped:
            base, where = shipped[key]
            out[key] = (base, where, tuple(r for r in spec.rules if r not in base.rules), True)
        elif spec.alias_of is None:
            out[key] = (replace(spec, multiplier=None), replace(pf, multiplier=None), (), False)
        elif target is not None and (target in out or target in shipped):
            base, where = out[target][:2] if target in out else shipped[target]
            listed = replace(spec, alias_of=None, periods=base.periods, multiplier=base.multiplier)
            out[key] = (listed, where, (), False)
        # else an alias of another provider's model: left to the fallbacks
    return out


def _keep_list_prices(
    providers: dict[str, ProviderIndex], hosts: set[str], listed: dict[tuple[str, str], ListSpec]
) -> dict[tuple[str, str], ModelEntry]:
    """A host we ship that resells a first party's models at list price (its ``fallback``:
    Azure, Vertex, Bedrock) keeps that price for the models a user file prices there: a
    negotiated price is the user's contract with the first party, not with the host. The
    host gets each one's list entry (`_list_specs`) as its own, searched before its
    fallbacks and priced, repriced and selected (``list_of``) under the host's provider id.
    A provider the user's own files define keeps their prices (a gateway on their own key).
    Returns the list entries of the bundled models the user replaced, by (provider, id):
    the bases regional rules price from (`RegionIndex`)."""
    if not listed:
        return {}
    entries = {
        key: replace(build_entry(spec, pf, spec.periods), list_of=key[0])
        for key, (spec, pf, *_) in listed.items()
    }
    for host in providers.values():
        if host.id not in hosts:
            continue
        own = {e.id for e in host.entries}
        added = False
        for fallback in host.fallback:
            for (pid, model_id), entry in entries.items():
                if pid == fallback and model_id not in own:
                    extra = listed[(pid, model_id)][2]
                    host.entries.append(replace(entry, provider=host.id, rules=(*entry.rules, *extra)))
                    own.add(model_id)
                    added = True
        if added:
            host.index()
    return {key: entries[key] for key, (*_, shipped) in listed.items() if shipped}


_default: PriceTable | None = None
_default_lock = threading.Lock()


def _renew_default_lock() -> None:
    global _default_lock
    _default_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_default_lock)


def default_pricing() -> PriceTable:
    """The table `load_pricing()` gives with no arguments, loaded once per process."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = load_pricing()
    return _default
