"""What `serve`'s receiver could not keep is visible in ``store status``: spans refused as
malformed (partial_success) and requests pushed back (503), written to the spool's journal by
the sink (every ingester round, and at stop), summed across processes and journal roll-overs."""

from __future__ import annotations

import json

from serverutil import serving
from test_server_otlp import JS, json_request, span_json

from otel_costattr import cli
from otel_costattr.server import SpanSink
from otel_costattr.store import spool


def test_rejected_and_pushed_back_show_in_store_status(tmp_path, table, capsys):
    db = tmp_path / "s.duckdb"
    bad = [span_json("4444444444444444"), span_json("nothex!!"), span_json("0000000000000000")]
    for _ in range(2):  # two server lifetimes: the journal sums them
        with serving(db, table=table) as srv:
            status, _, answer = srv.request("POST", "/v1/traces", json_request(bad), JS)
            assert status == 200 and json.loads(answer)["partialSuccess"]["rejectedSpans"] == 2
        # Refused whole, which no client retries: a body that is not JSON, a type not taken
        # (counted nowhere before: a review)
        with serving(db, table=table) as srv:
            assert srv.request("POST", "/v1/traces", b"{not json", JS)[0] == 400
            assert srv.request("POST", "/v1/traces", b"x", {"Content-Type": "text/plain"})[0] == 415
            assert srv.get_json("/healthz")["refused_requests"] == 2
    full = SpanSink(db, pricing=table, max_spool_bytes=0)
    with serving(db, sink=full) as srv:
        for _ in range(3):
            assert srv.request("POST", "/v1/traces", json_request(bad[:1]), JS)[0] == 503
    assert cli.main(["store", "status", "--db", str(db), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["rejected_spans"], report["pushed_back_requests"]) == (4, 3)
    assert report["refused_requests"] == 4
    assert report["healthy"] is True and report["stored_spans"] == 1  # one span, sent twice
    assert cli.main(["store", "status", "--db", str(db), "--check"]) == 0
    out = capsys.readouterr().out
    assert (
        "received           4 spans rejected as malformed, 3 requests pushed back (503, retried), "
        "4 refused whole (400/413/415, not retried), 0 never sent whole"
    ) in out


def test_the_ingester_journals_while_serving_and_nothing_twice(tmp_path, table):
    db = tmp_path / "s.duckdb"
    with serving(db, table=table) as srv:
        srv.request("POST", "/v1/traces", json_request([span_json("nothex!!")]), JS)
        srv.wait_ingested()
        srv.sink.journal_counts()
        assert spool.journal_summary(db).rejected_spans == 1
        srv.sink.journal_counts()  # nothing new: no line
        assert spool.journal_summary(db).events == 1
    assert spool.journal_summary(db).rejected_spans == 1  # stop wrote nothing again


def test_roll_over_carries_the_receivers_counts(tmp_path, monkeypatch):
    path = tmp_path / "db.duckdb"
    spool.spool_dir(path).mkdir()
    monkeypatch.setattr(spool, "_JOURNAL_MAX_BYTES", 2000)
    for _ in range(100):
        spool.record(path, "receiver", rejected=2, pushed_back=1, incomplete=3, refused=4)
    assert (spool.spool_dir(path) / spool.JOURNAL).stat().st_size < 4000
    summary = spool.journal_summary(path)
    assert (summary.rejected_spans, summary.pushed_back_requests) == (200, 100)
    assert (summary.incomplete_requests, summary.refused_requests) == (300, 400)


def test_stop_ingests_what_is_left_and_journals_it(tmp_path, table):
    from otel_costattr.server import otlp_wire as wire
    from otel_costattr.store.spool import pending_spool

    db = tmp_path / "s.duckdb"
    sink = SpanSink(db, pricing=table)  # never started: only stop moves the spool
    records, rejected, message = wire.decode(
        json_request([span_json("nothex!!"), span_json("77" * 8)]), JS["Content-Type"]
    )
    assert sink.accept(records, rejected, message).stored == 1 and pending_spool(db)
    assert sink.stop(10) is True
    assert not pending_spool(db) and spool.journal_summary(db).rejected_spans == 1


def test_the_ingester_outlives_a_round_that_cannot_list_the_spool(tmp_path, table, monkeypatch):
    """An OSError listing the spool folder after a round (no descriptors left: a review
    exhausted them with idle connections) ended the receiver's ingest thread for good while
    /healthz said ok: every later 200 stayed in the spool until a restart. The round's error
    is now recorded, and the next round ingests."""
    import errno
    import time

    from otel_costattr.server import otlp_wire as wire
    from otel_costattr.store import database as store
    from otel_costattr.store.spool import pending_spool

    db = tmp_path / "s.duckdb"
    sink = SpanSink(db, pricing=table, ingest_interval=0.05)
    real = store.spool_bytes
    failures = []

    def out_of_descriptors(path):
        if not failures:
            failures.append(1)
            raise OSError(errno.EMFILE, "Too many open files", str(path))
        return real(path)

    monkeypatch.setattr(store, "spool_bytes", out_of_descriptors)
    sink.start()
    try:
        deadline = time.monotonic() + 30
        while not failures and time.monotonic() < deadline:
            time.sleep(0.02)
        assert failures and sink._worker.is_alive()
        records, rejected, message = wire.decode(json_request([span_json("77" * 8)]), JS["Content-Type"])
        assert sink.accept(records, rejected, message).stored == 1
        while pending_spool(db) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pending_spool(db) and sink._worker.is_alive()
    finally:
        assert sink.stop(10)


def test_requests_do_not_wait_for_each_others_fsync(tmp_path, table, monkeypatch):
    """The mapper's lock was held across the spool file's write and fsync: with no mapping
    workers (the default on one core) every request queued behind the one being fsynced.
    One request held inside its write, another completes."""
    import threading

    from otel_costattr.server import mapping as server_mapping
    from otel_costattr.server import otlp_wire as wire
    from otel_costattr.server import sink as sink_module

    db = tmp_path / "s.duckdb"
    sink = SpanSink(db, pricing=table)
    inside, release = threading.Event(), threading.Event()
    real = server_mapping.write_spool

    def slow_disk(path, rows, fsync=True):
        if not inside.is_set():
            inside.set()
            assert release.wait(30)
        return real(path, rows, fsync=fsync)

    monkeypatch.setattr(server_mapping, "write_spool", slow_disk)

    def post(span_id: str) -> None:
        records, rejected, message = wire.decode(json_request([span_json(span_id)]), JS["Content-Type"])
        assert sink.accept(records, rejected, message).stored == 1

    first = threading.Thread(target=post, args=("11" * 8,))
    first.start()
    try:
        assert inside.wait(30)
        second = threading.Thread(target=post, args=("22" * 8,))
        second.start()
        second.join(30)
        assert not second.is_alive()  # done while the first is still in its write
        assert first.is_alive()
    finally:
        release.set()
        first.join(30)
    assert sink_module.store.pending_spool(db) and sink.stop(10)
