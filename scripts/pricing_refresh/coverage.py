"""Coverage of the bundled table against LiteLLM's price file, beside genai-prices' own.

    python scripts/pricing_refresh/coverage.py model_prices_and_context_window.json

For every chat key of LiteLLM's file whose provider is one of `foreign.MAJOR`, whether our
table resolves it as a span naming that provider would be resolved, and whether genai-prices
(a development tool: pip install -e '.[dev]') finds a model for it with that provider. Prints
one line per provider and the total; the README's coverage figures come from this command.
``same`` counts the keys that resolve with every LiteLLM rate equal to ours (the rest differ:
a regional key priced at the list rate, a figure the two sources disagree on).
LiteLLM's file: the ``litellm/model_prices_and_context_window_backup.json`` inside its wheel
(``pip download --no-deps litellm``), never a dependency of ours.
"""

from __future__ import annotations

import sys
from pathlib import Path

from otel_costattr.pricing.foreign import MAJOR, compare, read_foreign
from otel_costattr.pricing.table import load_pricing

if __package__ in (None, ""):  # run as a script: the package is its folder's
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pricing_refresh.genai_source import model_finder  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    table = load_pricing(use_env=False)
    _, prices = read_foreign(argv[0])
    finds = model_finder()
    rows: dict[str, list[int]] = {}
    for diff in compare(table, prices):
        pid = table.provider_id(diff.foreign.provider)
        if pid not in MAJOR:
            continue
        row = rows.setdefault(pid, [0, 0, 0, 0])
        row[0] += 1
        row[1] += diff.status in ("same", "differs")
        row[2] += bool(finds and finds(diff.foreign.model, pid))
        row[3] += diff.status == "same"
    print(f"pricing {table.version}: LiteLLM chat keys of the major providers that resolve")
    print(f"{'provider':<12} {'keys':>5} {'ours':>6} {'genai-prices':>13} {'same':>6}")
    total = [0, 0, 0, 0]
    for pid, row in sorted(rows.items()):
        total = [t + r for t, r in zip(total, row, strict=True)]
        n, ours, theirs, same = row
        gp = f"{100 * theirs / n:12.0f}%" if finds else f"{'-':>13}"
        print(f"{pid:<12} {n:>5} {100 * ours / n:5.0f}% {gp} {100 * same / n:5.0f}%")
    n, ours, theirs, same = total
    gp = f"{100 * theirs / n:12.1f}%" if finds else f"{'-':>13}"
    print(f"{'total':<12} {n:>5} {100 * ours / n:5.1f}% {gp} {100 * same / n:5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
