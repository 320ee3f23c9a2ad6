"""`otel-costattr pricing ...` and `otel-costattr price`: output, exit codes, exact errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from otel_costattr.cli import main

FIXTURE = Path(__file__).parent / "data" / "test_prices.toml"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_price_prints_the_exact_total(capsys):
    code, out, err = run(
        capsys, "price", "claude-sonnet-4-5-20250929", "--input", "1200", "--output", "300",
        "--cache-read", "1000", "--cache-write", "150", "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["model"] == "claude-sonnet-4-5"
    assert data["provider"] == "anthropic"
    # 50 * $3 + 1000 * $0.30 + 150 * $3.75 + 300 * $15 per million tokens
    assert data["usd_exact"] == "0.0055125" and data["usd"] == 0.0055125


def test_price_unknown_model_is_one_error_line(capsys):
    code, out, err = run(capsys, "price", "gpt-99", "--input", "10")
    assert code == 1
    assert out == ""
    assert err == "Error: unknown_model: no price for model 'gpt-99'\n"


def test_price_with_a_user_file(capsys):
    code, out, _ = run(capsys, "price", "acme-mini", "--input", "1000000", "--pricing", str(FIXTURE))
    assert code == 0
    assert "acme/acme-mini" in out and "$0.150000" in out


def test_pricing_show_explains_resolution(capsys):
    # Bedrock's in-region profiles of Claude 4.5 cost 10% more than Anthropic's own API.
    code, out, _ = run(capsys, "pricing", "show", "us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert code == 0
    assert out.splitlines()[0] == "aws/regional.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert "standard: input 3.3, output 16.5, cache_read 0.33" in out
    code, out, _ = run(capsys, "pricing", "show", "claude-sonnet-4-5@20250929", "--provider", "gcp.vertex_ai")
    assert code == 0
    assert out.splitlines()[0] == "anthropic/claude-sonnet-4-5  (Claude Sonnet 4.5)"
    assert "above 200,000 input tokens: input 6, output 22.5" in out


PEAK_PRICES = """
provider = "night"
otel_names = ["night"]
source = "https://example.invalid/pricing"
retrieved = 2026-11-01

[[model]]
id = "owl-1"
match = [{ equals = "owl-1" }]

[[model.price]]
input = 1
output = 2
windows = [{ start = 00:30:00, end = 16:30:15, input = 4, output = 8 }]
batch = { input = 0.5, output = 1 }
"""


def test_pricing_show_lists_time_of_day_windows(tmp_path, capsys):
    # A period's windows were left out: the base (off-peak) rate read as "standard", half
    # what a call pays 16 hours a day.
    prices = tmp_path / "night.toml"
    prices.write_text(PEAK_PRICES, encoding="utf-8")
    code, out, err = run(capsys, "pricing", "show", "owl-1", "--pricing", str(prices))
    assert code == 0, err
    lines = out.splitlines()
    standard = lines.index("    standard: input 1, output 2")
    assert lines[standard + 1] == "      daily 00:30-16:30:15 UTC: input 4, output 8"
    assert lines[standard + 2] == "    batch: input 0.5, output 1"  # a tier wins over a window: none under it


def test_price_at_a_time_of_day(tmp_path, capsys):
    # --at took a date only (its 00:00 UTC), so a window's price could not be asked for.
    prices = tmp_path / "night.toml"
    prices.write_text(PEAK_PRICES, encoding="utf-8")

    def usd(at):
        code, out, err = run(capsys, "price", "owl-1", "--input", "1000000", "--pricing", str(prices),
                             "--at", at, "--format", "json")  # fmt: skip
        assert code == 0, err
        return json.loads(out)["usd_exact"]

    assert usd("2026-01-05T12:00") == "4"  # in the window
    assert usd("2026-01-05T20:00") == "1"
    assert usd("2026-01-05") == "1"  # 00:00 UTC
    assert usd("2026-01-05T21:00+09:00") == "4"  # 12:00 UTC
    assert usd("2026-01-05 16:30:14Z") == "4" and usd("2026-01-05T16:30:15Z") == "1"
    bad = ["--at", "2026-13-01T0:0"]
    code, _, err = run(capsys, "price", "owl-1", "--input", "1", "--pricing", str(prices), *bad)
    assert code == 2 and "not a date or date and time (YYYY-MM-DD[THH:MM]): '2026-13-01T0:0'" in err
    # Epoch seconds were read as a date of 1757 (Python's date.fromisoformat) and priced then.
    for at in ("1767614400", "20260105", "2026-W02-1", "1767614400T00:00"):
        code, _, err = run(capsys, "price", "owl-1", "--input", "1", "--pricing", str(prices), "--at", at)
        assert code == 2 and "not a date" in err and repr(at) in err, (at, err)


def test_pricing_show_unknown_lists_what_was_tried(capsys):
    code, _, err = run(capsys, "pricing", "show", "Nope-1")
    assert code == 1
    assert err == "Error: unknown model 'Nope-1' (tried: nope-1); see 'otel-costattr pricing list'\n"


def test_pricing_show_says_why_a_self_hosted_form_is_unknown(capsys):
    code, _, err = run(capsys, "pricing", "show", "deepseek-r1:7b")
    assert code == 1
    assert err == (
        "Error: unknown model 'deepseek-r1:7b': an Ollama name:tag (deepseek-r1:7b, llama3.1:8b): a"
        " model run on your own hardware; price it with an equals rule in a file\n"
    )


def test_pricing_show_of_an_id_too_long_to_resolve(capsys):
    code, out, err = run(capsys, "pricing", "show", "x" * 300)
    assert (code, out) == (1, "")
    assert err == "Error: model id too long to resolve (300 characters, at most 256)\n"


def test_pricing_list_json(capsys):
    code, out, _ = run(capsys, "pricing", "list", "--provider", "openai", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert {r["provider"] for r in rows} == {"openai"}
    assert any(r["model"] == "gpt-4o-mini" for r in rows)


def test_pricing_check_good_and_bad_files(capsys, tmp_path):
    code, out, _ = run(capsys, "pricing", "check", str(FIXTURE))
    assert (code, out) == (0, f"{FIXTURE}: ok (acme, 4 models)\n")
    bad = tmp_path / "bad.toml"
    bad.write_text('provider = "x"\n[[model]]\nid = "m"\n[[model.price]]\ninput = -2\noutput = 1\n')
    code, out, err = run(capsys, "pricing", "check", str(bad))
    assert code == 1
    assert err == f"Error: {bad}: model 'm': price[0].input: must be a finite number >= 0, got -2\n"
    misspelt = tmp_path / "regoin.toml"  # a user file may hold [[region]]: named among the keys
    misspelt.write_text('provider = "x"\n[[regoin]]\nhost = "azure"\n')
    code, out, err = run(capsys, "pricing", "check", str(misspelt))
    assert code == 1 and "region, retrieved" in err


def test_console_script_runs_as_a_module():
    out = subprocess.run(
        [sys.executable, "-m", "otel_costattr.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("otel-costattr ")


def test_pricing_check_loads_several_files_together(capsys, tmp_path):
    # Each file is fine alone; layered together two of them price one model differently.
    text = 'provider = "acme"\n[[model]]\nid = "m1"\nmatch = [{ equals = "m1" }]\n[[model.price]]\n'
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(text + "input = 1\noutput = 2\n")
    b.write_text(text + "input = 9\noutput = 9\n")
    code, out, err = run(capsys, "pricing", "check", str(a), str(b))
    assert (code, out) == (1, f"{a}: ok (acme, 1 model)\n{b}: ok (acme, 1 model)\n")
    assert err == f"Error: {b}: model 'm1': id: provider 'acme' already has model 'm1' in {a}\n"
    code, _, err = run(capsys, "price", "m1", "--input", "1", "--pricing", str(b), "--pricing", str(a))
    assert (code, err) == (1, f"Error: {a}: model 'm1': id: provider 'acme' already has model 'm1' in {b}\n")


def test_pricing_show_names_the_provider_an_alias_resolved_to(tmp_path, capsys):
    # A review found alias_of = "deepseek/deepseek-chat" in an openai file priced from
    # OpenRouter's model of that literal id, found by a search of every provider, and
    # `pricing show` saying only "alias of deepseek/deepseek-chat".
    prices = tmp_path / "openai.toml"
    prices.write_text('provider = "openai"\n[[model]]\nid = "deepseek-chat"\nalias_of = "deepseek-chat"\n')
    code, out, err = run(
        capsys, "pricing", "show", "deepseek-chat", "--provider", "openai", "--pricing", str(prices)
    )
    assert code == 0, err
    assert "  alias of deepseek-chat (provider deepseek, model deepseek-chat)" in out.splitlines()
