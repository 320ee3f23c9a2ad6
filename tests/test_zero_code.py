"""Zero-code: `opentelemetry-instrument python app.py`, switched on from the environment only.

Runs examples/zero_code.sh (the documented command line, verbatim) and variants of it in the
openai-v2 producer venv, which also holds opentelemetry-distro: the official OpenAI
instrumentation, our post-instrument hook (OTEL_COSTATTR_PROCESSOR) and our exporter entry
point (OTEL_TRACES_EXPORTER=duckdb) are all found through package metadata, as for a user.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import duckdb
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import ProxyTracerProvider
from producers import expected
from producers.fake_llm import FakeLLM
from producers.otlp_receiver import OTLPReceiver
from producers.venvs import REPO, VenvBuildError, clean_env, ensure_venv

from otel_costattr import CostSpanProcessor, settings
from otel_costattr.pricing import table as pricing_table
from otel_costattr.sdk import autoconfig
from otel_costattr.sdk.autoconfig import ENV_PROCESSOR

SCRIPT = REPO / "examples" / "zero_code.sh"
APP = REPO / "examples" / "zero_code_app.py"
DUCKDB_PATH_ENV = "OTEL_COSTATTR_DUCKDB_PATH"
# openai-v2 does not report cached tokens: both calls are priced with all input at full rate.
COSTS = [expected.GPT_4O_MINI_NO_CACHE_COUNT] * 2
GPT_CALL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.cache_read.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 300,
}


@pytest.fixture(scope="module")
def venv_bin() -> Path:
    try:
        return ensure_venv("openai-v2").parent
    except VenvBuildError as e:
        pytest.fail(f"could not build producer venv 'openai-v2': {e}", pytrace=False)


@pytest.fixture(scope="module")
def fake():
    with FakeLLM() as server:
        yield server


def launch(cmd: list[str], venv_bin: Path, fake: FakeLLM, **env: str) -> subprocess.CompletedProcess:
    """``cmd`` run in the producer venv (as if it were active) against the fake LLM."""
    path = f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        cmd,
        env=clean_env(PATH=path, **fake.env(), **env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def run(cmd: list[str], venv_bin: Path, fake: FakeLLM, **env: str) -> None:
    done = launch(cmd, venv_bin, fake, **env)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip() == "done", done.stdout
    # A broken hook or exporter is logged, never raised: make sure nothing was logged.
    assert "Traceback" not in done.stderr and "otel-costattr" not in done.stderr, done.stderr


def model_calls(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "SELECT cost_usd, cost_source, response_model FROM spans"
            " WHERE span_role = 'model_call' ORDER BY start_time"
        ).fetchall()


def test_documented_command_prices_and_lands_in_duckdb(venv_bin, fake, tmp_path):
    db = tmp_path / "costs.duckdb"
    run(["bash", str(SCRIPT), str(db)], venv_bin, fake)
    # cost_source 'span': the processor stamped it (the exporter alone would say 'exporter').
    assert model_calls(db) == [(c, "span", "gpt-4o-mini-2024-07-18") for c in COSTS]


def test_the_script_says_so_when_no_model_call_arrived(venv_bin, fake, tmp_path):
    """An instrumentation that does not load (here switched off, as a broken pin leaves it)
    traces nothing and says nothing: the script must, and fail."""
    db = tmp_path / "costs.duckdb"
    path = f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"
    env = clean_env(PATH=path, **fake.env(), OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="openai")
    done = subprocess.run(
        ["bash", str(SCRIPT), str(db)], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1, done
    assert done.stdout.strip() == "done"
    assert done.stderr.strip().splitlines()[-1] == (
        f"zero_code.sh: {db}: no model call reached it: did the OpenAI instrumentation load?"
        " (see the pins above; README: Zero-code)"
    ), done.stderr


def test_processor_is_off_unless_switched_on(venv_bin, fake, tmp_path):
    db = tmp_path / "costs.duckdb"
    env = {"OTEL_TRACES_EXPORTER": "duckdb", DUCKDB_PATH_ENV: str(db),
           "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}  # fmt: skip
    run(["opentelemetry-instrument", "python", str(APP)], venv_bin, fake, **env)
    # Still priced, by the exporter: the DuckDB file never depends on the processor.
    assert model_calls(db) == [(c, "exporter", "gpt-4o-mini-2024-07-18") for c in COSTS]


def test_a_bad_pricing_file_leaves_the_other_exporters_running(venv_bin, fake, tmp_path):
    """A bad pricing file (or an unwritable path) made the SDK's configurator give up on
    tracing altogether: two tracebacks, no span on any exporter (a review). Now one error
    line names the file, entry and field; OTLP still receives every span, priced by the
    processor, and the run says at its end how many spans the duckdb exporter did not keep."""
    bad = tmp_path / "prices.toml"
    bad.write_text(
        'provider = "acme"\n[[model]]\nid = "m"\nmatch = [{ equals = "m" }]\n[[model.price]]\ninput = -1\n'
    )
    db = tmp_path / "costs.duckdb"
    with OTLPReceiver() as receiver:
        env = {
            "OTEL_TRACES_EXPORTER": "duckdb,otlp",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.traces_endpoint,
            DUCKDB_PATH_ENV: str(db),
            "OTEL_COSTATTR_PRICING_FILES": str(bad),
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        }
        done = launch(["opentelemetry-instrument", "python", str(APP)], venv_bin, fake, **env)
        spans = receiver.spans
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if "otel-costattr" in line]
    assert len(errors) == 2 and f"{bad}: model 'm': price[0]" in errors[0], done.stderr
    assert "stored none of" in errors[1], done.stderr
    assert [s["name"] for s in spans] == ["chat gpt-4o-mini"] * 2
    assert not db.exists()


def test_zero_code_cost_reaches_otlp_too(venv_bin, fake, tmp_path):
    db = tmp_path / "costs.duckdb"
    with OTLPReceiver() as receiver:
        env = {
            ENV_PROCESSOR: "true",
            "OTEL_TRACES_EXPORTER": "duckdb,otlp",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.traces_endpoint,
            DUCKDB_PATH_ENV: str(db),
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        }
        run(["opentelemetry-instrument", "python", str(APP)], venv_bin, fake, **env)
        spans = receiver.spans
    assert receiver.errors == []
    assert [s["name"] for s in spans] == ["chat gpt-4o-mini"] * 2
    assert [s["attributes"]["gen_ai.usage.cost"] for s in spans] == [float(c) for c in COSTS]
    assert len(model_calls(db)) == 2


# -- the hook itself, in process -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "on"),
    [("true", True), (" On ", True), ("1", True), ("false", False), ("", False), ("maybe", False)],
)
def test_switch_values(monkeypatch, value, on):
    monkeypatch.setenv(ENV_PROCESSOR, value)
    assert autoconfig.enabled() is on


def test_switch_is_off_when_unset(monkeypatch):
    monkeypatch.delenv(ENV_PROCESSOR, raising=False)
    assert autoconfig.enabled() is False


def test_install_adds_a_working_processor():
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))  # registered first, as autoconfig does
    assert isinstance(autoconfig.install(provider), CostSpanProcessor)
    with provider.get_tracer("t").start_as_current_span("chat", attributes=GPT_CALL):
        pass
    (span,) = memory.get_finished_spans()
    assert span.attributes["gen_ai.usage.cost"] == float(expected.GPT_4O_MINI)


def test_install_without_an_sdk_provider_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="otel_costattr.sdk.autoconfig"):
        assert autoconfig.install(ProxyTracerProvider()) is None
    assert "not the SDK's" in caplog.text


def test_post_instrument_with_a_bad_flag_warns_and_adds_nothing(monkeypatch, caplog):
    monkeypatch.setenv(ENV_PROCESSOR, "maybe")
    with caplog.at_level(logging.WARNING, logger="otel_costattr.sdk.autoconfig"):
        autoconfig.post_instrument()
    assert "treated as false" in caplog.text


def test_post_instrument_with_bad_configuration_logs_one_line(monkeypatch, caplog, tmp_path):
    bad = tmp_path / "prices.toml"
    bad.write_text("[[region]]\nhost = 'openai'\nregions = ['eu-*']\nmultiplier = nan\nmodels = ['gpt-4o']\n")
    monkeypatch.setenv(ENV_PROCESSOR, "true")
    monkeypatch.setenv("OTEL_COSTATTR_PRICING_FILES", str(bad))
    monkeypatch.setattr(pricing_table, "_default", None)  # read once a process: read again
    monkeypatch.setattr(autoconfig.trace, "get_tracer_provider", TracerProvider)
    with caplog.at_level(logging.ERROR, logger="otel_costattr.sdk.autoconfig"):
        autoconfig.post_instrument()
    (record,) = caplog.records
    assert record.exc_info is None and "\n" not in record.getMessage()
    assert f"{bad}: region[0]: multiplier:" in record.getMessage()


def test_post_instrument_never_raises_when_installing_fails(monkeypatch, caplog):
    # A global provider whose add_span_processor raises (a broken or exotic SDK): the hook must
    # log and return, or opentelemetry-instrument abandons the rest of its set-up.
    class Broken:
        def add_span_processor(self, processor: object) -> None:
            raise RuntimeError("this provider takes no processors")

    monkeypatch.setenv(ENV_PROCESSOR, "true")
    monkeypatch.setattr(autoconfig.trace, "get_tracer_provider", Broken)
    with caplog.at_level(logging.ERROR, logger="otel_costattr.sdk.autoconfig"):
        autoconfig.post_instrument()
    assert "could not add the cost processor" in caplog.text
    assert "this provider takes no processors" in caplog.text


def test_identity_keys_come_from_the_environment_too(monkeypatch):
    # A zero-code application has no constructor to pass identity_keys to.
    monkeypatch.setenv("OTEL_COSTATTR_IDENTITY_KEYS", " user.id, app.tenant,,user.id ")
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    autoconfig.install(provider)
    tracer = provider.get_tracer("t")
    parent = {"user.id": "u-7", "app.tenant": "acme", "app.feature": "search", "other": "x"}
    with (
        tracer.start_as_current_span("request", attributes=parent),
        tracer.start_as_current_span("chat", attributes=GPT_CALL),
    ):
        pass
    call = memory.get_finished_spans()[0]
    # Added to the defaults (app.feature), not instead of them; keys not listed stay put.
    assert {k: call.attributes.get(k) for k in parent} == {**parent, "other": None}


def test_post_instrument_with_a_bad_identity_key_logs_one_line(monkeypatch, caplog):
    monkeypatch.setenv(ENV_PROCESSOR, "true")
    monkeypatch.setenv("OTEL_COSTATTR_IDENTITY_KEYS", "user.id,tenant id")
    monkeypatch.setattr(autoconfig.trace, "get_tracer_provider", TracerProvider)
    with caplog.at_level(logging.ERROR, logger="otel_costattr.sdk.autoconfig"):
        autoconfig.post_instrument()
    (record,) = caplog.records
    assert record.getMessage() == (
        "otel-costattr: could not add the cost processor: "
        "OTEL_COSTATTR_IDENTITY_KEYS='user.id,tenant id': 'tenant id' is not an attribute name"
        " (letters, digits, _ . : / -)"
    )


def test_an_identity_key_that_describes_the_call_fails_every_command_at_start(monkeypatch):
    # A review: OTEL_COSTATTR_IDENTITY_KEYS=gen_ai.usage.input_tokens was taken, and a
    # parent's tokens were billed to its calls.
    monkeypatch.setenv("OTEL_COSTATTR_IDENTITY_KEYS", "user.id,gen_ai.usage.input_tokens")
    with pytest.raises(ValueError, match="^OTEL_COSTATTR_IDENTITY_KEYS=.*'gen_ai.usage.input_tokens' says"):
        settings.check()


def test_an_identity_key_the_store_would_drop_is_warned_of(monkeypatch, caplog):
    # Copied onto every call, then left out of the store as possible prompt text (a review):
    # per-group over it found one empty group, and nothing said why.
    monkeypatch.setenv("OTEL_COSTATTR_IDENTITY_KEYS", "user.id,gen_ai.user.id,llm.tenant")
    with caplog.at_level(logging.WARNING, logger="otel_costattr.sdk.processor"):
        CostSpanProcessor()
    (record,) = caplog.records
    assert record.getMessage().startswith(
        "otel-costattr: identity keys gen_ai.user.id, llm.tenant are in a GenAI namespace"
    )
    caplog.clear()
    monkeypatch.delenv("OTEL_COSTATTR_IDENTITY_KEYS")
    with caplog.at_level(logging.WARNING, logger="otel_costattr.sdk.processor"):
        CostSpanProcessor()
    assert caplog.records == []
