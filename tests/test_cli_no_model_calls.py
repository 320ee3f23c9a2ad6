"""Spans stored but none a model call: the CLI says so instead of a bare "(no rows)" (issue 17:
an instrumentation that failed to import left a new user with empty rollups and no clue)."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otel_costattr import DuckDBSpanExporter
from otel_costattr.cli import main


def store(tmp_path, *attributes):
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    tracer = provider.get_tracer("test")
    spans = []
    for attrs in attributes:
        span = tracer.start_span("span", attributes=attrs)
        span.end()
        spans.append(span)
    db = tmp_path / "s.duckdb"
    exporter = DuckDBSpanExporter(db)
    exporter.export(spans)
    exporter.shutdown()
    return str(db)


def test_spans_without_model_calls_are_explained(tmp_path, capsys):
    db = store(tmp_path, {"http.route": "/a"}, {"http.route": "/b"}, {})
    for argv in (["rollup", "per-feature", "--db", db], ["runs", "--db", db]):
        assert main(argv) == 0
        out, err = capsys.readouterr()
        assert out == "(no rows)\n"
        assert err == "No rows: 3 spans stored, 0 model calls: is a GenAI instrumentation loaded?\n"


def test_no_hint_when_there_are_model_calls_or_no_spans(tmp_path, capsys):
    call = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 1}  # fmt: skip
    db = store(tmp_path, call, {"http.route": "/a"})
    assert main(["rollup", "per-feature", "--db", db, "--feature", "nope"]) == 0
    out, err = capsys.readouterr()
    assert out == "(no rows)\n" and "instrumentation" not in err
    (tmp_path / "empty").mkdir()
    empty = store(tmp_path / "empty")
    assert main(["rollup", "per-feature", "--db", empty]) == 0
    assert capsys.readouterr() == ("(no rows)\n", "No rows: the store holds no spans yet\n")


def test_a_total_row_of_zeros_is_explained_too(tmp_path, capsys):
    # stats and overview always answer a total row: of zeros, it is no answer either
    db = store(tmp_path, {"http.route": "/a"})
    for name in ("stats", "overview"):
        assert main(["rollup", name, "--db", db]) == 0
        out, err = capsys.readouterr()
        assert " 0 " in out
        assert err == "No calls: 1 span stored, 0 model calls: is a GenAI instrumentation loaded?\n"
