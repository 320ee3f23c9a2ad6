"""Receive throughput of `otel-costattr serve`, next to the in-process exporter, in one run.

    python benchmarks/bench_receiver.py [--spans 70000] [--batch 1000] [--repeat 3]
                                        [--kinds http-pb-raw ...] [--baseline REF]

- in-process: `DuckDBSpanExporter.export()` of every batch, then ``force_flush()``
  (`bench_exporter.measure`, the same spans and price table).
- http-protobuf: the OpenTelemetry Python OTLP/HTTP span exporter in this process sending
  every batch to ``otel-costattr serve`` in another process; the clock stops when the server
  says every span is stored and its spool is empty (``/healthz``).
- http-pb-raw: the same protobuf bodies encoded before the clock starts, posted with
  ``http.client`` on one keep-alive connection (``--clients N``: N connections at once, each
  posting its share in turn, as several producers would): the server alone, without the
  exporter's encoding competing for the same cores.
- http-json: the same batches as OTLP JSON (hex ids, as the JS SDK sends them), posted the
  same way (the Python SDK has no JSON exporter).
- grpc: the OpenTelemetry Python OTLP/gRPC span exporter.

``--baseline REF`` runs every receiver a second time with the server of another commit
(``git archive REF src queries pricing``, its ``src`` first on the server's PYTHONPATH),
interleaved with this one's in the same rounds: before and after, side by side on the same
machine load. ``--kinds`` picks receivers (default: all).

``--workers 0 1 2`` runs this commit's server once per ``serve --workers`` value.

Per receiver: spans/s end to end, the server's CPU per span (user + system of the server
process and its mapping workers, from /proc, read before the server stops; "of which
workers": theirs alone), and the p50 / p99 latency of one request of ``--batch`` spans.
Figures are medians of ``--repeat`` runs; each run uses a fresh server and database.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench_exporter import ROOT, batches, make_spans, measure
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from otel_costattr.pricing.table import load_pricing

_TICK = os.sysconf("SC_CLK_TCK")
PREENCODED = ("http-json", "http-pb-raw")  # bodies encoded before the clock: the server alone
KINDS = ("http-protobuf", "http-pb-raw", "http-json", "grpc")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int, descendants: bool = True) -> float:
    """User + system CPU of ``pid`` and (``descendants``) its live descendants: the server's
    mapping workers."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # exited
        return 0.0
    total = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return total + (sum(cpu_seconds(child) for child in children(pid)) if descendants else 0.0)


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):  # the thread ended
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


class Server:
    def __init__(
        self, folder: Path, pricing: str, src: Path | None = None, workers: int | None = None
    ) -> None:
        self.port, self.grpc_port = free_port(), free_port()
        db = folder / f"serve-{time.monotonic_ns()}.duckdb"
        cmd = [sys.executable, "-m", "otel_costattr.cli", "serve", "--db", str(db), "--port", str(self.port)]
        env = dict(os.environ)
        if src is not None:  # another commit's package, found before the installed one
            env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(src), env.get("PYTHONPATH"))))
        cmd += ["--grpc-port", str(self.grpc_port), "--pricing", pricing]
        if workers is not None:
            cmd += ["--workers", str(workers)]
        self.proc = subprocess.Popen(cmd, env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                self.health()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("serve did not start") from None
                time.sleep(0.1)

    def health(self) -> dict:
        with urllib.request.urlopen(self.url + "/healthz", timeout=10) as r:
            return json.loads(r.read())

    def wait_stored(self, expected: int) -> None:
        while True:
            h = self.health()
            if h["stored_spans"] >= expected and h["pending_spool_files"] == 0:
                return
            time.sleep(0.1)  # polling costs the server CPU: not too often

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def json_bodies(work: list[list]) -> list[bytes]:
    """Each batch as OTLP JSON with hex ids (protobuf's JSON mapping writes base64)."""
    out = []
    for batch in work:
        data = json_format.MessageToDict(encode_spans(batch), use_integers_for_enums=True)
        for rs in data.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in span:
                            span[key] = base64.b64decode(span[key]).hex()
        out.append(json.dumps(data).encode())
    return out


def baseline_src(ref: str, folder: Path) -> Path:
    """``src/`` of commit ``ref``, extracted under ``folder``; checks the package imports from it."""
    out = folder / "baseline"
    out.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "src", "queries", "pricing"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    src = out / "src"
    where = subprocess.run(
        [sys.executable, "-c", "import otel_costattr; print(otel_costattr.__file__)"],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not where.startswith(str(src)):
        raise SystemExit(f"the baseline does not import from {src} but from {where}")
    return src


def run_receiver(
    kind: str,
    folder: Path,
    work: list[list],
    bodies: dict[str, list[bytes]],
    pricing: str,
    src: Path | None = None,
    clients: int = 1,
    workers: int | None = None,
) -> tuple:
    """(spans/s, server CPU µs per span, p50 ms, p99 ms) for one receiver run."""
    server = Server(folder, pricing, src, workers)
    total = sum(len(b) for b in work)
    try:
        if kind == "grpc":
            exporter = GrpcExporter(endpoint=f"127.0.0.1:{server.grpc_port}", insecure=True)
        elif kind == "http-protobuf":
            exporter = HttpExporter(endpoint=server.url + "/v1/traces")
        latencies: list[float] = []
        cpu0, own0 = cpu_seconds(server.proc.pid), cpu_seconds(server.proc.pid, False)
        start = time.perf_counter()
        if kind in PREENCODED:
            media = "application/json" if kind == "http-json" else "application/x-protobuf"
            share = [bodies[kind][i::clients] for i in range(clients)]
            with ThreadPoolExecutor(clients) as pool:
                for done in pool.map(lambda mine: post_all(server.port, mine, media), share):
                    latencies.extend(done)
        else:
            for batch in work:
                t = time.perf_counter()
                if exporter.export(batch) is not SpanExportResult.SUCCESS:
                    raise SystemExit(f"{kind}: a request failed")
                latencies.append(time.perf_counter() - t)
        server.wait_stored(total)
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(server.proc.pid) - cpu0
        workers = cpu - (cpu_seconds(server.proc.pid, False) - own0)
        if kind not in PREENCODED:
            exporter.shutdown()
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        p50 = statistics.median(latencies) * 1e3
        return total / elapsed, cpu / total * 1e6, p50, p99 * 1e3, workers / total * 1e6
    finally:
        server.stop()


def post_all(port: int, bodies: list[bytes], media: str) -> list[float]:
    """POST each body in turn on one keep-alive connection: the latency of each."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies = []
    for body in bodies:
        t = time.perf_counter()
        conn.request("POST", "/v1/traces", body, {"Content-Type": media})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"a request failed: {response.status}")
        latencies.append(time.perf_counter() - t)
    conn.close()
    return latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=70_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pricing", default=str(ROOT / "tests" / "data" / "test_prices.toml"))
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--baseline", metavar="REF", help="also run the server of this commit")
    parser.add_argument(
        "--clients", type=int, default=1, help="connections posting the pre-encoded bodies at once"
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", help="run this commit's server once per value of serve --workers"
    )
    args = parser.parse_args(argv)

    table = load_pricing([args.pricing], bundled=False, use_env=False)
    print(f"making {args.spans} spans ...", file=sys.stderr)
    spans = make_spans(args.spans)
    work = batches(spans, args.batch)
    bodies = {
        "http-json": json_bodies(work),
        "http-pb-raw": [encode_spans(b).SerializeToString() for b in work],
    }
    print(
        f"cpus {os.cpu_count()}, load {Path('/proc/loadavg').read_text().strip()} at start", file=sys.stderr
    )
    print(
        f"{'path':>24} {'spans/s':>9} {'vs in-process':>13} {'cpu us/span':>12} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'of which workers':>16}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-receiver-") as tmp:
        folder = Path(tmp)
        # tag -> (the package's src, serve --workers): this commit's, per --workers, then the baseline's
        servers: dict[str, tuple[Path | None, int | None]] = {"": (None, None)}
        if args.workers:
            servers = {f" w{n}": (None, n) for n in args.workers}
        if args.baseline:
            servers[f"@{args.baseline}"] = (baseline_src(args.baseline, folder), None)
        runs = [(kind, tag) for kind in args.kinds for tag in servers]
        results: dict[str, list] = {"in-process": [], **{kind + tag: [] for kind, tag in runs}}
        for _ in range(args.repeat):  # interleaved, so a change in load hits every path alike
            exported = measure("duckdb", len(spans), args.batch, folder, table, 0)
            results["in-process"].append((exported["spans_s"], exported["cpu_us"], None, None))
            for kind, tag in runs:
                results[kind + tag].append(
                    run_receiver(
                        kind,
                        folder,
                        work,
                        bodies,
                        args.pricing,
                        *servers[tag][:1],
                        args.clients,
                        servers[tag][1],
                    )
                )
        base = statistics.median(r[0] for r in results["in-process"])
        for kind, runs in results.items():
            rate = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            p50 = "-" if runs[0][2] is None else f"{statistics.median(r[2] for r in runs):.1f}"
            p99 = "-" if runs[0][3] is None else f"{statistics.median(r[3] for r in runs):.1f}"
            own = "-" if runs[0][2] is None else f"{statistics.median(r[4] for r in runs):.1f}"
            print(
                f"{kind:>24} {rate:>9,.0f} {rate / base:>13.2f} {cpu:>12.1f} {p50:>7} {p99:>7} {own:>16}",
                flush=True,
            )
    print(f"load {Path('/proc/loadavg').read_text().strip()} at end", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
