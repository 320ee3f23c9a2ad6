"""A small workload of spans written straight into a real store, with costs worked out by
hand, shared by the rollup and CLI tests. (No tests here: a helper module.)

Prices used for the stamped costs (USD per million tokens, the bundled table):
gpt-4o 2.5 in / 10 out / 1.25 cache read; gpt-4o-mini 0.15 / 0.6;
claude-sonnet-4-5 3 / 15; claude-haiku-4-5 1 / 5.

    T1 refund  2026-06-01  workflow > triage(agent) > [call c1, billing(agent) > [call c2,
               tool > call c3]]; c2 and c3 carry no identity (another process)
       c1 gpt-4o 1000 in (400 cached) / 100 out: 600*2.5 + 400*1.25 + 100*10 = $0.003
       c2 claude-sonnet-4-5 2000 / 200: 2000*3 + 200*15 = $0.009
       c3 gpt-4o-mini 10000 / 1000: 10000*0.15 + 1000*0.6 = $0.0021
       the triage agent span repeats a summed usage and a cost: never counted
    T2 research 06-02  researcher v1, haiku, inputs 1000, 3000, 40000 (after fetch_document),
       100 out each: $0.0015 + $0.0035 + $0.0405 = $0.0455
    T3 research 06-03  researcher v2, 9 calls of 1000 / 100: 9 * $0.0015 = $0.0135 (a loop)
    T4 research 06-04  researcher v1, 3 calls of 1000 / 100: $0.0045
    T5 summarize 06-05 service svc-b, root is the summarizer agent: gpt-4o-mini 1000 / 0
       $0.00015; acme-ner-7b (unknown model) 5000 / 50; gpt-4o with invalid usage
    T6 refund  06-06   one call whose parent never arrived: gpt-4o 200 / 20 = $0.0007
    T7 -       06-07   two spans that are each other's parent (bad data), a call under them
       without identity: gpt-4o-mini 1000 / 0 = $0.00015
    T8 -       06-08   a lone root call without identity: gpt-4o-mini 2000 / 0 = $0.0003
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from otel_costattr.store import database as store
from otel_costattr.store import schema
from otel_costattr.store.identity import settle as settle_identity

D = Decimal
DAY0 = dt.datetime(2026, 6, 1, 9, 0)
TOTAL_USD = D("0.0789")
TOTAL_CALLS = 24


def trace_id(n: int) -> str:
    return f"{n:032x}"


class Writer:
    """Inserts rows of the ``spans`` table with sensible defaults."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._ids = itertools.count(1)

    def span(
        self,
        trace: int,
        name: str,
        *,
        parent: str | None = None,
        role: str = "other",
        at: dt.datetime,
        ms: float = 1000.0,
        span_id: str | None = None,
        **cols: Any,
    ) -> str:
        sid = span_id or f"{next(self._ids):016x}"
        row = {
            "trace_id": trace_id(trace),
            "span_id": sid,
            "parent_span_id": parent,
            "name": name,
            "kind": "CLIENT" if role == "model_call" else "INTERNAL",
            "start_time": at,
            "end_time": at + dt.timedelta(milliseconds=ms),
            "duration_ms": ms,
            "status_code": "UNSET",
            "service_name": "svc-a",
            "scope_name": "tests",
            "span_role": role,
            "attributes": "{}",
            **cols,
        }
        # With the attribute columns the store's ingest fills (store/schema.py ATTRIBUTES),
        # unless the table is of a version before them.
        values = ", ".join(f"${k} AS {k}" for k in row)
        kept = f", {schema.attribute_select()}" if self._attribute_columns() else ""
        self.con.execute(f"INSERT INTO spans BY NAME SELECT *{kept} FROM (SELECT {values})", row)
        return sid

    def _attribute_columns(self) -> bool:
        found = self.con.execute(
            "SELECT count(*) FROM pragma_table_info('spans') WHERE name = $c",
            {"c": next(iter(schema.ATTRIBUTE_COLUMNS.values()))},
        ).fetchone()
        return bool(found and found[0])

    def call(
        self,
        trace: int,
        model: str,
        inp: int | None,
        out: int | None,
        usd: str | None,
        *,
        parent: str | None,
        at: dt.datetime,
        provider: str | None = None,
        status: str | None = None,
        cache_read: int = 0,
        **cols: Any,
    ) -> str:
        provider = provider or ("openai" if model.startswith("gpt") else "anthropic")
        status = status or ("priced" if usd is not None else "unknown_model")
        return self.span(
            trace,
            f"chat {model}",
            parent=parent,
            role="model_call",
            at=at,
            operation="chat",
            provider=provider,
            request_model=model,
            response_model=model,
            priced_model=model if status == "priced" else None,
            input_tokens=inp,
            output_tokens=out,
            cache_read_tokens=None if inp is None else cache_read,
            cache_write_tokens=None if inp is None else 0,
            reasoning_tokens=None if inp is None else 0,
            cost_usd=None if usd is None else D(usd),
            cost_status=status,
            cost_source="span",
            pricing_version="2026.11.22",
            **cols,
        )


def identity(feature: str | None = None, agent: str | None = None, version: str | None = None) -> dict:
    return {"feature": feature, "agent_name": agent, "agent_version": version}


def build(path: Path) -> Path:
    """Write the workload described in the module docstring to a new store at ``path``."""
    con = store.connect(path)
    try:
        w = Writer(con)
        at = DAY0
        s = lambda minutes: at + dt.timedelta(minutes=minutes)  # noqa: E731

        # T1 refund: triage hands off to billing; billing's calls come from another process.
        root = w.span(1, "invoke_workflow refund", role="workflow", at=s(0), ms=600_000,
                      operation="invoke_workflow", workflow_name="refund", **identity("refund"))  # fmt: skip
        triage = w.span(1, "invoke_agent triage", parent=root, role="agent", at=s(1), ms=500_000,
                        operation="invoke_agent", input_tokens=9999, output_tokens=999,
                        cost_usd=D(1), **identity("refund", "triage", "v1"))  # fmt: skip
        w.call(1, "gpt-4o", 1000, 100, "0.003", cache_read=400, parent=triage, at=s(2), step=0,
               **identity("refund", "triage", "v1"))  # fmt: skip
        billing = w.span(1, "invoke_agent billing", parent=triage, role="agent", at=s(3), ms=300_000,
                         operation="invoke_agent", **identity(None, "billing", "v2"))  # fmt: skip
        w.call(1, "claude-sonnet-4-5", 2000, 200, "0.009", parent=billing, at=s(4))
        lookup = w.span(1, "execute_tool lookup_order", parent=billing, role="tool", at=s(5),
                        operation="execute_tool", tool_name="lookup_order")  # fmt: skip
        w.call(1, "gpt-4o-mini", 10000, 1000, "0.0021", parent=lookup, at=s(6))

        # T2..T4 research: researcher v1, v2 (a loop), v1.
        for trace, day, version, inputs in (
            (2, 1, "v1", (1000, 3000, 40000)),
            (3, 2, "v2", (1000,) * 9),
            (4, 3, "v1", (1000,) * 3),
        ):
            at = DAY0 + dt.timedelta(days=day, hours=1)
            root = w.span(trace, "invoke_workflow research", role="workflow", at=s(0), ms=3_600_000,
                          operation="invoke_workflow", **identity("research"))  # fmt: skip
            agent = w.span(trace, "invoke_agent researcher", parent=root, role="agent", at=s(0),
                           ms=3_000_000, operation="invoke_agent",
                           **identity("research", "researcher", version))  # fmt: skip
            for step, tokens in enumerate(inputs):
                usd = D(tokens) / 1_000_000 + D("0.0005")
                w.call(trace, "claude-haiku-4-5", tokens, 100, str(usd), parent=agent, at=s(2 * step + 1),
                       step=step, **identity("research", "researcher", version))  # fmt: skip
                if trace == 2 and step == 1:
                    w.span(trace, "execute_tool fetch_document", parent=agent, role="tool",
                           at=s(2 * step + 1.5), tool_name="fetch_document",
                           **identity("research", "researcher", version))  # fmt: skip

        # T5 summarize, in another service; the root is the agent itself.
        at = DAY0 + dt.timedelta(days=4, hours=1)
        summarizer = w.span(5, "invoke_agent summarizer", role="agent", at=s(0), ms=60_000,
                            service_name="svc-b", operation="invoke_agent",
                            **identity("summarize", "summarizer", "v1"))  # fmt: skip
        ident = identity("summarize", "summarizer", "v1")
        w.call(5, "gpt-4o-mini", 1000, 0, "0.00015", parent=summarizer, at=s(1), step=0,
               service_name="svc-b", **ident)  # fmt: skip
        w.call(5, "acme-ner-7b", 5000, 50, None, provider="vllm", parent=summarizer, at=s(2),
               step=1, service_name="svc-b", **ident)  # fmt: skip
        w.call(5, "gpt-4o", None, None, None, status="invalid_usage", parent=summarizer, at=s(3),
               step=2, service_name="svc-b", **ident)  # fmt: skip

        # T6: the parent never arrived (exported elsewhere).
        at = DAY0 + dt.timedelta(days=5, hours=1)
        w.call(6, "gpt-4o", 200, 20, "0.0007", parent="00000000deadbeef", at=s(0), step=0,
               **identity("refund", "triage", "v1"))  # fmt: skip

        # T7: a parent cycle in bad data; the walk must stop.
        at = DAY0 + dt.timedelta(days=6, hours=1)
        w.span(7, "loop a", parent="00000000000000b2", at=s(0), span_id="00000000000000b1")
        w.span(7, "loop b", parent="00000000000000b1", at=s(0), span_id="00000000000000b2")
        w.call(7, "gpt-4o-mini", 1000, 0, "0.00015", parent="00000000000000b1", at=s(1))

        # T8: a lone call, root of its trace, without identity.
        at = DAY0 + dt.timedelta(days=7, hours=1)
        w.call(8, "gpt-4o-mini", 2000, 0, "0.0003", parent=None, at=s(0))
        # What ingest does after each batch: the rollups read the identity settled here
        # (tests/test_identity.py checks every rollup gives the same without it).
        settle_identity(con)
    finally:
        con.close()
    return path
