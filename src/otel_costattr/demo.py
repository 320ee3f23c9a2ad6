"""The demo: a simulated multi-agent workload traced through the real pipeline.

`run_demo(path)` writes the past week of agent runs (fixed seed, fixed ids, times fixed
relative to the hour it runs: the file is the same on every run within an hour, the week
lies wholly inside the last 7 days so `--days 7` finds every run, and nothing sleeps)
through a real TracerProvider with `CostSpanProcessor` and
``BatchSpanProcessor(DuckDBSpanExporter(path))``; ``otel-costattr demo`` then prints the
rollups. examples/hand_instrumented_agent.py is the same workload as plain application code.

The story it tells:

- ``refund``: a triage agent routes every ticket with claude-sonnet-4-5 (a one-word answer a
  cheap model could give), then hands off to a billing agent (gpt-4o, tools). Triage copies
  Anthropic's raw usage (input exclusive of the cached prompt); billing reports OpenAI's
  (cached tokens included in input).
- ``research``: a researcher agent loops (search, read, think) with a growing context and
  prompt caching; version v2 (from Thursday) has a longer system prompt; one run never
  converges and loops 12 times. Its agent span repeats the summed usage of its calls, as the
  conventions recommend: never counted twice.
- ``summarize``: a summarizer fetches a whole contract into context (the input jumps
  ~60x), and sends entity extraction to a separate worker process, traced without the
  processor (so its spans carry no feature or agent: attribution goes up the parent chain),
  which calls a self-hosted model the pricing table does not know.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .sdk.processor import CostSpanProcessor
from .semconv import IDENTITY_KEYS
from .store import database as store
from .store.exporter import DuckDBSpanExporter

DEFAULT_PATH = "otel-costattr-demo.duckdb"
SCOPE = "otel_costattr.demo"
SEED = 20261116
DAYS = 7
# Who each run is for (user.id, app.tenant), in turn: set on the run's first span, copied down
# to its calls by the processor (identity_keys), and per user or tenant in `rollup per-group`.
CUSTOMERS = (
    ("u-ana", "acme"),
    ("u-ben", "acme"),
    ("u-chloe", "acme"),
    ("u-dev", "globex"),
    ("u-eli", "globex"),
)
IDENTITY = (*IDENTITY_KEYS, "user.id", "app.tenant")
_MS = 1_000_000  # nanoseconds


class DemoError(Exception):
    """The demo cannot write where it was asked to."""


class _SeededIds(IdGenerator):
    """Trace and span ids from a seeded generator: the same file on every run."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._rng.getrandbits(128) or 1


class _Sim:
    """Simulated time and the two tracers: the application (with the cost processor) and the
    extraction worker (another process in real life, here a second provider without it).

    ``rng`` draws the workload (token counts, choices), ``clock`` the durations: the example
    draws the same workload from the same seed without simulating time.
    """

    def __init__(self, app: trace.Tracer, worker: trace.Tracer, seed: int) -> None:
        self.app = app
        self.worker = worker
        self.rng = random.Random(seed)
        self.clock = random.Random(seed + 1)
        self.now = 0
        self.customer = CUSTOMERS[0]

    def at(self, when: dt.datetime) -> None:
        self.now = int(when.timestamp()) * 1_000_000_000

    @contextmanager
    def span(
        self,
        name: str,
        attributes: Mapping[str, Any],
        *,
        tracer: trace.Tracer | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        context: Any = None,
    ) -> Iterator[trace.Span]:
        tracer = tracer or self.app
        with tracer.start_as_current_span(
            name, context=context, kind=kind, attributes=attributes, start_time=self.now,
            end_on_exit=False,
        ) as span:  # fmt: skip
            yield span
            self.now += 3 * _MS
            span.end(end_time=self.now)

    def chat(self, provider: str, model: str, usage: Mapping[str, int], *, worker: bool = False) -> None:
        """One model call, recorded the way the instrumentation (or hand-written code) would."""
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "gen_ai.response.model": model,
            **usage,
        }
        with self.span(f"chat {model}", attrs, tracer=self.worker if worker else None, kind=SpanKind.CLIENT):
            out = usage.get("gen_ai.usage.output_tokens", 0)
            self.now += (350 + 12 * out + self.clock.randint(0, 150)) * _MS

    def tool(self, name: str) -> None:
        attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
        with self.span(f"execute_tool {name}", attrs):
            self.now += self.clock.randint(80, 1500) * _MS


def _agent(name: str, version: str) -> dict[str, str]:
    return {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": name,
        "gen_ai.agent.version": version,
    }


def _workflow(sim: _Sim, feature: str) -> dict[str, str]:
    user, tenant = sim.customer
    return {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": feature,
        "app.feature": feature,
        "user.id": user,
        "app.tenant": tenant,
    }


# --- the three features ----------------------------------------------------------------


def refund(sim: _Sim) -> None:
    """Triage (an expensive model for a one-word routing answer), then a billing handoff."""
    rng = sim.rng
    with (
        sim.span("invoke_workflow refund", _workflow(sim, "refund")),
        sim.span("invoke_agent triage", _agent("triage", "v1")),
    ):
        # Hand-written Anthropic usage: input_tokens is what was NOT read from the cache.
        sim.chat("anthropic", "claude-sonnet-4-5", {
            "gen_ai.usage.input_tokens": rng.randint(2500, 3500),  # the ticket thread
            "gen_ai.usage.cache_read_input_tokens": 2400,  # the cached routing prompt
            "gen_ai.usage.cache_creation_input_tokens": 0,
            "gen_ai.usage.output_tokens": 3,
        })  # fmt: skip
        with sim.span("invoke_agent billing", _agent("billing", "v2")):
            context = 1800 + rng.randint(0, 400)
            for tool in ("lookup_order", "issue_refund", None):
                # OpenAI usage: the cached prefix is part of input_tokens.
                sim.chat("openai", "gpt-4o", {
                    "gen_ai.usage.input_tokens": context,
                    "gen_ai.usage.cache_read.input_tokens": 1024 if context > 2048 else 0,
                    "gen_ai.usage.output_tokens": rng.randint(60, 180),
                })  # fmt: skip
                if tool:
                    sim.tool(tool)
                    context += rng.randint(300, 700)


def research(sim: _Sim, version: str, steps: int) -> None:
    """A research loop whose context grows each step; the prompt prefix is cached."""
    rng = sim.rng
    system = 4000 if version == "v1" else 9000
    total_in = total_out = 0
    with (
        sim.span("invoke_workflow research", _workflow(sim, "research")),
        sim.span("invoke_agent researcher", _agent("researcher", version)) as agent,
    ):
        context = system + 600
        for step in range(steps):
            written = system if step == 0 else 0
            out = rng.randint(250, 600)
            sim.chat("anthropic", "claude-sonnet-4-5", {
                "gen_ai.usage.input_tokens": context,  # inclusive, as OpenLLMetry reports
                "gen_ai.usage.cache_read.input_tokens": 0 if step == 0 else system,
                "gen_ai.usage.cache_creation.input_tokens": written,
                "gen_ai.usage.output_tokens": out,
            })  # fmt: skip
            total_in += context
            total_out += out
            if step < steps - 1:
                sim.tool("web_search" if step % 2 == 0 else "read_page")
                context += out + rng.randint(1200, 2200)
        # The conventions recommend the summed usage on the agent span: never priced.
        agent.set_attributes({"gen_ai.usage.input_tokens": total_in, "gen_ai.usage.output_tokens": total_out})


def summarize(sim: _Sim, document_tokens: int) -> None:
    """Plan, fetch the whole document into context, summarize; extraction runs elsewhere."""
    rng = sim.rng
    with (
        sim.span("invoke_workflow summarize", _workflow(sim, "summarize")),
        sim.span("invoke_agent summarizer", _agent("summarizer", "v1")),
    ):
        plan = 1500 + rng.randint(0, 300)
        sim.chat("anthropic", "claude-haiku-4-5", {
            "gen_ai.usage.input_tokens": plan, "gen_ai.usage.output_tokens": 120,
        })  # fmt: skip
        sim.tool("fetch_document")
        sim.chat("anthropic", "claude-haiku-4-5", {  # the whole contract, untruncated
            "gen_ai.usage.input_tokens": plan + 120 + document_tokens,
            "gen_ai.usage.output_tokens": rng.randint(700, 1100),
        })  # fmt: skip
        with sim.span("execute_tool extract_entities", {
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "extract_entities",
        }):  # fmt: skip
            carrier: dict[str, str] = {}
            TraceContextTextMapPropagator().inject(carrier)
            _extraction_worker(sim, carrier, document_tokens)


def _extraction_worker(sim: _Sim, carrier: Mapping[str, str], document_tokens: int) -> None:
    """Another service: its spans have no feature or agent (no processor copied them)."""
    parent = TraceContextTextMapPropagator().extract(carrier)
    with sim.span("POST /extract", {"http.request.method": "POST"}, tracer=sim.worker,
                  kind=SpanKind.SERVER, context=parent):  # fmt: skip
        chunks = max(1, document_tokens // 16000)
        for _ in range(chunks):
            sim.chat("vllm", "acme-ner-7b", {
                "gen_ai.usage.input_tokens": 16000 + sim.rng.randint(0, 500),
                "gen_ai.usage.output_tokens": sim.rng.randint(300, 500),
            }, worker=True)  # fmt: skip
        sim.chat("openai", "gpt-4o-mini", {
            "gen_ai.usage.input_tokens": 400 * chunks, "gen_ai.usage.output_tokens": 250,
        }, worker=True)  # fmt: skip


# Where the week sits: its first morning begins this long after the hour ``now`` falls in,
# seven days back. A day's runs span about seven hours from its morning, so the last one
# ends about nine hours before ``now`` and the first starts at least seven hours inside a
# rolling `--days 7` window: every run is found, whatever the time of day, for hours after.
# (A week pinned to calendar days cannot do both: a rolling window cuts some day's runs.)
_LEAD = dt.timedelta(hours=8)


def first_morning(now: dt.datetime | None = None) -> dt.datetime:
    """When the demo's week begins: seven days before the hour ``now`` (default: now, UTC) falls
    in, plus eight hours. The week then lies wholly inside `--days 7` and ends before
    ``now``. A ``now`` at midnight gives 08:00 UTC seven days before."""
    now = now or dt.datetime.now(dt.timezone.utc)
    hour = now.astimezone(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    return hour - dt.timedelta(days=DAYS) + _LEAD


def simulate(sim: _Sim, start: dt.datetime) -> int:
    """A week of runs from ``start``, one per feature a day; returns the number of runs."""
    rng = sim.rng
    runs = 0
    for day in range(DAYS):
        morning = start + dt.timedelta(days=day)
        for slot in range(3):
            sim.at(morning + dt.timedelta(hours=3 * slot, minutes=sim.clock.randint(0, 59)))
            kind = (day + slot) % 3
            sim.customer = CUSTOMERS[runs % len(CUSTOMERS)]
            if kind == 0:
                refund(sim)
            elif kind == 1:
                version = "v1" if day < 3 else "v2"
                looping = day == 4 and slot == 0
                research(sim, version, 12 if looping else rng.randint(2, 4))
            else:
                summarize(sim, 90_000 if rng.random() < 0.5 else 12_000)
            runs += 1
    return runs


# --- running it ------------------------------------------------------------------------


def _is_demo_database(path: Path) -> bool:
    try:
        con = store.connect(path, read_only=True, retry=2.0)
    except store.StoreError:
        return False
    try:
        other = con.execute("SELECT count(*) FROM spans WHERE scope_name IS DISTINCT FROM ?", [SCOPE])
        return other.fetchone()[0] == 0
    except Exception:
        return False
    finally:
        con.close()


def _clear(path: Path) -> None:
    """Remove a previous demo database (only one this demo wrote) and its side files."""
    if path.exists():
        if not _is_demo_database(path):
            raise DemoError(f"{path} exists and is not a demo database; choose another --db")
        path.unlink()
    for extra in (Path(f"{path}.wal"), store.spool_dir(path)):
        if extra.is_dir():
            shutil.rmtree(extra)
        elif extra.exists():
            extra.unlink()


def run_demo(
    path: str | os.PathLike[str] = DEFAULT_PATH,
    *,
    now: dt.datetime | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Write the simulated workload to ``path`` (replacing a previous demo database there)
    and return what was written: path, runs, first and last day. The week ends before ``now``
    (default: now, UTC) and lies inside the 7 days before it (see `first_morning`); the same
    hour writes the same file. ``today`` (a date) stands for ``now`` at its midnight, UTC."""
    if today is not None:
        now = dt.datetime.combine(today, dt.time(), tzinfo=dt.timezone.utc)
    start = first_morning(now)
    target = Path(path).expanduser().absolute()
    _clear(target)
    exporter = DuckDBSpanExporter(target)
    ids = _SeededIds(SEED)
    app = TracerProvider(resource=Resource.create({"service.name": "support-and-research"}),
                         id_generator=ids, shutdown_on_exit=False)  # fmt: skip
    app.add_span_processor(CostSpanProcessor(identity_keys=IDENTITY))
    app.add_span_processor(BatchSpanProcessor(exporter))
    worker = TracerProvider(resource=Resource.create({"service.name": "extraction-worker"}),
                            id_generator=ids, shutdown_on_exit=False)  # fmt: skip
    worker_exporter = DuckDBSpanExporter(target)
    worker.add_span_processor(BatchSpanProcessor(worker_exporter))
    try:
        sim = _Sim(app.get_tracer(SCOPE), worker.get_tracer(SCOPE), SEED)
        runs = simulate(sim, start)
    finally:
        worker.shutdown()
        app.shutdown()
    end = dt.datetime.fromtimestamp(sim.now / 1e9, dt.timezone.utc)  # the last run's end
    return {"path": str(target), "runs": runs, "first_day": start.date(), "last_day": end.date()}
