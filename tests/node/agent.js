// A small agent run sent with the OpenTelemetry JS SDK over OTLP/HTTP (JSON), as a TypeScript
// front agent would: an agent span, two model calls, a tool call. No cost on the spans: the
// server prices them. Usage: OTLP_URL=http://127.0.0.1:4318/v1/traces [OTLP_TOKEN=t] node agent.js
"use strict";
const { trace, context } = require("@opentelemetry/api");
const { resourceFromAttributes } = require("@opentelemetry/resources");
const { NodeTracerProvider, SimpleSpanProcessor } = require("@opentelemetry/sdk-trace-node");
const { OTLPTraceExporter } = require("@opentelemetry/exporter-trace-otlp-http");

const headers = process.env.OTLP_TOKEN ? { Authorization: `Bearer ${process.env.OTLP_TOKEN}` } : {};
const exporter = new OTLPTraceExporter({ url: process.env.OTLP_URL, headers });
const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ "service.name": "ts-front-agent" }),
  spanProcessors: [new SimpleSpanProcessor(exporter)],
});
const tracer = provider.getTracer("node-test");

function call(parentCtx, name, input, output) {
  const span = tracer.startSpan(name, {
    kind: 2, // CLIENT
    attributes: {
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": "acme",
      "gen_ai.request.model": "acme-large",
      "gen_ai.usage.input_tokens": input,
      "gen_ai.usage.output_tokens": output,
    },
  }, parentCtx);
  span.end();
}

const agent = tracer.startSpan("invoke_agent front", {
  attributes: { "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "front", "app.feature": "checkout-help" },
});
const ctx = trace.setSpan(context.active(), agent);
call(ctx, "chat acme-large", 12000, 3400);
const tool = tracer.startSpan("execute_tool lookup", { attributes: { "gen_ai.operation.name": "execute_tool" } }, ctx);
tool.end();
call(ctx, "chat acme-large", 25000, 800);
agent.end();
console.log(agent.spanContext().traceId);
provider.shutdown().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
