#!/usr/bin/env bash
# Example 6: zero-code. An unmodified app, priced and landed in DuckDB from the environment.
# From a clone (not on PyPI yet), in its venv, the versions tested together (README: Zero-code;
# tests/producers/requirements-openai-v2.txt says why the pins):
#
#   .venv/bin/pip install -e '.[otlp]' opentelemetry-distro 'opentelemetry-instrumentation-openai-v2==2.4b0' \
#     'opentelemetry-util-genai==1.1b0' 'openai==3.54.0' httpx
#   source .venv/bin/activate
#   OPENAI_API_KEY=sk-... bash examples/zero_code.sh costs.duckdb
#   # no key? start the tests' fake endpoint (127.0.0.1, canned answers), then the line above without it:
#   python -u tests/producers/fake_llm.py > fake.env & sleep 1; . ./fake.env
#
# OTEL_COSTATTR_PROCESSOR=true  adds CostSpanProcessor (an opentelemetry_post_instrument hook)
# OTEL_TRACES_EXPORTER=duckdb   selects DuckDBSpanExporter (add ",otlp" to keep your backend)
# OTEL_COSTATTR_DUCKDB_PATH     the DuckDB file the exporter writes
# OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER=none: opentelemetry-distro defaults them to otlp
set -euo pipefail
db="${1:-costs.duckdb}"
OTEL_COSTATTR_PROCESSOR=true \
OTEL_TRACES_EXPORTER=duckdb \
OTEL_COSTATTR_DUCKDB_PATH="$db" \
OTEL_METRICS_EXPORTER=none \
OTEL_LOGS_EXPORTER=none \
opentelemetry-instrument python "$(dirname "$0")/zero_code_app.py"
# An instrumentation that fails to load traces nothing, and says nothing: say so here.
python - "$db" <<'PY'
import sys

import otel_costattr

try:
    calls, why = otel_costattr.rollup("stats", db=sys.argv[1])[0]["calls"], "no model call reached it"
except Exception as e:  # no file at all: nothing was exported
    calls, why = 0, str(e)
if not calls:
    sys.exit(
        f"zero_code.sh: {sys.argv[1]}: {why}: did the OpenAI instrumentation load?"
        " (see the pins above; README: Zero-code)"
    )
PY
