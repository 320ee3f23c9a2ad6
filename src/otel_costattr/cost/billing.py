"""The billing rule: which of a call's tokens fall in which bucket, and the rate each pays.

Written once, here, as data (`BUCKETS`) and one function that turns it into expressions
(`bucket_expressions`). Everything that splits tokens is generated from them, never restated:

- the engine's general path (`Usage.billable`, `general_price_call`) and its common path
  (`price_call`, tried first; `cost/price_code.py`): compiled once at import;
- the processor's fast path (`cost/compiled.py`): compiled per attribute shape, with the
  counts a shape lacks folded away and the flags it implies fixed;
- SQL repricing (``queries/_reprice.sql``): rendered into the query by `render_sql`.

A bucket starts from one count and, where that count may include counts billed in buckets of
their own (``less``), takes them off. Whether it does is what the bucket's ``flag`` (a
`Usage` field) says: True, the count includes them (floored at 0: declared inclusive, yet
they exceed it); False, it does not; unknown (None), inferred: it does unless they exceed it.
A bucket with no flag always includes its ``less`` (`Usage.problem` refuses usage where they
exceed it). A bucket's ``parts`` are breakdowns its count always includes (the audio and image
tokens of a call's input or output, per modality): taken off after the rest, floored at 0.
Each bucket is billed at one rate, a `RATE_KEYS` name; a model without that rate pays the
documented fallback, which `pricing.model.Rates` applies when the table is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import NamedTuple

from ..pricing.model import RATE_KEYS


class Bucket(NamedTuple):
    """One billable bucket: see the module doc."""

    name: str  # the BillableTokens field
    count: str  # the Usage count it starts from
    rate: str  # the RATE_KEYS rate it pays
    part: str  # the CallCost part it adds to
    less: tuple[str, ...] = ()  # counts billed apart that ``count`` may include
    flag: str | None = None  # the Usage field saying whether it does (None: always)
    parts: tuple[str, ...] = ()  # per-modality counts ``count`` always includes


BUCKETS = (
    Bucket("uncached_input", "input_tokens", "input", "input",
           ("cache_read_tokens", "cache_write_tokens"), "input_includes_cache",
           ("audio_input_tokens", "image_input_tokens")),
    Bucket("cache_read", "cache_read_tokens", "cache_read", "cache_read"),
    Bucket("cache_write_5m", "cache_write_tokens", "cache_write", "cache_write", ("cache_write_1h_tokens",)),
    Bucket("cache_write_1h", "cache_write_1h_tokens", "cache_write_1h", "cache_write"),
    Bucket("output", "output_tokens", "output", "output", ("reasoning_tokens",), "output_includes_reasoning",
           ("audio_output_tokens", "image_output_tokens")),
    Bucket("reasoning", "reasoning_tokens", "reasoning", "reasoning"),
    # Appended, so that the older buckets keep their places in BillableTokens.
    Bucket("audio_input", "audio_input_tokens", "audio_input", "input"),
    Bucket("image_input", "image_input_tokens", "image_input", "input"),
    Bucket("audio_output", "audio_output_tokens", "audio_output", "output"),
    Bucket("image_output", "image_output_tokens", "image_output", "output"),
)  # fmt: skip
# The request's input (what long-context tiers look at) is what these parts bill; the rest is output.
INPUT_PARTS = frozenset({"input", "cache_read", "cache_write"})
INPUT_INDEXES = tuple(i for i, b in enumerate(BUCKETS) if b.part in INPUT_PARTS)
PARTS = tuple(dict.fromkeys(b.part for b in BUCKETS))  # CallCost's parts, in order
COUNTS = tuple(dict.fromkeys(c for b in BUCKETS for c in (b.count, *b.less, *b.parts)))
# The per-modality counts: breakdowns of another count, never usage on their own.
PART_COUNTS = tuple(dict.fromkeys(c for b in BUCKETS for c in b.parts))
FLAGS = tuple(b.flag for b in BUCKETS if b.flag)

if {b.rate for b in BUCKETS} - set(RATE_KEYS):  # pragma: no cover - a typo in BUCKETS
    raise AssertionError("a bucket's rate is not one of RATE_KEYS")

# What a flag is known to be where the expressions run: a value fixed when they are generated,
# or RUNTIME (a variable of the flag's name, possibly None).
RUNTIME = "runtime"
Flag = bool | None | str


class Dialect(NamedTuple):
    """How the expressions are spelled: Python or SQL."""

    infer: Callable[[str, str], str]  # (count, less): count - less when less <= count, else count
    floor: Callable[[str, str], str]  # (count, less): count - less, at least 0
    runtime: Callable[[str, str, str], str] | None  # (flag, count, less): as the flag says


def _paren(terms: list[str]) -> str:
    return terms[0] if len(terms) == 1 else f"({' + '.join(terms)})"


PYTHON = Dialect(
    infer=lambda c, less: f"{c} - {less} if {less} <= {c} else {c}",
    floor=lambda c, less: f"{c} - {less} if {less} <= {c} else 0",
    runtime=lambda f, c, less: (
        f"({c} - {less} if {less} <= {c} else {c}) if {f} is None"
        f" else ({c} - {less} if {less} <= {c} else 0) if {f} else {c}"
    ),
)
SQL = Dialect(
    infer=lambda c, less: f"CASE WHEN {less} <= {c} THEN {c} - {less} ELSE {c} END",
    floor=lambda c, less: f"greatest({c} - {less}, 0)",
    runtime=None,
)


def bucket_expressions(
    dialect: Dialect = PYTHON,
    has: Collection[str] = COUNTS,
    flags: Mapping[str, Flag] | None = None,
    spell: Callable[[str], str] = str,
) -> dict[str, str]:
    """Each bucket's token count as an expression over the counts (named by ``spell``).

    ``has``: the counts present (the others are 0 and folded away); ``flags``: what each flag
    is known to be (True, False, None: inferred, or RUNTIME; default RUNTIME).
    """
    out = {}
    for b in BUCKETS:
        if b.count not in has:
            out[b.name] = "0"  # nothing to take anything off: see Usage.problem for 1h writes
            continue
        count = spell(b.count)
        less = [spell(c) for c in b.less if c in has]
        expr = count
        if less:
            minus = _paren(less)
            flag: Flag = None if b.flag is None else (flags or {}).get(b.flag, RUNTIME)
            if b.flag is None:
                expr = f"{count} - {minus}"  # always included, never more than the count
            elif flag == RUNTIME:
                if dialect.runtime is None:
                    raise ValueError(f"{b.flag} must be known to write this dialect")
                expr = dialect.runtime(b.flag, count, minus)
            elif flag is None:
                expr = dialect.infer(count, minus)
            elif flag:
                expr = dialect.floor(count, minus)
        parts = [spell(c) for c in b.parts if c in has]
        if parts:
            expr = dialect.floor(expr if expr == count else f"({expr})", _paren(parts))
        out[b.name] = expr
    return out


def cost_terms(names: Mapping[str, str], rate: Callable[[str], str]) -> dict[str, list[str]]:
    """Per `PARTS` name, the products of each bucket (``names``: its expression or variable)
    with its rate (named by ``rate``); buckets that are "0" are left out."""
    parts: dict[str, list[str]] = {p: [] for p in PARTS}
    for b in BUCKETS:
        if names[b.name] != "0":
            parts[b.part].append(f"{names[b.name]} * {rate(b.rate)}")
    return parts


def total_input(names: Mapping[str, str]) -> str:
    """The request's input tokens (what long-context tiers look at) as an expression."""
    inputs = (names[b.name] for b in BUCKETS if b.part in INPUT_PARTS)
    return " + ".join(n for n in inputs if n != "0") or "0"


def python_assignments(exprs: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """Lines assigning each computed bucket to a variable of its name, and what names each
    bucket afterwards (its variable, or the plain count or 0 it is)."""
    lines, names = [], {}
    for name, expr in exprs.items():
        if expr.isidentifier() or expr == "0":
            names[name] = expr
        else:
            lines.append(f"{name} = {expr}")
            names[name] = name
    return lines, names


# --- SQL: the buckets of queries/_reprice.sql ------------------------------------------

# Stored tokens are normalised (store contract): input includes cache reads and writes,
# output includes reasoning.
_STORED = {flag: True for flag in FLAGS}
# The store keeps no per-modality counts: SQL repricing bills them at the text rate.
STORED_COUNTS = tuple(c for c in COUNTS if c not in PART_COUNTS)
# The rates SQL repricing reads (queries/_prices.sql): the first of RATE_KEYS, in order.
STORED_RATES = tuple(k for k in RATE_KEYS if k in {b.rate for b in BUCKETS if b.count in STORED_COUNTS})
if RATE_KEYS[: len(STORED_RATES)] != STORED_RATES:  # pragma: no cover - Rates.ints is sliced
    raise AssertionError("the stored buckets' rates must come first in RATE_KEYS")
_SQL_PREFIX = "n_"


def render_sql(template: str) -> str:
    """``_reprice.sql`` with its placeholders filled from `BUCKETS`: ``{{buckets}}`` (one
    ``n_<bucket>`` column each, from the ``<count>`` columns), ``{{usd}}`` (over the
    ``n_<bucket>`` columns of ``u`` and the rate columns of ``p``) and ``{{total_input}}``."""
    exprs = bucket_expressions(SQL, has=STORED_COUNTS, flags=_STORED)
    # A bucket the store cannot fill (per-modality) is left out: never a NULL rate times 0.
    columns = {b.name: "0" if exprs[b.name] == "0" else f"u.{_SQL_PREFIX}{b.name}" for b in BUCKETS}
    parts = cost_terms(columns, lambda rate: f"p.{rate}")
    fills = {
        "{{buckets}}": ",\n        ".join(f"{e} AS {_SQL_PREFIX}{n}" for n, e in exprs.items()),
        "{{usd}}": "\n         + ".join(t for terms in parts.values() for t in terms),
        "{{total_input}}": total_input(columns),
    }
    for placeholder, text in fills.items():
        if template.count(placeholder) != 1:
            raise ValueError(f"_reprice.sql: expected {placeholder} once")
        template = template.replace(placeholder, text)
    return template
