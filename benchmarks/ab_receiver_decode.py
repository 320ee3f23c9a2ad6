"""The receiver's decoding of one request body, this tree against another, alternated in fresh processes.

    python benchmarks/ab_receiver_decode.py REF [--spans 1000] [--rounds 3] [--repeat 30]

``server.otlp_wire.decode`` of the same 1,000-span request (made by a real TracerProvider, as
`bench_exporter` makes them) as protobuf and as OTLP JSON: a fresh parse every time, best of
``--repeat``, in a fresh process per tree and round, the trees alternated so a change in
machine load hits both. REF is a commit (``git archive REF src queries pricing``, its ``src``
first on PYTHONPATH). Prints each process's figures, then the medians. Never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def best(fn, repeat: int) -> float:
    """The fastest of ``repeat`` calls, in ms."""
    return min(timeit.repeat(fn, number=1, repeat=repeat)) * 1e3


def worker(spans: int, repeat: int) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_exporter import make_spans
    from bench_receiver import json_bodies
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    import otel_costattr
    from otel_costattr.server import otlp_wire as wire

    made = make_spans(spans)
    pb, js = encode_spans(made).SerializeToString(), json_bodies([made])[0]
    wire.decode(pb, wire.PROTOBUF)  # classes and imports, once
    wire.decode(js, wire.JSON)
    figures = {
        "src": str(Path(otel_costattr.__file__).parents[1]),
        "protobuf_ms": min(timeit.repeat(lambda: wire.decode(pb, wire.PROTOBUF), number=1, repeat=repeat))
        * 1e3,
        "json_ms": best(lambda: wire.decode(js, wire.JSON), repeat),
    }
    print(json.dumps(figures))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ref")
    parser.add_argument("--spans", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.spans, args.repeat)
        return 0
    with tempfile.TemporaryDirectory(prefix="ab-decode-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.ref, "src", "queries", "pricing"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        trees = {args.ref: str(Path(tmp) / "src"), "this tree": None}
        results: dict[str, list[dict]] = {name: [] for name in trees}
        print(f"load {Path('/proc/loadavg').read_text().strip()} at start", file=sys.stderr)
        for _ in range(args.rounds):
            for name, src in trees.items():
                env = dict(os.environ)
                if src:
                    env["PYTHONPATH"] = src
                cmd = [sys.executable, __file__, args.ref, "--worker", "--spans", str(args.spans)]
                out = subprocess.run(
                    [*cmd, "--repeat", str(args.repeat)], env=env, capture_output=True, text=True
                )
                if out.returncode:
                    raise SystemExit(out.stderr)
                figures = json.loads(out.stdout)
                if src and not figures["src"].startswith(src):
                    raise SystemExit(f"{name} did not import from {src}")
                print(name, out.stdout.strip())
                results[name].append(figures)
        for name, runs in results.items():
            pb = statistics.median(r["protobuf_ms"] for r in runs)
            js = statistics.median(r["json_ms"] for r in runs)
            print(f"{name:>12}: protobuf {pb:.1f} ms, JSON {js:.1f} ms per {args.spans} spans (medians)")
        print(f"load {Path('/proc/loadavg').read_text().strip()} at end", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
