"""Stamp functions compiled per attribute shape: a model-call span to what is stamped on it.

The processor's common case (a well-formed call, priced from the table, no regional price,
no cost the provider reported, not a duplicate of a call another span priced, no proposed
attributes) ran as three Python calls and a dozen tests of keys per span: the processor's
end hook, the shape's compiled pricer found through `cost.compiled.price_attributes`, and
back. For a given shape
the keys tested are known when the function is compiled, so here the pricer's own body
(`cost.compiled.pricer_parts`, the same generated lines) ends in the processor's stamp, and
every test of a key the shape lacks is folded away. Anything else hands the span, unchanged,
to the processor's general end hook (``slow``), which decides as it always did: a stamp
function can only agree with it (tests/test_processor_stamps.py checks that it does).

`sdk/seam.py` calls the function of a span's shape directly from ``_on_ending``
(`seam.EndHook`'s ``by_shape``); the processor fills that table as shapes come.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..cost.compiled import build, pricer_parts
from ..cost.reported import REPORTED_COST_KEYS
from ..semconv import AGENT_STEP, CALL_KEYS, COST, COST_STATUS, PRICED_MODEL, PRICING_VERSION, RESPONSE_ID
from .calls import ID_CHARS, claimed_id

Stamp = Callable[[Any, dict[str, Any], int], "dict[str, Any] | None"]
# The most attributes a stamp function adds itself (`seam.EndHook`'s room): cost, status,
# pricing version, model, step.
ROOM = 5
REPORTED_KEYS = frozenset(REPORTED_COST_KEYS)
# The keys that decide a span's stamp function: the call's own, and ours already there.
STAMP_KEYS = CALL_KEYS | REPORTED_KEYS | {COST_STATUS, AGENT_STEP, RESPONSE_ID}


def _stamped_already(span: object, attrs: object, ns: object) -> None:
    """For shapes holding a cost status: priced already (a second processor)."""
    return None


def compile_stamp(
    keys: frozenset[str],
    *,
    slow: Stamp,
    cached_quote: Callable[..., Any],
    quote: Callable[..., Any],
    version: str,
    regional: object,
    count_priced: Callable[[], object],
    internal_error: Callable[[str], None],
    first_spans: Any = None,
    siblings: Any = None,
    duplicate: Callable[[], dict[str, Any]] | None = None,
    steps_type: type,
) -> Stamp:
    """The stamp function for spans holding exactly these of `STAMP_KEYS` (a shape with a
    cost status: none; one the compiled pricer does not take: ``slow`` itself).
    ``slow(span, attrs, start_ns)`` is the processor's general end hook, ``cached_quote``
    and ``quote`` the table's (see `cost.compiled.price_attributes`), ``regional`` the ids
    of entries some region prices otherwise. The step counter of the span's agent is read
    from the seam's `seam.MARKER`, of type ``steps_type``: any other marker hands the span
    to ``slow``. ``first_spans``: the processor's duplicate check (its
    `calls.FirstSpans`; None: off), with ``siblings`` (its `calls.Siblings`) and
    ``duplicate()``, the processor's stamp of a duplicate.
    A priced span claims its response id inline: the common case, a (trace, id) not seen
    before, is one ``setdefault`` on its ``claims``; otherwise ``first_spans.settle``
    decides, once: a span another span of its call priced first gets ``duplicate()``."""
    if COST_STATUS in keys:
        return _stamped_already
    if not keys.isdisjoint(REPORTED_KEYS):
        return slow  # a cost the provider reported: the general rules weigh it
    parts = pricer_parts(
        keys & CALL_KEYS, fail="return SLOW(span, a, ns)", unknown="return SLOW(span, a, ns)"
    )
    if parts is None:
        return slow
    names, body, total_input, total, _ = parts
    names.update(
        SLOW=slow,
        cached_quote=cached_quote,
        quote=quote,
        COUNT=count_priced,
        INTERNAL=internal_error,
        REGIONAL=regional,
        VERSION=version,
        COST=COST,
        STATUS=COST_STATUS,
        PRICING_VERSION=PRICING_VERSION,
        PRICED_MODEL=PRICED_MODEL,
        STEP=AGENT_STEP,
    )
    # What price() returns for a priced call, read where the processor's stamp needs it; a
    # long-context tier, a time-of-day window or a regional price: the general hook.
    body += [
        f"if {total_input} > hit[8]: return SLOW(span, a, ns)",
        "entry = hit[3]",
        "if id(entry) in REGIONAL: return SLOW(span, a, ns)",
        "ints = hit[4]",
        f"usd = ({total}) / hit[6]",
    ]
    if first_spans is not None and RESPONSE_ID in keys:  # priced: it claims its response id
        # calls.FirstSpans.claim inline, no call: the span's key (trace id, response id)
        # and (start, end, instrumentation scope's name, cost): all atomic, so the collector
        # untracks the tuple and never walks the kept claims again. The SDK set the end time before
        # _on_ending (the fallback, as _mark's, for any other way); a SpanContext is a tuple
        # whose item 0 is the trace id (the property reads it so).
        names.update(FIRST=first_spans, CLAIMS=first_spans.claims, LIMIT=first_spans.limit)
        names.update(RID=RESPONSE_ID, NOW=time.time_ns, DUPLICATE=duplicate)
        names.update(ID_CHARS=ID_CHARS, CLAIMED_ID=claimed_id, SIB=siblings)
        body += [
            "rid = a[RID]",
            "if type(rid) is str and rid:",
            "    if len(rid) > ID_CHARS: rid = CLAIMED_ID(rid)",
            "    key = (span._context[0], rid)",
            "    scope = span._instrumentation_scope",
            "    mine = (ns, span._end_time or NOW(), None if scope is None else scope._name, usd)",
            "    first = CLAIMS.setdefault(key, mine)",
            "    if (first is not mine or len(CLAIMS) > LIMIT) and not FIRST.settle(key, mine, first):",
            "        return DUPLICATE()",
            # A sibling span of another instrumentation without the id (calls.Siblings): looked
            # for only while `Siblings.arm` found both kinds of instrumentation loaded, one
            # test until then.
            "    if SIB.active and SIB.copy(span, a, ns, True, usd): return DUPLICATE()",
            "elif SIB.active and SIB.copy(span, a, ns, False, usd): return DUPLICATE()",
        ]
    elif first_spans is not None:  # no response id: a sibling of another scope may be its copy
        names.update(SIB=siblings, DUPLICATE=duplicate)
        body.append("if SIB.active and SIB.copy(span, a, ns, False, usd): return DUPLICATE()")
    # The seam's MARKER, read as an attribute (a span started before the processor has
    # none): a pair's marker (calls.Paired) is the general hook's to decide.
    names.update(STEPS=steps_type)
    lines = ["try:", "    agent = span._costattr_agent", "except AttributeError:", "    agent = None"]
    lines.append("if agent is not None and type(agent) is not STEPS: return SLOW(span, a, ns)")
    lines += ["try:", *("    " + line.replace("\n", "\n    ") for line in body)]
    # Values that are unhashable or change meanwhile: the general hook copes, as it does
    # when price_attributes raises.
    lines += ["except (KeyError, TypeError, RuntimeError):", "    return SLOW(span, a, ns)"]
    lines += ["except Exception:", "    INTERNAL('end')", "    return None"]
    # Written into the live attributes, as the seam lets a shape's function (at most ROOM).
    lines += ["COUNT()", "a[COST] = usd", "a[STATUS] = 'priced'", "a[PRICING_VERSION] = VERSION"]
    lines.append("a[PRICED_MODEL] = entry.id")
    if AGENT_STEP not in keys:
        lines.append("if agent is not None: a[STEP] = next(agent)")
    lines.append("return None")
    return build("stamp", "span, a, ns", lines, names, sorted(keys))  # type: ignore[return-value]
