"""Shared fixtures: the frozen test price table and a real SDK pipeline around the processor."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costattr.pricing.table import PriceTable, load_pricing
from otel_costattr.sdk.processor import CostSpanProcessor

TEST_PRICES = Path(__file__).parent / "data" / "test_prices.toml"


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one chDB data directory of the session: chDB runs one engine per process, so every
    ClickHouse test module shares it and isolates itself by database (``?database=``)."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def table() -> PriceTable:
    """acme-large, acme-think, acme-mini: figures chosen so arithmetic can be checked by hand."""
    return load_pricing([TEST_PRICES], bundled=False, use_env=False)


@dataclass
class Pipeline:
    provider: TracerProvider
    tracer: Tracer
    exporter: InMemorySpanExporter
    processor: CostSpanProcessor

    def spans(self, name: str | None = None) -> list:
        found = self.exporter.get_finished_spans()
        return [s for s in found if name is None or s.name == name]


def _pipeline(processor: CostSpanProcessor):
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(processor)
    yield Pipeline(provider, provider.get_tracer("test"), exporter, processor)
    provider.shutdown()


@pytest.fixture
def pipeline(table: PriceTable):
    """A TracerProvider with an in-memory exporter registered *before* the cost processor."""
    yield from _pipeline(CostSpanProcessor(table))


@pytest.fixture
def deduping(table: PriceTable):
    """`pipeline` with the processor's duplicate check on (dedupe_response_ids=True)."""
    yield from _pipeline(CostSpanProcessor(table, dedupe_response_ids=True))


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 recording what it is sent (tests/alerts_helpers.py)."""
    from alerts_helpers import Receiver

    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def workload(tmp_path: Path, table: PriceTable):
    """Runs written at chosen times through the real SDK into a DuckDB file (alerts tests)."""
    from alerts_helpers import Workload

    w = Workload(tmp_path / "spans.duckdb", table)
    yield w
    w.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that run inside a producer virtualenv (built on first use) are slow too."""
    for item in items:
        if "venv_bin" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
