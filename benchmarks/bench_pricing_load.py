"""Seconds to load a user pricing file of N models, this tree side by side with another commit.

    python benchmarks/bench_pricing_load.py [--models 1000 4000 8000 10000] [--against dd040a5]
                                            [--repeat 3] [--regexes 10]

Writes one synthetic provider file per N (a realistic mix: every model an `equals` rule and
a dated example; one in three also a `starts_with` rule with its own example; one in twenty
an `alias_of` an earlier model; ``--regexes`` regex rules in all) and times
`load_pricing([file])`, bundled table included, in a fresh process per measurement: once
with this tree's `src/`, once with `src/` of ``--against`` (extracted with `git archive`;
``--against ''`` skips it). Reports the best of ``--repeat`` runs, CPU seconds of the load
alone (wall time on a shared machine is noisier). The old overlap check was quadratic, so
its big runs take minutes: ``--before-max N`` skips the other commit above N models.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

MEASURE = """
import sys, time
from otel_costattr import load_pricing
start = time.process_time()
table = load_pricing([sys.argv[1]], use_env=False)
print(time.process_time() - start, sum(1 for m in table.models() if m.origin == sys.argv[1]))
"""


def synthetic_file(n: int, regexes: int) -> str:
    """A provider file of ``n`` models whose rules never overlap."""
    lines = ['provider = "synthetic"', 'otel_names = ["synthetic"]', ""]
    every = max(n // max(regexes, 1), 1)
    for i in range(n):
        mid = f"synth-{i:05d}-chat"
        lines += ["[[model]]", f'id = "{mid}"']
        if i % 20 == 19:
            lines += [f'alias_of = "synth-{i - 1:05d}-chat"', ""]
            continue
        rules = [f'{{ equals = "{mid}" }}']
        examples = [f"{mid}-2026-01-01"]
        rules.append(f"{{ regex = '{mid}-\\d{{4}}-\\d{{2}}-\\d{{2}}' }}" if regexes and i % every == 0
                     else f'{{ starts_with = "{mid}-" }}')  # fmt: skip
        if i % 3 == 0:
            rules.append(f'{{ starts_with = "eu.{mid}" }}')
            examples.append(f"eu.{mid}-v1")
        lines += [f"match = [{', '.join(rules)}]", f"examples = {examples!r}".replace("'", '"')]
        lines += ["[[model.price]]", f"input = {1 + i % 7}.25", f"output = {2 + i % 5}.5", ""]
    return "\n".join(lines)


def extract(rev: str, into: Path) -> Path:
    """``src/``, ``pricing/`` and ``queries/`` of ``rev``: what an import of it needs."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", rev, "src", "pricing", "queries"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def measure(src: Path, path: Path, repeat: int) -> tuple[float, int]:
    best, models = float("inf"), 0
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", MEASURE, str(path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=path.parent,
            env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        ).stdout.split()
        best, models = min(best, float(out[0])), int(out[1])
    return best, models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", default=[1000, 4000, 8000, 10000])
    parser.add_argument("--against", default="dd040a5", help="commit to compare with ('' for none)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    parser.add_argument("--regexes", type=int, default=10, help="regex rules in each file")
    parser.add_argument("--before-max", type=int, default=10_000, help="largest N for --against")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        other = extract(args.against, work / "against") if args.against else None
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()  # fmt: skip
        print(f"{'models':>7}  {'this tree (' + head + '+)':>22}  {args.against or '-':>12}  ratio")
        for n in args.models:
            path = work / f"synthetic-{n}.toml"
            path.write_text(synthetic_file(n, args.regexes))
            now, loaded = measure(REPO / "src", path, args.repeat)
            assert loaded == n, (loaded, n)
            if other is None or n > args.before_max:
                print(f"{n:>7}  {now:>20.2f} s  {'-':>12}")
                continue
            before, _ = measure(other, path, 1 if n > 2000 else args.repeat)
            print(f"{n:>7}  {now:>20.2f} s  {before:>10.2f} s  {before / now:5.0f}x", flush=True)


if __name__ == "__main__":
    main()
