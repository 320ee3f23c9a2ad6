"""Which span attributes hold message content (`content_rule`): the row mapper
(``spans/rows.py``) keeps them out of the store unless asked.

Prompts, completions, tool arguments and results, retrieved documents: customer data, not
stored unless the user opts in (capture_content). Producers spell them in more ways than a
list of content keys can follow (indexed keys, each framework its own), so the rule is the
other way round: inside the namespaces GenAI producers write to, only keys known to be safe
are kept. The application's own attributes (app.*, user.id, http.*, ...) lie outside them.
"""

from __future__ import annotations

import enum
import functools
from typing import Any

from ..semconv import (
    AGENT_ID,
    AGENT_STEP,
    CALL_KEYS,
    COST,
    GENAI_KEYS,
    IDENTITY_KEYS,
    PROPOSED_COST_AMOUNT,
    PROPOSED_COST_CURRENCY,
    PROPOSED_COST_SOURCE,
    RESPONSE_ID,
    TOOL_NAME,
    WORKFLOW_NAME,
)

CONTENT_DROPPED = "costattr.content_dropped"  # what we stamp: attributes dropped from a span


class ContentRule(enum.Enum):
    """What the store does with an attribute when content capture is off."""

    KEEP = "keep"
    DROP = "drop"
    KEEP_NUMBER = "keep_number"  # kept when its value is a number: counts, costs, parameters


CONTENT_NAMESPACES = (
    "gen_ai.",
    "llm.",  # OpenInference and OpenLLMetry
    "openinference.",
    "traceloop.",  # OpenLLMetry
    "ai.",  # Vercel AI SDK
    # OpenInference's families without a common prefix.
    "input.",
    "output.",
    "retrieval.",
    "embedding.",
    "reranker.",
    "document.",
    "message.",
    "message_content.",
    "tool_call.",
    "tool.",
    "prompt.",
    "image.",
    "audio.",
    "video.",
    "langfuse.",
    "mlflow.",
    "logfire.",
    "pydantic_ai.",
    "gcp.vertex.agent.",  # Google ADK
    # Other tracing vendors' SDKs, which an application may run beside ours: each writes the
    # call's input and output under its own name (lmnr.span.input, braintrust.output,
    # agentops.entity.input, haystack.component.input...), stored whole until a review.
    "lmnr.",  # Laminar
    "braintrust.",
    "langsmith.",
    "agentops.",
    "weave.",  # Weights & Biases
    "openlit.",
    "haystack.",
    "lk.",  # LiveKit Agents: lk.chat_ctx, lk.user_transcript, lk.response.text (a review)
    # The anthropic SDK's own tracing puts messages under gen_ai.*, and a tool's result (its
    # tool runner, content_mode="content") under these; its usage and ids stay.
    "anthropic.tool_result.",
    "anthropic.tool_use.",
    # OpenLLMetry's vector-database instrumentations: retrieved documents are RAG context.
    "db.query.result",
    "db.chromadb.",
    "db.pinecone.",
    "db.qdrant.",
    "db.weaviate.",
    "db.milvus.",
    "db.lancedb.",
)

# Outside the namespaces, yet content: pydantic-ai / Logfire put messages, results and tool
# arguments under bare names. An exception's message and stack trace quote whatever the code
# was handling, a model's unparsable output included, and an exception raised by model output
# is recorded on every span it passes through, the application's own spans included.
CONTENT_KEYS = frozenset(
    {
        "all_messages_events",
        "all_messages",  # pydantic-ai before 0.1, on the run span
        "agent",  # ...the agent serialised, system prompts included
        "response",  # ...on the "model request" span
        "result",
        "tool_responses",  # ...on the "handle model response" span
        "events",
        "final_result",
        "prompt",
        "completion",  # hand-written spans name the pair so; "prompt" alone was not enough
        "messages",
        "tools",
        "tool_arguments",
        "tool_response",
        "model_request_parameters",
        "request_data",
        "response_data",
        "exception.message",
        "exception.stacktrace",
    }
)

# Inside the namespaces: what the store keeps. Every spelling semconv.py reads comes first,
# so that what lands in a typed column is also in the attributes JSON.
SAFE_KEYS = frozenset(
    {
        *CALL_KEYS,
        *GENAI_KEYS,
        *IDENTITY_KEYS,
        AGENT_ID,
        AGENT_STEP,
        WORKFLOW_NAME,
        TOOL_NAME,
        RESPONSE_ID,
        COST,
        # A cost the provider reported, what it is in and who worked it out (cost/reported.py;
        # the currency was dropped, and a stored "gen_ai.usage.cost.amount": 5 read as dollars)
        PROPOSED_COST_AMOUNT,
        PROPOSED_COST_CURRENCY,
        PROPOSED_COST_SOURCE,
        "llm.cost.total",
        # OpenTelemetry GenAI conventions: ids, names, enums and finish reasons.
        "gen_ai.response.finish_reasons",
        "gen_ai.output.type",
        "gen_ai.tool.call.id",
        "gen_ai.tool.type",
        "gen_ai.data_source.id",
        "gen_ai.token.type",
        "gen_ai.embeddings.dimension.count",
        "gen_ai.message.index",
        "gen_ai.agent.call.id",  # pydantic-ai
        "gen_ai.response.time_to_first_chunk",  # the anthropic SDK's own spans
        "gen_ai.openai.response.system_fingerprint",
        "gen_ai.openai.api_base",  # OpenLLMetry
        "gen_ai.is_streaming",  # OpenLLMetry
        # OpenInference
        "llm.request.model_name",
        "llm.response.model_name",
        "llm.finish_reason",
        "llm.prompt_template.version",
        "input.mime_type",
        "output.mime_type",
        "embedding.model_name",
        "reranker.model_name",
        "reranker.top_k",
        "document.id",
        "document.score",
        "tool.name",
        "tool.id",
        "tool_call.id",
        "tool_call.function.name",
        "prompt.vendor",
        "prompt.id",
        "prompt.url",
        # Laminar: the user and session ids an application sets (not its other properties)
        "lmnr.association.properties.user_id",
        "lmnr.association.properties.session_id",
        # OpenLLMetry
        "llm.request.type",
        "llm.is_streaming",
        "llm.user",
        "llm.response.finish_reason",
        "llm.response.stop_reason",
        "traceloop.span.kind",
        "traceloop.workflow.name",
        "traceloop.entity.name",
        "traceloop.entity.path",
        "traceloop.entity.version",
        "traceloop.prompt.key",
        "traceloop.prompt.version",
        "traceloop.prompt.version_name",
        "traceloop.prompt.version_hash",
        # Vercel AI SDK
        "ai.operationId",
        "ai.model.id",
        "ai.model.provider",
        "ai.telemetry.functionId",
        "ai.response.id",
        "ai.response.model",
        "ai.response.timestamp",
        "ai.response.finishReason",
        "ai.response.msToFirstChunk",
        "ai.response.msToFinish",
        "ai.response.avgCompletionTokensPerSecond",
        "ai.response.avgOutputTokensPerSecond",
        "ai.toolCall.id",
        "ai.toolCall.name",
        # Langfuse
        "langfuse.trace.name",
        "langfuse.trace.tags",
        "langfuse.trace.public",
        "langfuse.user.id",
        "langfuse.session.id",
        "langfuse.environment",
        "langfuse.release",
        "langfuse.version",
        "langfuse.observation.type",
        "langfuse.observation.level",
        "langfuse.observation.model.name",
        "langfuse.observation.usage_details",
        "langfuse.observation.cost_details",
        "langfuse.observation.completion_start_time",
        "langfuse.observation.prompt.name",
        "langfuse.observation.prompt.version",
        # MLflow (values are JSON-encoded: '"LLM"')
        "mlflow.spanType",
        "mlflow.traceRequestId",
        "mlflow.experimentId",
        "mlflow.spanFunctionName",
        "mlflow.chat.tokenUsage",
        "mlflow.message.format",
        # Logfire: not logfire.msg, which interpolates the call's arguments into the template.
        "logfire.span_type",
        "logfire.msg_template",
        "logfire.level_num",
        "logfire.tags",
        # Google ADK
        "gcp.vertex.agent.invocation_id",
        "gcp.vertex.agent.session_id",
        "gcp.vertex.agent.event_id",
    }
)
# Families the application fills itself (telemetry metadata, association properties): its
# own attributes under a producer's prefix, kept whatever their value.
SAFE_PREFIXES = (
    "ai.telemetry.metadata.",
    "traceloop.association.properties.",
    "langfuse.trace.metadata.",
    "langfuse.observation.metadata.",
    # LangSmith's session id and name. Not its metadata (langsmith.metadata.*) nor Laminar's
    # association properties: bridges copy transcripts and chat context there (a review).
    "langsmith.trace.session_",
)
# Open-ended families of counts, costs and numeric request parameters (new token kinds keep
# appearing): kept only as numbers, so no text can ride on a key that merely looks right.
NUMBER_PREFIXES = (
    "gen_ai.usage.",
    "gen_ai.aggregated_usage.",  # pydantic-ai
    "gen_ai.request.",
    "llm.token_count.",
    "llm.usage.",
    "llm.cost.",
    "ai.usage.",
    "ai.settings.",
)
NUMBER_TYPES = frozenset({int, float, bool})


@functools.lru_cache(maxsize=8192)  # bounded: keys are span data
def content_rule(key: str, strict: bool = False) -> ContentRule:
    """What happens to attribute ``key`` when content capture is off.

    ``strict``: the key belongs to an event named in a GenAI namespace (`is_genai_name`),
    whose attributes are message parts whatever their names (``content``, ``role``...): only
    safe keys are kept.
    """
    if key in SAFE_KEYS or key.startswith(SAFE_PREFIXES):
        return ContentRule.KEEP
    if key in CONTENT_KEYS:
        return ContentRule.DROP
    if key.startswith(NUMBER_PREFIXES):
        return ContentRule.KEEP_NUMBER
    if strict or key.startswith(CONTENT_NAMESPACES):
        return ContentRule.DROP
    return ContentRule.KEEP


def is_content(key: str, value: Any, strict: bool = False) -> bool:
    """True when attribute ``key`` with ``value`` is not stored unless content is captured."""
    rule = content_rule(key, strict)
    return rule is ContentRule.DROP or (rule is ContentRule.KEEP_NUMBER and type(value) not in NUMBER_TYPES)


def is_content_key(key: str) -> bool:
    """True for attributes never stored unless content is captured, whatever their value."""
    return content_rule(key) is ContentRule.DROP


@functools.lru_cache(maxsize=1024)
def is_genai_name(name: str) -> bool:
    """True for an event name in a GenAI namespace (``gen_ai.user.message``, ``gen_ai.choice``,
    ``gen_ai.content.prompt``, ``ai.stream.firstChunk``...): its attributes are judged
    strictly (`content_rule`)."""
    return type(name) is str and name.startswith(CONTENT_NAMESPACES)
