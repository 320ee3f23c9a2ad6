"""scripts/refresh_pricing.py on a small genai-prices-shaped fixture (no genai-prices needed).

tests/data/refresh/genai_prices.toml has two providers in genai-prices' own schema: price
history, a batch tier, long-context tiers, a time-of-day window across midnight, a regex
clause, a model priced per request (which the format cannot say) and a host reselling some
models at the first party's price. tests/data/refresh/expected/ holds the files the refresh
must write for it, checked by hand.
"""

from __future__ import annotations

import ast
import copy
import datetime as dt
import importlib.util
import shutil
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
DATA = Path(__file__).parent / "data" / "refresh"
EXPECTED = DATA / "expected"
CONFIG = DATA / "overrides.toml"

sys.path.insert(0, str(SCRIPTS))
import refresh_pricing  # noqa: E402
from pricing_refresh import RefreshError, tables  # noqa: E402
from pricing_refresh.build import build, checked, outputs  # noqa: E402
from pricing_refresh.config import load_config  # noqa: E402
from pricing_refresh.diff import describe  # noqa: E402


def fixture_source() -> tuple[str, dict]:
    data = tomllib.loads((DATA / "genai_prices.toml").read_text("utf-8"), parse_float=D)
    return data["version"], {p["id"]: p for p in data["providers"]}


def refresh(capsys, pricing_dir: Path, *argv: str, config: Path = CONFIG) -> tuple[int, str, str]:
    """Run the script's main() on the fixture: exit code, stdout, stderr."""
    code = refresh_pricing.main(
        list(argv), pricing_dir=pricing_dir, config_file=config, source=fixture_source()
    )
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def committed(tmp_path) -> Path:
    """A pricing/ folder holding exactly the expected files."""
    for path in EXPECTED.iterdir():
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_fixture_converts_to_the_expected_files(tmp_path, capsys):
    code, out, _ = refresh(capsys, tmp_path, "--version", "2026.05.01", "--retrieved", "2026-05-01")
    assert code == 0, out
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["_table.toml", "acme.toml", "hostco.toml"]
    for name in written:
        assert (tmp_path / name).read_text("utf-8") == (EXPECTED / name).read_text("utf-8"), name


def test_check_passes_on_its_own_output_and_keeps_version_and_date(committed, capsys):
    code, out, _ = refresh(capsys, committed, "--check")
    assert code == 0, out
    assert out.endswith("\nNo changes on disk.\n")


def test_converted_prices(committed):
    acme = tomllib.loads((committed / "acme.toml").read_text("utf-8"), parse_float=D)
    models = {m["id"]: m for m in acme["model"]}
    assert models["acme-large"]["match"] == [
        {"equals": "acme-large"},
        {"regex": r"acme-large-\d{4}-\d{2}-\d{2}"},  # re.search '^...$' as a full match
    ]
    assert models["acme-large"]["price"] == [
        {"input": 3, "output": 15, "cache_read": D("0.3")},
        {"since": dt.date(2026, 3, 1), "input": D("2.5"), "output": 12, "cache_read": D("0.25")},
        {  # batch overrides input and output only: cached reads keep the standard rate
            "since": dt.date(2026, 4, 1), "input": D("2.5"), "output": 12, "cache_read": D("0.25"),
            "batch": {"input": D("1.25"), "output": 6, "cache_read": D("0.25")},
        },
    ]  # fmt: skip
    # Off-peak from 16:30 to 00:30 UTC: one window across midnight.
    night = {"input": D("0.25"), "output": 1, "start": dt.time(16, 30), "end": dt.time(0, 30)}
    assert models["acme-night"]["price"] == [{"input": D("0.5"), "output": 2, "windows": [night]}]
    # A variant that overrides the input price outright applies above 200k tokens too; from
    # 2026-06-01 a dated variant listed first wins, for its own key only.
    priority = {"input": D("2.5"), "output": 20, "cache_read": D("0.25")}
    dated = {**priority, "input": 2}
    long = models["acme-long"]["price"]
    assert [p.get("since") for p in long] == [None, dt.date(2026, 6, 1)]
    assert long[0]["priority"] == {**priority, "tiers": [{"above": 200000, **priority}]}
    assert long[1]["priority"] == {**dated, "tiers": [{"above": 200000, **dated}]}


def test_what_the_format_cannot_say_is_skipped_and_reported(committed, capsys):
    reason = "no per-token input price (priced units: input_audio_mtok, requests_kcount)"
    code, out, _ = refresh(capsys, committed, "--check")
    assert code == 0
    assert f"  acme/acme-voice: {reason}\n" in out
    assert "  web_searches_kcount (USD per 1,000 web searches): acme/acme-large\n" in out
    acme = (committed / "acme.toml").read_text("utf-8")
    assert [m["id"] for m in tomllib.loads(acme)["model"]] == ["acme-large", "acme-long", "acme-night"]
    assert "# not representable, left out: web_searches_kcount (USD per 1,000 web searches)\n" in acme
    assert "# Not shipped, the format cannot say their prices: acme-voice (no per-token input price" in acme


def test_an_unshipped_model_that_one_of_ours_prices_otherwise_is_a_warning(committed, capsys):
    code, out, _ = refresh(capsys, committed, "--check")
    assert code == 0
    warning = "acme: 'acme-night-max' (acme-night-max, not shipped) is priced as acme/acme-night"
    assert f"\nWarnings (1):\n  {warning}\n" in out


def test_host_copies_priced_like_the_fallback_are_dropped_through_the_price_table():
    result = build(load_config(CONFIG), *fixture_source())
    assert result.deduped == [
        ("hostco", "acme-large", "acme/acme-large"),
        # Found only through the normalize rules: hostco.acme-large-v1:0 -> acme-large.
        ("hostco", "hostco.acme-large-v1:0", "acme/acme-large"),
    ]
    assert sorted(result.models["hostco"]) == ["acme-night"]  # its own price: kept
    # What a span naming HostCo is now priced with, by the real loader and PriceTable.
    files = outputs(result, "2026.05.01", dt.date(2026, 5, 1))
    table = tables.load_files({n: t for n, t in files.items() if n != "_table.toml"})
    rewrites = tables.Fallbacks(result.config.providers, result.models, result.config.normalize).rewrites
    found = tables.resolve(table, rewrites, "hostco.acme-large-v1:0", "hostco")
    assert (found.provider, found.id) == ("acme", "acme-large")
    night = tables.resolve(table, rewrites, "acme-night-001", "hostco")
    assert (night.provider, night.price_at(dt.date(2026, 5, 1)).input) == ("hostco", D("0.6"))


def test_a_host_copy_one_cent_dearer_is_kept():
    version, source = fixture_source()
    source = copy.deepcopy(source)
    host_large = next(m for m in source["hostco"]["models"] if m["id"] == "acme-large")
    host_large["prices"][1]["prices"]["input_mtok"] = D("2.51")
    result = build(load_config(CONFIG), version, source)
    assert result.deduped == []
    # hostco.acme-large-v1:0 normalises to acme-large, which HostCo's own (dearer) copy matches
    # before the fallback is searched: the real resolution order keeps it too.
    assert sorted(result.models["hostco"]) == ["acme-large", "acme-night", "hostco.acme-large-v1:0"]


def test_diff_printer_names_provider_model_and_field(committed, capsys):
    acme = committed / "acme.toml"
    acme.write_text(
        acme.read_text("utf-8")
        .replace("input = 0.5\n", "input = 0.45\n")
        .replace('name = "Acme Large"', 'name = "Acme L"')
    )
    hostco = committed / "hostco.toml"
    hostco.write_text(hostco.read_text("utf-8").replace('id = "acme-night"', 'id = "acme-nite"'))
    (committed / "stale.toml").write_text('provider = "stale"\n')
    code, out, _ = refresh(capsys, committed, "--check")
    assert code == 1
    assert out[out.index("Changes against the files on disk:") :] == (
        "Changes against the files on disk:\n"
        "  acme.toml: changed\n"
        '    ~ acme-large name: "Acme L" -> "Acme Large"\n'
        "    ~ acme-night price[0].input: 0.45 -> 0.5\n"
        "  hostco.toml: changed\n"
        "    - model acme-nite\n"
        "    + model acme-night\n"
        "  stale.toml: no longer generated (delete it, or add its provider)\n"
    )
    assert acme.read_text("utf-8") != (EXPECTED / "acme.toml").read_text("utf-8")  # --check wrote nothing


def test_diff_of_provider_fields_and_layout_only():
    old = (EXPECTED / "hostco.toml").read_text("utf-8")
    assert describe("hostco.toml", old, old) == []
    assert describe("hostco.toml", old.replace("# Resells", "# Sells"), old) == [
        "  hostco.toml: changed",
        "    comments or layout only",
    ]
    assert describe("hostco.toml", old.replace("2026-05-01", "2026-04-01"), old) == [
        "  hostco.toml: changed",
        "    ~ retrieved: 2026-04-01 -> 2026-05-01",
    ]
    assert describe("new.toml", None, old) == ["  new.toml: new file"]


def test_a_bad_override_stops_with_one_line_naming_file_entry_and_field(tmp_path, capsys):
    config = tmp_path / "overrides.toml"
    text = CONFIG.read_text("utf-8")
    config.write_text(text.replace('reason = "Examples: a dated snapshot."', 'reason = "x"\ncolour = "red"'))
    code, out, err = refresh(capsys, tmp_path, "--check", config=config)
    allowed = (
        "deprecated, examples, extra_match, id, match, name, new, price, provider, reason, retrieved, source"
    )
    assert (code, out) == (2, "")  # not 1, which is --check finding changes
    assert err == f"Error: overrides.toml: model[0].colour: unknown key (allowed: {allowed})\n"
    # A rule the loader rejects: the refresh says so in one line and writes nothing.
    config.write_text(text.replace('examples = ["acme-large-2026-03-01"]', 'examples = ["acme-huge"]'))
    code, out, err = refresh(capsys, tmp_path, config=config)
    assert code == 2
    assert err == (
        "Error: the loader rejects the result: pricing/acme.toml: model 'acme-large': examples[0]: "
        "'acme-huge' matches no rule of this model\n"
    )
    assert list(tmp_path.iterdir()) == [config]


def test_written_toml_must_read_back_as_its_data():
    text = (EXPECTED / "hostco.toml").read_text("utf-8")
    doc = tomllib.loads(text, parse_float=D)
    assert checked("hostco.toml", text, doc) == text
    with pytest.raises(
        RefreshError, match=r"hostco.toml: the written TOML reads back differently at model\[0\]"
    ):
        checked("hostco.toml", text.replace("output = 2.4", "output = 2.40001"), doc)


def test_no_private_stdlib_modules_and_genai_prices_in_one_adapter():
    for path in [SCRIPTS / "refresh_pricing.py", *(SCRIPTS / "pricing_refresh").glob("*.py")]:
        imported = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
        assert not imported & {"re._parser", "sre_parse", "sre_compile"}, path
        if path.name != "genai_source.py":
            assert not any(m.startswith("genai_prices") for m in imported), path


def test_without_genai_prices_the_script_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "genai_prices", None)  # what a plain `.[test]` install has
    code = refresh_pricing.main(["--check"], pricing_dir=tmp_path, config_file=CONFIG)
    assert code == 2
    assert capsys.readouterr().err == (
        "Error: the refresh needs genai-prices, a development tool: "
        "pip install -e '.[dev]' (genai-prices==0.2.3 and tomli-w)\n"
    )


@pytest.mark.skipif(
    importlib.util.find_spec("genai_prices") is None,
    reason="genai-prices is a dev-only tool: pip install -e '.[dev]' to check the committed files",
)
def test_check_passes_on_the_committed_pricing_files():
    run = subprocess.run(
        [sys.executable, str(SCRIPTS / "refresh_pricing.py"), "--check"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.endswith("\nNo changes on disk.\n")
