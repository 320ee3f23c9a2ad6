"""A fake LLM HTTP endpoint on 127.0.0.1: canned OpenAI, Anthropic and Bedrock answers.

Standard library only, so it runs in the test process and in any producer venv. It serves

- ``POST /v1/chat/completions`` (OpenAI chat completions): JSON, or server-sent events when
  the request says ``"stream": true``. Like the real API, a stream carries usage only when
  the request asks for it with ``stream_options.include_usage``.
- ``POST /v1/messages`` (Anthropic messages): JSON, or the server-sent event sequence
  message_start / content_block_* / message_delta / message_stop. As the real API does,
  message_start carries ``output_tokens: 1`` and message_delta the final (cumulative) count.
- ``POST /model/{modelId}/converse`` (Amazon Bedrock Converse, what boto3's
  ``bedrock-runtime`` client calls): JSON, the usage chosen by the request's prompt; and
  ``/converse-stream``: the same answer as AWS event-stream messages (messageStart,
  contentBlockDelta..., contentBlockStop, messageStop, then metadata with the usage).

Usage is fixed (see OPENAI_USAGE, ANTHROPIC_USAGE and BEDROCK_USAGE) so tests can price it
by hand.

Run it on its own (``python fake_llm.py``) to point an example at it by hand: it prints the
base URLs and serves until interrupted.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OPENAI_REQUEST_MODEL = "gpt-4o-mini"
OPENAI_RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
ANTHROPIC_REQUEST_MODEL = "claude-sonnet-4-5"
ANTHROPIC_RESPONSE_MODEL = "claude-sonnet-4-5-20250929"

# OpenAI: prompt_tokens includes cached_tokens; completion_tokens includes reasoning_tokens.
OPENAI_USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 1000, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 200,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
# Anthropic: input_tokens is the uncached remainder; the cache counts come on top.
ANTHROPIC_USAGE = {
    "input_tokens": 50,
    "cache_creation_input_tokens": 150,
    "cache_read_input_tokens": 1000,
    "output_tokens": 300,
    "service_tier": "standard",
}

# Bedrock Converse: inputTokens is the uncached remainder, as Anthropic's input_tokens; the
# cache counts come on top, and totalTokens sums all four. One usage per prompt (the request's
# last text block), so that one run can make a call that writes the prompt cache and one that
# reads it; any other prompt is refused (400), never answered with a guess.
BEDROCK_USAGE = {
    # A session's first call: a 2000-token prefix written to the cache, 3000 fresh tokens after it.
    "Write the cache.": {"inputTokens": 3000, "outputTokens": 300, "cacheReadInputTokens": 0,
                         "cacheWriteInputTokens": 2000},
    # A cached 1024-token system prompt, then 5000 fresh tokens (retrieved documents, say).
    "Read the cache.": {"inputTokens": 5000, "outputTokens": 300, "cacheReadInputTokens": 1024,
                        "cacheWriteInputTokens": 0},
}  # fmt: skip

ANSWER = ["The answer", " is", " 42."]
# Every response gets its own id, as from the real APIs (the processor prices a response id
# once: two spans with one id are two instrumentations of one call).
_response_number = itertools.count(1)


def _response_id(prefix: str) -> str:
    return f"{prefix}{next(_response_number):08d}"


MAX_BODY = 1 << 20  # requests in the tests are tiny; refuse anything absurd


def _openai_model(body: dict[str, Any]) -> Any:
    """The model a response names: OpenAI's snapshot for its request model, as the real API
    answers; any other request model as asked (a Groq or Together model through the OpenAI
    client: those hosts answer with the id they were asked for)."""
    model = body.get("model")
    return OPENAI_RESPONSE_MODEL if model == OPENAI_REQUEST_MODEL else model


def _openai_chunk(rid: str, index: int, delta: dict[str, Any], finish: str | None, usage: bool,
                  model: Any = OPENAI_RESPONSE_MODEL) -> dict:  # fmt: skip
    chunk: dict[str, Any] = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": model,
        "system_fingerprint": "fp_fake",
        "service_tier": "default",
        "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage:
        chunk["usage"] = None  # the real API sends null on every chunk but the last
    return chunk


def openai_events(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The chunks of a streamed chat completion, usage last when it was asked for."""
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    rid, model = _response_id("chatcmpl-fake"), _openai_model(body)
    chunks = [_openai_chunk(rid, 0, {"role": "assistant", "content": "", "refusal": None}, None,
                            include_usage, model)]  # fmt: skip
    chunks += [_openai_chunk(rid, 0, {"content": text}, None, include_usage, model) for text in ANSWER]
    chunks.append(_openai_chunk(rid, 0, {}, "stop", include_usage, model))
    if include_usage:
        last = _openai_chunk(rid, 0, {}, None, False, model)
        last["choices"] = []
        last["usage"] = OPENAI_USAGE
        chunks.append(last)
    return chunks


def openai_completion(body: dict[str, Any]) -> dict[str, Any]:
    """A non-streamed chat completion."""
    return {
        "id": _response_id("chatcmpl-fake"),
        "object": "chat.completion",
        "created": 1767225600,
        "model": _openai_model(body),
        "system_fingerprint": "fp_fake",
        "service_tier": "default",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(ANSWER), "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": OPENAI_USAGE,
    }


def anthropic_message(body: dict[str, Any]) -> dict[str, Any]:
    """A non-streamed Anthropic message."""
    return {
        "id": _response_id("msg_fake"),
        "type": "message",
        "role": "assistant",
        "model": ANTHROPIC_RESPONSE_MODEL,
        "content": [{"type": "text", "text": "".join(ANSWER)}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": ANTHROPIC_USAGE,
    }


def anthropic_events(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The (event, data) sequence of a streamed Anthropic message."""
    start_usage = dict(ANTHROPIC_USAGE, output_tokens=1)
    message = dict(anthropic_message(body), content=[], stop_reason=None, usage=start_usage)
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": message}),
        ("content_block_start",
         {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
    ]  # fmt: skip
    for text in ANSWER:
        delta = {"type": "text_delta", "text": text}
        events.append(("content_block_delta",
                       {"type": "content_block_delta", "index": 0, "delta": delta}))  # fmt: skip
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta",
         {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
          "usage": {"output_tokens": ANTHROPIC_USAGE["output_tokens"]}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    return events


def bedrock_prompt(body: dict[str, Any]) -> Any:
    """The text of a Converse request's last message's last text block, or None."""
    try:
        blocks = body["messages"][-1]["content"]
        return [block["text"] for block in blocks if "text" in block][-1]
    except (KeyError, IndexError, TypeError):
        return None


def bedrock_converse(body: dict[str, Any]) -> dict[str, Any] | None:
    """A Converse response, or None for a prompt BEDROCK_USAGE does not know."""
    usage = BEDROCK_USAGE.get(bedrock_prompt(body))
    if usage is None:
        return None
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": "".join(ANSWER)}]}},
        "stopReason": "end_turn",
        "usage": dict(usage, totalTokens=sum(usage.values())),
        "metrics": {"latencyMs": 1},
    }


def bedrock_stream_events(answer: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """A Converse answer as ConverseStream's events, the usage last (in ``metadata``)."""
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    events += [("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": part}}) for part in ANSWER]
    events += [("contentBlockStop", {"contentBlockIndex": 0}), ("messageStop", {"stopReason": "end_turn"})]
    events.append(("metadata", {"usage": answer["usage"], "metrics": answer["metrics"]}))
    return events


def eventstream_message(event_type: str, payload: dict[str, Any]) -> bytes:
    """One AWS event-stream message (``application/vnd.amazon.eventstream``): a prelude of
    total and headers length with its CRC32, string headers, the JSON payload, a CRC32 of all."""
    headers = b""
    for name, value in ((":event-type", event_type), (":content-type", "application/json"),
                        (":message-type", "event")):  # fmt: skip
        raw = value.encode()
        headers += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(raw)) + raw
    body = json.dumps(payload).encode()
    prelude = struct.pack(">II", 12 + len(headers) + len(body) + 4, len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + body
    return message + struct.pack(">I", zlib.crc32(message))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # keep test output clean

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._json(413, {"error": {"message": "request too large"}})
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._json(400, {"error": {"message": "body is not JSON"}})
            return
        path = self.path.split("?", 1)[0]
        stream = bool(body.get("stream"))
        if path.endswith("/chat/completions"):
            if stream:
                self._sse([(None, chunk) for chunk in openai_events(body)], done=True)
            else:
                self._json(200, openai_completion(body))
        elif path.endswith("/messages"):
            if stream:
                self._sse(anthropic_events(body), done=False)
            else:
                self._json(200, anthropic_message(body))
        elif path.startswith("/model/") and path.endswith(("/converse", "/converse-stream")):
            answer = bedrock_converse(body)
            request_id = {"x-amzn-RequestId": _response_id("fake-bedrock-")}
            if answer is None:
                # Bedrock names the error's type in a header; botocore raises it by that name.
                error = {"message": f"fake LLM: no usage for prompt {bedrock_prompt(body)!r}"}
                self._json(400, error, {**request_id, "x-amzn-ErrorType": "ValidationException"})
            elif path.endswith("/converse-stream"):
                events = b"".join(eventstream_message(*event) for event in bedrock_stream_events(answer))
                self._send(200, "application/vnd.amazon.eventstream", events, request_id)
            else:
                self._json(200, answer, request_id)
        else:
            self._json(404, {"error": {"message": f"no such endpoint: {path}"}})

    def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, "application/json", json.dumps(payload).encode(), headers)

    def _send(self, status: int, kind: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, events: list[tuple[str | None, dict[str, Any]]], *, done: bool) -> None:
        lines = []
        for name, data in events:
            if name:
                lines.append(f"event: {name}\n")
            lines.append(f"data: {json.dumps(data)}\n\n")
        if done:
            lines.append("data: [DONE]\n\n")
        payload = "".join(lines).encode()
        # One write with a Content-Length: SSE clients parse it the same as a chunked
        # stream, and the connection stays reusable.
        self._send(200, "text/event-stream", payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)


class BackgroundServer:
    """An HTTP server on 127.0.0.1 (a free port), served from a background thread while used
    as a context manager. Shared by the fake LLM and the OTLP receiver."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):  # returns the subclass instance
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class FakeLLM(BackgroundServer):
    """The fake endpoint, served from a background thread; use as a context manager."""

    def __init__(self) -> None:
        super().__init__(_Server())

    @property
    def openai_base_url(self) -> str:
        """What OPENAI_BASE_URL should be (the SDK appends /chat/completions)."""
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """What ANTHROPIC_BASE_URL should be (the SDK appends /v1/messages)."""
        return self.url

    def env(self) -> dict[str, str]:
        """Environment that points the client SDKs here with dummy keys: OpenAI's, Anthropic's
        and boto3's (its bedrock-runtime client; no AWS config or credentials file is read)."""
        return {
            "OPENAI_BASE_URL": self.openai_base_url,
            "OPENAI_API_KEY": "sk-fake",
            "ANTHROPIC_BASE_URL": self.anthropic_base_url,
            "ANTHROPIC_API_KEY": "sk-ant-fake",
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": self.url,
            "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKEFAKE",
            "AWS_SECRET_ACCESS_KEY": "fake",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }


if __name__ == "__main__":
    with FakeLLM() as fake:
        for key, value in fake.env().items():
            print(f"export {key}={value}")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
