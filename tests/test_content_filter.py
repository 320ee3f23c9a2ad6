"""No prompt is stored by default: message content in every producer's spelling stays out of
DuckDB (span attributes, events, links, the status), what a cost needs stays in, and what
was left out is counted. Real TracerProvider, real DuckDBSpanExporter, real DuckDB files."""

from __future__ import annotations

import contextlib
import json
import string
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from producers.fake_llm import FakeLLM
from test_mapping import CHAT
from test_producers import DRIVER, run_in_venv

from otel_costattr import semconv
from otel_costattr.cost.reported import REPORTED_COST_KEYS
from otel_costattr.spans import content
from otel_costattr.spans.rows import _TEXT_KEYS, SpanMapper
from otel_costattr.store import database as store
from otel_costattr.store.exporter import DuckDBSpanExporter

SENTINEL = "SECRET-PROMPT-123"
DROPPED = content.CONTENT_DROPPED
USER = {"app.feature": "search", "user.id": "u-7", "app.tenant": "acme-corp", "http.route": "/ask"}
CALL = {
    **CHAT,  # model, provider, operation, tokens
    "gen_ai.agent.name": "planner",
    "gen_ai.conversation.id": "conv-1",
    "gen_ai.request.temperature": 0.2,
    **USER,
}
# What the typed columns of a row of CALL hold (input includes the cache reads).
COLUMNS = {
    "operation": "chat",
    "provider": "acme",
    "request_model": "acme-large",
    "response_model": "acme-large-20260101",
    "input_tokens": 1200,
    "output_tokens": 300,
    "cache_read_tokens": 1000,
    "agent_name": "planner",
    "conversation_id": "conv-1",
    "feature": "search",
    "cost_status": "priced",
}
T0 = 1_782_900_000_000_000_000  # 2026-07-01, inside the test table's second price period

# producer -> span attribute keys that carry what a model read or wrote.
SPAN_CONTENT = {
    "otel-genai": [
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.tool.definitions",
        "gen_ai.tool.description",
        "gen_ai.agent.description",
        "gen_ai.request.stop_sequences",
        "gen_ai.prompt",
        "gen_ai.completion",
    ],
    "openinference": [
        "llm.prompts",
        "llm.prompts.0.prompt.text",
        "llm.prompt_template.template",
        "llm.prompt_template.variables",
        "llm.choices.0.completion.text",
        "llm.input_messages.0.message.content",
        "llm.output_messages.0.message.contents.0.message_content.text",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments",
        "llm.invocation_parameters",
        "llm.tools.0.tool.json_schema",
        "llm.function_call",
        "input.value",
        "output.value",
        "retrieval.documents.0.document.content",
        "retrieval.documents.0.document.metadata",
        "embedding.embeddings.0.embedding.text",
        "embedding.text",
        "reranker.query",
        "reranker.input_documents.0.document.content",
        "reranker.output_documents.0.document.content",
        "document.content",
        "message.content",
        "message_content.text",
        "tool_call.function.arguments",
        "tool.description",
        "tool.parameters",
        "audio.transcript",
        "image.url",
    ],
    "openllmetry": [
        "traceloop.entity.input",
        "traceloop.entity.output",
        "traceloop.prompt.template",
        "traceloop.prompt.template_variables.city",
        "gen_ai.prompt.0.content",
        "gen_ai.completion.0.content",
        "gen_ai.completion.0.tool_calls.0.arguments",
        "llm.request.functions.0.arguments",
        "llm.request.functions.0.description",
    ],
    "vercel-ai": [
        "ai.prompt",
        "ai.prompt.messages",
        "ai.prompt.tools",
        "ai.response.text",
        "ai.response.toolCalls",
        "ai.response.object",
        "ai.response.reasoning",
        "ai.response.providerMetadata",
        "ai.toolCall.args",
        "ai.toolCall.result",
        "ai.value",
        "ai.values",
        "ai.schema.description",
    ],
    "langfuse": [
        "langfuse.observation.input",
        "langfuse.observation.output",
        "langfuse.trace.input",
        "langfuse.trace.output",
        "langfuse.observation.status_message",
    ],
    "mlflow": [
        "mlflow.spanInputs",
        "mlflow.spanOutputs",
        "mlflow.traceRequest",
        "mlflow.traceResponse",
        "mlflow.chat.messages",
        "mlflow.chat.tools",
    ],
    # Other tracing vendors' SDKs beside ours: each stored whole until a review.
    "laminar": ["lmnr.span.input", "lmnr.span.output"],
    "braintrust": ["braintrust.input", "braintrust.output", "braintrust.input_json", "braintrust.expected"],
    # metadata bridges fill with transcripts and chat context (a review)
    "langsmith": ["langsmith.metadata.lk_user_transcript", "langsmith.metadata.lk_chat_ctx"],
    "laminar-properties": ["lmnr.association.properties.metadata.user_input"],
    "agentops": ["agentops.entity.input", "agentops.entity.output"],
    "weave": ["weave.inputs", "weave.outputs"],
    "openlit": ["openlit.prompt"],
    "haystack": ["haystack.component.input", "haystack.component.output"],
    "livekit": ["lk.chat_ctx", "lk.user_transcript", "lk.response.text", "lk.function_tool.arguments"],
    "pydantic-ai/logfire": [
        "all_messages_events",
        "final_result",
        "events",
        "prompt",
        "tools",
        "model_request_parameters",
        "tool_arguments",
        "tool_response",
        "pydantic_ai.all_messages",
        "logfire.msg",
        "request_data",
        "response_data",
        "all_messages",  # pydantic-ai before 0.1
        "agent",
        "response",
        "result",
        "tool_responses",
    ],
    "openllmetry-vector-db": [
        "db.query.result.documents.0",
        "db.chromadb.query.result.documents",
        "db.pinecone.query.result.0.metadata",
    ],
    "google-adk": [
        "gcp.vertex.agent.llm_request",
        "gcp.vertex.agent.llm_response",
        "gcp.vertex.agent.tool_call_args",
    ],
    "anthropic-sdk": ["anthropic.tool_result.content"],  # its tool runner's spans
    "exception-as-attributes": ["exception.message", "exception.stacktrace"],
    "hand-written": ["completion", "messages"],  # beside "prompt", which pydantic-ai writes
}
# producer -> (event name, event attribute key): the older GenAI event form and its kin.
EVENT_CONTENT = {
    "otel-genai-events": [
        ("gen_ai.user.message", "content"),
        ("gen_ai.system.message", "content"),
        ("gen_ai.assistant.message", "content"),
        ("gen_ai.assistant.message", "tool_calls"),
        ("gen_ai.tool.message", "content"),
        ("gen_ai.choice", "message"),
        ("gen_ai.client.inference.operation.details", "gen_ai.input.messages"),
    ],
    "openlit": [
        ("gen_ai.content.prompt", "gen_ai.prompt"),
        ("gen_ai.content.completion", "gen_ai.completion"),
    ],
    "vercel-ai": [("ai.stream.firstChunk", "ai.response.text")],
    "openllmetry-vector-db": [("db.query.result", "db.query.result.documents.0")],
    "any": [("exception", "exception.message"), ("exception", "exception.stacktrace")],
}
LINK_CONTENT = {"any": ["input.value", "gen_ai.input.messages"]}

CASES = [
    *(
        pytest.param("span", None, key, id=f"{who}:{key}")
        for who, keys in SPAN_CONTENT.items()
        for key in keys
    ),
    *(
        pytest.param("event", name, key, id=f"{who}:{name}:{key}")
        for who, pairs in EVENT_CONTENT.items()
        for name, key in pairs
    ),
    *(
        pytest.param("link", None, key, id=f"{who}:link:{key}")
        for who, keys in LINK_CONTENT.items()
        for key in keys
    ),
]


def case_name(where: str, event: str | None, key: str) -> str:
    return f"{where} {event or '-'} {key}"


def all_rows(path: Path) -> list[dict]:
    """Every stored span of ``path`` as {column: value}."""
    con = store.connect(path, read_only=True)
    try:
        cur = con.execute("SELECT * FROM spans")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def rows(path: Path) -> dict[str, dict]:
    """`all_rows` by span name (for files whose span names are unique)."""
    return {row["name"]: row for row in all_rows(path)}


def row_text(row: dict) -> str:
    return " ".join(str(value) for value in row.values())


def export_one(tmp_path: Path, table, attrs: dict, *, events=(), links=(), raises=None, status=None) -> dict:
    """One span through a real provider and exporter; its stored row."""
    path = tmp_path / "one.duckdb"
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(DuckDBSpanExporter(path, pricing=table)))
    tracer = provider.get_tracer("test.content")
    with (
        contextlib.suppress(*[type(raises)] if raises else []),
        tracer.start_as_current_span("one", attributes=attrs, links=links, kind=SpanKind.CLIENT) as span,
    ):
        for name, event_attrs in events:
            span.add_event(name, event_attrs)
        if status is not None:
            span.set_status(Status(StatusCode.ERROR, status))
        if raises is not None:
            raise raises
    provider.shutdown()
    (row,) = rows(path).values()
    return row


@pytest.fixture(scope="module")
def landed(tmp_path_factory, table) -> dict[bool, dict[str, dict]]:
    """Every case as one span, exported at once to two DuckDB files: capture_content False
    and True. -> {capture: {span name: row}}."""
    folder = tmp_path_factory.mktemp("content")
    provider = TracerProvider(shutdown_on_exit=False)
    paths = {capture: folder / f"capture-{capture}.duckdb" for capture in (False, True)}
    for capture, path in paths.items():
        exporter = DuckDBSpanExporter(path, pricing=table, capture_content=capture)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("test.content")
    target = tracer.start_span("link target", start_time=T0)
    target.end(end_time=T0 + 1)
    for param in CASES:
        where, event, key = param.values
        links = (
            [Link(target.get_span_context(), {key: SENTINEL, "app.why": "retry"})] if where == "link" else ()
        )
        attrs = {**CALL, key: SENTINEL} if where == "span" else CALL
        span = tracer.start_span(case_name(where, event, key), attributes=attrs, links=links, start_time=T0)
        if where == "event":
            span.add_event(event, {key: SENTINEL, "gen_ai.system": "acme"}, timestamp=T0)
        span.end(end_time=T0 + 1000)
    provider.shutdown()
    return {capture: rows(path) for capture, path in paths.items()}


@pytest.mark.parametrize(("where", "event", "key"), CASES)
def test_content_is_left_out_unless_captured(landed, where, event, key):
    row = landed[False][case_name(where, event, key)]
    assert SENTINEL not in row_text(row)
    attrs = json.loads(row["attributes"])
    assert attrs[DROPPED] == 1  # exactly the one attribute that held content
    # The application's own attributes and what a cost needs stay, in the JSON and the columns.
    assert {k: attrs.get(k) for k in CALL} == CALL
    assert {k: row[k] for k in COLUMNS} == COLUMNS
    if where == "event":
        (stored,) = json.loads(row["events"])
        assert (stored["name"], stored["attributes"]) == (event, {"gen_ai.system": "acme"})
    if where == "link":
        (stored,) = json.loads(row["links"])
        assert stored["attributes"] == {"app.why": "retry"}
    # The control: the same span with capture_content=True stores the text where it was.
    captured = landed[True][case_name(where, event, key)]
    assert SENTINEL in captured[{"span": "attributes", "event": "events", "link": "links"}[where]]
    assert DROPPED not in json.loads(captured["attributes"])


def test_safe_keys_of_every_namespace_are_stored(tmp_path, table):
    """What producers write next to the content, and a cost or a rollup needs, lands whole."""
    safe = {
        "gen_ai.response.id": "resp-1",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.total_tokens": 1500,
        "gen_ai.usage.audio.input_tokens": 7,  # an open-ended family: kept as a number
        "gen_ai.request.max_tokens": 1024,
        "gen_ai.tool.call.id": "call-1",
        "llm.token_count.prompt_details.audio": 0,
        "llm.model_name": "acme-large-20260101",
        "openinference.span.kind": "LLM",
        "traceloop.span.kind": "workflow",
        "traceloop.workflow.name": "answer",
        "traceloop.entity.name": "answer",
        "traceloop.association.properties.customer": "acme-corp",
        "ai.model.id": "acme-large",
        "ai.usage.promptTokens": 1200,
        "ai.telemetry.functionId": "answer",
        "ai.telemetry.metadata.plan": "pro",
        "langfuse.observation.type": "generation",
        "langfuse.observation.metadata.region": "eu",
        "mlflow.spanType": '"LLM"',
        "logfire.span_type": "span",
        "logfire.msg_template": "chat {model}",
        # what the application sets through Laminar's and LangSmith's SDKs (a review)
        "lmnr.association.properties.user_id": "u-7",
        "langsmith.trace.session_id": "s-1",
    }
    text_in_number_family = {"gen_ai.usage.details": SENTINEL, "llm.token_count.note": SENTINEL}
    stored = export_one(tmp_path, table, {**CALL, **safe, **text_in_number_family})
    attrs = json.loads(stored["attributes"])
    assert {k: attrs.get(k) for k in safe} == {
        k: list(v) if isinstance(v, tuple) else v for k, v in safe.items()
    }
    assert SENTINEL not in row_text(stored)
    assert attrs[DROPPED] == 2


def test_the_count_covers_span_events_and_links_exactly(tmp_path, table):
    target = TracerProvider(shutdown_on_exit=False).get_tracer("t").start_span("target")
    attrs = {**CALL, "gen_ai.input.messages": SENTINEL, "ai.prompt": SENTINEL, "final_result": SENTINEL}
    events = [
        ("gen_ai.user.message", {"content": SENTINEL, "role": "user", "gen_ai.system": "acme"}),  # 2
        ("gen_ai.choice", {"message": SENTINEL, "index": 0, "finish_reason": "stop"}),  # 3
        ("retry", {"attempt": 2, "input.value": SENTINEL}),  # 1: a plain event keeps plain keys
    ]
    links = [Link(target.get_span_context(), {"langfuse.trace.input": SENTINEL, "app.why": "x"})]  # 1
    row = export_one(tmp_path, table, attrs, events=events, links=links)
    assert SENTINEL not in row_text(row)
    assert json.loads(row["attributes"])[DROPPED] == 3 + 2 + 3 + 1 + 1
    assert [e["attributes"] for e in json.loads(row["events"])] == [
        {"gen_ai.system": "acme"},
        {},
        {"attempt": 2},
    ]


def test_an_exception_quoting_model_output_is_stored_as_its_type(tmp_path, table):
    """The SDK records an exception as an event (message, stack trace) and as the status
    description: both quote what the code was handling, model output included."""
    row = export_one(tmp_path, table, CALL, raises=ValueError(f"not JSON: {SENTINEL}"))
    assert SENTINEL not in row_text(row)
    assert (row["status_code"], row["status_message"]) == ("ERROR", "ValueError")
    (event,) = json.loads(row["events"])
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"] == "ValueError"
    assert json.loads(row["attributes"])[DROPPED] == 2


def test_an_error_status_without_an_exception_event_keeps_only_the_error_type(tmp_path, table):
    """openai-v2 sets the status to str(error) and error.type, recording no event: a
    validation error's message quotes the model output. A plain span keeps its description."""
    quoted = f"1 validation error: input_value='{SENTINEL}'"
    row = export_one(tmp_path, table, {**CALL, "error.type": "ValidationError"}, status=quoted)
    assert (row["status_code"], row["status_message"]) == ("ERROR", "ValidationError")
    assert SENTINEL not in row_text(row)
    (tmp_path / "plain").mkdir()
    plain = export_one(tmp_path / "plain", table, {"app.feature": "f"}, status="disk full on /data")
    assert plain["status_message"] == "disk full on /data"


def test_the_mapper_keeps_a_running_total(table):
    provider = TracerProvider(shutdown_on_exit=False)
    tracer = provider.get_tracer("t")
    spans = []
    for n in range(3):
        span = tracer.start_span(
            "s", attributes={**CALL, **{f"llm.input_messages.{i}.message.content": "x" for i in range(n)}}
        )
        span.end()
        spans.append(span)
    mapper = SpanMapper(table)
    mapper.rows(spans)
    mapper.rows(spans)
    assert mapper.content_dropped == 2 * (0 + 1 + 2)
    captured = SpanMapper(table, capture_content=True)
    captured.rows(spans)
    assert captured.content_dropped == 0


def test_every_spelling_the_library_reads_is_kept():
    """What lands in a typed column or prices a call is also kept in the attributes JSON."""
    read = {*semconv.CALL_KEYS, *semconv.GENAI_KEYS, *_TEXT_KEYS, semconv.COST, semconv.RESPONSE_ID}
    read |= {semconv.AGENT_STEP, semconv.COST_STATUS, semconv.PRICING_VERSION, semconv.PRICED_MODEL}
    # a provider's reported cost and what it is in (a review: the currency was dropped, and
    # a stored "gen_ai.usage.cost.amount": 5 read as dollars)
    read |= {*REPORTED_COST_KEYS, semconv.PROPOSED_COST_CURRENCY, semconv.PROPOSED_COST_SOURCE}
    assert {key: content.content_rule(key) for key in read} == dict.fromkeys(read, content.ContentRule.KEEP)


# -- property: under a GenAI namespace, only the allowlist reaches the store ---------------

_SUFFIX = st.text(string.ascii_letters + string.digits + "._", min_size=1, max_size=24)
_NAMESPACED = st.builds(lambda ns, rest: ns + rest, st.sampled_from(content.CONTENT_NAMESPACES), _SUFFIX)
_KEYS = st.one_of(
    _NAMESPACED,
    st.sampled_from(sorted(content.SAFE_KEYS)),
    st.sampled_from(sorted(content.CONTENT_KEYS)),
    st.builds(lambda ns, rest: ns + rest, st.sampled_from(content.NUMBER_PREFIXES), _SUFFIX),
)
_VALUES = st.one_of(st.just(SENTINEL), st.just(f"[{{'content': '{SENTINEL}'}}]"), st.integers(0, 10**6))
_GENAI_EVENTS = ["gen_ai.user.message", "gen_ai.choice", "gen_ai.content.completion", "ai.stream.finish"]


def allowed(key: str, value) -> bool:
    """The allowlist, restated from the data rather than through `content.content_rule`."""
    if key in content.SAFE_KEYS or key.startswith(content.SAFE_PREFIXES):
        return True
    if key in content.CONTENT_KEYS:
        return False
    return key.startswith(content.NUMBER_PREFIXES) and type(value) in (int, float, bool)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory, table):
    """One mapper (its key caches live across examples, as in an exporter) and one open
    connection to a real store: an exporter's force_flush per example would take minutes."""
    path = tmp_path_factory.mktemp("prop") / "prop.duckdb"
    store.connect(path).close()
    con = duckdb.connect(str(path))
    yield SpanMapper(table), TracerProvider(shutdown_on_exit=False).get_tracer("prop"), con
    con.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(_KEYS, _VALUES, max_size=6),
    st.sampled_from(_GENAI_EVENTS),
    st.dictionaries(
        st.one_of(_KEYS, st.sampled_from(["content", "message", "role", "body"])), _VALUES, max_size=4
    ),
    st.dictionaries(_KEYS, _VALUES, max_size=3),
)
def test_only_the_allowlist_of_a_genai_namespace_is_stored(
    shared_store, attrs, event, event_attrs, link_attrs
):
    mapper, tracer, con = shared_store
    target = tracer.start_span("target")
    span = tracer.start_span("prop", attributes=attrs, links=[Link(target.get_span_context(), link_attrs)])
    span.add_event(event, event_attrs)
    span.end()
    tbl = mapper.table([span])  # noqa: F841 - DuckDB reads the local by name
    # Hypothesis seeds `random`, and with it the SDK's span ids: one row at a time.
    con.execute("DELETE FROM spans")
    con.execute("INSERT INTO spans BY NAME SELECT * FROM tbl")
    cur = con.execute("SELECT * FROM spans")
    row = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
    stored = json.loads(row["attributes"])
    ((stored_event,), (stored_link,)) = json.loads(row["events"]), json.loads(row["links"])
    kept = {k for k, v in attrs.items() if allowed(k, v)}
    assert set(stored) - {DROPPED} == kept
    assert set(stored_event["attributes"]) == {k for k, v in event_attrs.items() if allowed(k, v)}
    assert set(stored_link["attributes"]) == {k for k, v in link_attrs.items() if allowed(k, v)}
    dropped = (len(attrs) - len(kept)) + (len(event_attrs) - len(stored_event["attributes"]))
    dropped += len(link_attrs) - len(stored_link["attributes"])
    assert stored.get(DROPPED, 0) == dropped
    # The sentinel is anywhere in the row only where an allowed key carried it.
    # (Each mapping on its own: merged, one's key would hide another's value.)
    carriers = [
        v for kept_from in (attrs, event_attrs, link_attrs) for k, v in kept_from.items() if allowed(k, v)
    ]
    if not any(SENTINEL in str(v) for v in carriers):
        assert SENTINEL not in row_text(row)


# -- real producers: what they store, and that no message text is part of it ---------------

# producer -> (venv, environment): the producers of tests/producers that capture message
# content (openai-v2 when asked; OpenLLMetry and OpenInference by default).
PRODUCERS = {
    "openai-v2": (
        "openai-v2",
        {
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT",
            "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        },
    ),
    "openllmetry-openai": ("openllmetry", {}),
    "openllmetry-anthropic": ("openllmetry", {}),
    "openinference-openai": ("openinference", {}),
}
MESSAGE_TEXT = ("What is the answer", "The answer")  # tests/producers: the prompt, the reply
_PRICED = {"costattr.model", "costattr.pricing_version", "costattr.status", "gen_ai.usage.cost"}
_CALL = {"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model",
         "gen_ai.response.id", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"}  # fmt: skip
# Every attribute key each producer's spans hold in the store, over the driver's cases: what
# they emit less the content. llm.invocation_parameters is gone too: a JSON of the request
# that can hold the Responses API's instructions or a response format the model reads.
STORED = {
    "openai-v2": {*_PRICED, *_CALL, DROPPED, "gen_ai.response.finish_reasons",
                  "openai.response.service_tier", "openai.response.system_fingerprint"},
    "openllmetry-openai": {*_PRICED, *_CALL, DROPPED, "gen_ai.response.finish_reasons",
                           "gen_ai.is_streaming", "gen_ai.openai.api_base",
                           "gen_ai.openai.response.system_fingerprint",
                           "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.reasoning_tokens",
                           "gen_ai.usage.total_tokens", "openai.response.service_tier"},
    "openllmetry-anthropic": {*_PRICED, *_CALL, DROPPED, "gen_ai.response.finish_reasons",
                              "gen_ai.is_streaming", "gen_ai.request.max_tokens",
                              "gen_ai.usage.cache_creation.input_tokens",
                              "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.total_tokens"},
    "openinference-openai": {*_PRICED, DROPPED, "input.mime_type", "output.mime_type", "llm.finish_reason",
                             "llm.model_name", "llm.system", "llm.token_count.completion",
                             "llm.token_count.completion_details.audio",
                             "llm.token_count.completion_details.reasoning", "llm.token_count.prompt",
                             "llm.token_count.prompt_details.audio",
                             "llm.token_count.prompt_details.cache_read", "llm.token_count.total",
                             "openinference.span.kind"},
}  # fmt: skip


@pytest.fixture(scope="module")
def fake():
    with FakeLLM() as server:
        yield server


def drive(producer: str, fake: FakeLLM, folder: Path, **env: str) -> list[dict]:
    """Run the producer's driver (real client SDK, real instrumentation, the cost processor
    and DuckDBSpanExporter wired as a user would) and return the rows of its calls."""
    venv, producer_env = PRODUCERS[producer]
    folder.mkdir()
    db = folder / "spans.duckdb"
    run_in_venv(venv, [str(DRIVER), producer, str(folder / "report.json"), "--db", str(db)], fake,
                **producer_env, **env)  # fmt: skip
    return [row for row in all_rows(db) if not row["name"].startswith("case ")]  # not its own roots


@pytest.mark.parametrize("producer", sorted(PRODUCERS))
def test_real_producers_store_no_message_text(producer, fake, tmp_path):
    landed = drive(producer, fake, tmp_path / "default")
    assert landed
    for row in landed:
        assert not [text for text in MESSAGE_TEXT if text in row_text(row)], row["name"]
    stored = [json.loads(row["attributes"]) for row in landed]
    assert set().union(*stored) == STORED[producer]
    assert all(attrs.get(DROPPED, 0) > 0 for attrs in stored)  # every call carried its messages
    # The control: with OTEL_COSTATTR_CAPTURE_CONTENT=true the text is there to be found.
    captured = drive(producer, fake, tmp_path / "captured", OTEL_COSTATTR_CAPTURE_CONTENT="true")
    text = " ".join(row_text(row) for row in captured)
    assert all(needle in text for needle in MESSAGE_TEXT)


def test_content_on_the_resource_is_left_out_unless_captured(tmp_path, table):
    """A resource can carry message text too (an SDK configured with gen_ai.prompt in
    OTEL_RESOURCE_ATTRIBUTES, a Collector's transform): the resource JSON follows the
    spans' rule; the service and the application's own resource attributes stay."""
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create(
        {
            "service.name": "svc",
            "deployment.environment": "prod",
            "gen_ai.prompt": SENTINEL,
            "completion": SENTINEL,
        }
    )
    stored = {}
    for capture in (False, True):
        path = tmp_path / f"resource-{capture}.duckdb"
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        provider.add_span_processor(
            BatchSpanProcessor(DuckDBSpanExporter(path, pricing=table, capture_content=capture))
        )
        provider.get_tracer("test.content").start_span("one", attributes=CALL, start_time=T0).end(
            end_time=T0 + 1
        )
        provider.shutdown()
        ((row,),) = [list(rows(path).values())]
        stored[capture] = row
    kept = json.loads(stored[False]["resource"])
    assert SENTINEL not in row_text(stored[False])
    assert kept["service.name"] == "svc" and kept["deployment.environment"] == "prod"
    assert json.loads(stored[True]["resource"])["gen_ai.prompt"] == SENTINEL  # the control
