#!/usr/bin/env bash
# Example 6: zero-code. An unmodified app, priced and landed in DuckDB from the environment:
#
#   pip install 'otel-costattr[otlp]' opentelemetry-distro opentelemetry-instrumentation-openai-v2 openai
#   OPENAI_API_KEY=sk-... bash examples/zero_code.sh costs.duckdb
#
# OTEL_COSTATTR_PROCESSOR=true  adds CostSpanProcessor (an opentelemetry_post_instrument hook)
# OTEL_TRACES_EXPORTER=duckdb   selects DuckDBSpanExporter (add ",otlp" to keep your backend)
# OTEL_COSTATTR_DUCKDB_PATH     the DuckDB file the exporter writes
# OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER=none: opentelemetry-distro defaults them to otlp
set -euo pipefail
OTEL_COSTATTR_PROCESSOR=true \
OTEL_TRACES_EXPORTER=duckdb \
OTEL_COSTATTR_DUCKDB_PATH="${1:-costs.duckdb}" \
OTEL_METRICS_EXPORTER=none \
OTEL_LOGS_EXPORTER=none \
opentelemetry-instrument python "$(dirname "$0")/zero_code_app.py"
