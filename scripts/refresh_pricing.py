#!/usr/bin/env python3
"""Regenerate the bundled pricing files (pricing/*.toml) from pydantic's genai-prices.

A development tool: genai-prices is imported by scripts/pricing_refresh/genai_source.py only,
never by the package.

    pip install genai-prices==0.2.3 tomli-w         # or: pip install -e '.[dev]'
    python scripts/refresh_pricing.py               # write pricing/*.toml, print what changed
    python scripts/refresh_pricing.py --check       # write nothing; exit 1 if the files would change
    python scripts/refresh_pricing.py --version 2026.12.01 --retrieved 2026-12-01   # new figures

A mistake in the inputs, or a result the loader would reject, is one `Error:` line and exit 2.

Steps (modules in scripts/pricing_refresh/):
1. take the providers and models listed in scripts/pricing_overrides.toml (config.py);
2. convert each model (convert.py): match clauses become our rule kinds, dated prices
   [[model.price]] periods, time-of-day prices `windows`, batch/flex/priority variants service
   tiers; what the format cannot say is skipped or left out and reported, never approximated;
3. apply the [[model]] overrides of scripts/pricing_overrides.toml, then date each
   [[tier_history]] service tier from its launch (tier_history.py);
4. drop a host's model where its `fallback` providers price every id it matches identically,
   as a real PriceTable loaded from the generated files resolves them (tables.py);
5. render the files (render.py) and load them with the loader; warn about genai-prices models
   we do not ship that one of our rules prices otherwise; print what was skipped and what
   changes on disk per file, model and field (diff.py); write the files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import textwrap
from pathlib import Path

import tomllib
from pricing_refresh import RefreshError, genai_source
from pricing_refresh.build import TABLE_FILE, Refresh, build, outputs
from pricing_refresh.config import load_config
from pricing_refresh.diff import describe

from otel_costattr.pricing.model import PricingError
from otel_costattr.pricing.regions import REGIONS_FILE

REPO = Path(__file__).resolve().parents[1]
PRICING_DIR = REPO / "pricing"
CONFIG_FILE = REPO / "scripts" / "pricing_overrides.toml"


def on_disk(pricing_dir: Path, name: str, key: str) -> object:
    """``key`` of pricing/<name> as committed (None when absent)."""
    path = pricing_dir / name
    return tomllib.loads(path.read_text("utf-8")).get(key) if path.exists() else None


def summary(refresh: Refresh) -> dict[str, list[str]]:
    """The report blocks: what was skipped, left out, dropped and overridden."""
    left_out: dict[str, list[str]] = {}
    windows = []
    for pid, models in refresh.models.items():
        for mid, model in sorted(models.items()):
            for what in model.dropped:
                left_out.setdefault(what, []).append(f"{pid}/{mid}")
            hours = [", ".join(f"{w['start']:%H:%M}-{w['end']:%H:%M}" for w in p.get("windows", []))
                     for p in model.price]  # fmt: skip
            if any(hours):
                windows.append(f"{pid}/{mid}: " + " | ".join(dict.fromkeys(h or "none" for h in hours)))
    return {
        "Skipped models (not representable)": [f"{p}/{m}: {why}" for p, m, why in refresh.skipped],
        "Time-of-day windows (UTC; | between price periods that differ)": windows,
        "Parts left out of shipped models (not representable)": [
            f"{what}: {', '.join(where)}" for what, where in sorted(left_out.items())
        ],
        "Host copies dropped (a fallback prices them the same)": [
            f"{p}/{m} -> {by}" for p, m, by in refresh.deduped
        ],
        "Overrides applied": refresh.overrides,
        "Service tiers left at genai-prices' dates ([[tier_history]])": [
            f"{p}/{m}: {why}" for p, m, why in refresh.undated
        ],
        "Warnings": refresh.warnings,
        "ERRORS": refresh.errors,
    }


def main(
    argv: list[str] | None = None,
    *,
    pricing_dir: Path = PRICING_DIR,
    config_file: Path = CONFIG_FILE,
    source: tuple[str, dict] | None = None,
) -> int:
    """Run the refresh; ``source`` (version, providers as plain data) stands in for genai-prices."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 on changes")
    parser.add_argument("--version", help="table version to write (default: keep the current)")
    parser.add_argument(
        "--retrieved",
        type=dt.date.fromisoformat,
        help="the day the figures were taken, YYYY-MM-DD (default: keep the date in the files)",
    )
    args = parser.parse_args(argv)

    current_version = on_disk(pricing_dir, TABLE_FILE, "version")
    committed = (on_disk(pricing_dir, p.name, "retrieved") for p in sorted(pricing_dir.glob("*.toml")))
    retrieved = args.retrieved or next((d for d in committed if isinstance(d, dt.date)), dt.date.today())
    version = args.version or current_version or retrieved.strftime("%Y.%m.%d")
    try:  # exit 2, not 1: 1 is --check finding changes
        refresh = build(load_config(config_file), *(source or genai_source.load()))
        files = outputs(refresh, version, retrieved)
    except RefreshError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    except PricingError as e:
        print(f"Error: the loader rejects the result: {e}", file=sys.stderr)
        return 2

    changes = []
    for name, text in files.items():
        path = pricing_dir / name
        changes += describe(name, path.read_text("utf-8") if path.exists() else None, text)
    changes += [f"  {p.name}: no longer generated (delete it, or add its provider)"
                for p in sorted(pricing_dir.glob("*.toml"))
                if p.name not in files and p.name != REGIONS_FILE]  # hand-edited  # fmt: skip

    total = sum(len(m) for m in refresh.models.values())
    counts = ", ".join(f"{pid} {len(m)}" for pid, m in refresh.models.items())
    print(f"{refresh.via} -> {total} models in {len(refresh.models)} providers ({counts})")
    for title, lines in summary(refresh).items():
        if lines:
            print(f"\n{title} ({len(lines)}):")
            for line in lines:
                print(textwrap.fill(line, 100, initial_indent="  ", subsequent_indent="      ",
                                    break_long_words=False, break_on_hyphens=False))  # fmt: skip
    print(
        "\n".join(["\nChanges against the files on disk:", *changes]) if changes else "\nNo changes on disk."
    )
    if refresh.errors:
        print(f"\n{len(refresh.errors)} error(s); nothing written.")
        return 2
    if args.check:
        return 1 if changes else 0
    for name, text in files.items():
        (pricing_dir / name).write_text(text, "utf-8")
    if changes and version == current_version:
        print(f"\nNOTE: the files changed but version is still {version!r}: rerun with --version "
              "YYYY.MM.DD and pin the new digest in tests/test_pricing_data.py.")  # fmt: skip
    if changes and args.retrieved is None:
        print(f"NOTE: retrieved is still {retrieved}: pass --retrieved if the figures are new.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
