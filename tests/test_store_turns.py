"""Turns at a store file between one process's readers and writers (store/turns.py): readers
together, a writer alone, and neither side able to keep the other out. Then the reason for
them: a server whose API is read back to back still ingests what it acknowledged."""

from __future__ import annotations

import threading
import time

import pytest
from serverutil import serving
from test_server_api import T0, run_spans
from test_server_otlp import JS, json_request

from otel_costattr.store.turns import Turns, TurnTimeout, turns


class Loop:
    """``n`` threads taking ``turn()`` back to back, each holding it ``hold`` seconds."""

    def __init__(self, n: int, turn, hold: float = 0.005) -> None:
        self.stop = threading.Event()
        self.taken = 0
        self.inside = 0
        self.most = 0
        self._lock = threading.Lock()

        def run() -> None:
            while not self.stop.is_set():
                with turn():
                    with self._lock:
                        self.taken += 1
                        self.inside += 1
                        self.most = max(self.most, self.inside)
                    time.sleep(hold)
                    with self._lock:
                        self.inside -= 1

        self.threads = [threading.Thread(target=run, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def test_readers_back_to_back_cannot_keep_a_writer_out():
    gate = Turns()
    readers = Loop(3, lambda: gate.reading(30.0))
    try:
        for _ in range(20):  # each turn comes; a reader never reads while it is held
            with gate.writing(30.0):
                inside = readers.inside
            assert inside == 0
        assert readers.most >= 2  # the readers did share the file
    finally:
        readers.close()


def test_writers_back_to_back_cannot_keep_a_reader_out():
    gate = Turns()
    writers = Loop(2, lambda: gate.writing(30.0))
    try:
        for _ in range(20):
            with gate.reading(30.0):
                inside = writers.inside
            assert inside == 0
        assert writers.most == 1  # one writer at a time
    finally:
        writers.close()


def test_a_writer_may_write_again_inside_its_turn_and_a_late_turn_fails_as_asked():
    gate = Turns()
    with gate.writing(1.0), gate.writing(1.0):  # database.writing inside an ingest round
        done = []
        t = threading.Thread(target=lambda: done.append(_try(lambda: gate.reading(0.05))))
        t.start()
        t.join(10)
        assert done == ["TurnTimeout"]
    with gate.reading(1.0):
        with pytest.raises(KeyError, match="no turn to write in 0.05s"), gate.writing(0.05, KeyError):
            pass
        with gate.reading(1.0):  # a writer that gave up holds no reader back
            pass
    assert turns("x.duckdb") is turns("./x.duckdb")


def _try(turn) -> str:
    try:
        with turn():
            return "read"
    except TurnTimeout:
        return "TurnTimeout"


def test_a_forked_child_takes_no_turn_its_parent_held(tmp_path):
    # A writer's turn held in the parent at the fork was copied as held: the child could
    # never write (a review: 0 of 40 children under a thread writing in a loop).
    import os

    gate = turns(str(tmp_path / "f.duckdb"))
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.writing(5.0):
            held.set()
            done.wait(30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert held.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: a turn at once, else exit 1
        try:
            with (
                turns(str(tmp_path / "f.duckdb")).writing(2.0),
                turns(str(tmp_path / "f.duckdb")).writing(2.0),
            ):
                pass
            os._exit(0)
        except BaseException:
            os._exit(1)
    done.set()
    holder.join(10)
    assert os.waitpid(pid, 0)[1] == 0


def _overlapping_reads(db, stop: threading.Event) -> list[threading.Thread]:
    """Two threads reading ``db`` as the pages do, 0.2 s each, staggered: never a gap."""
    from otel_costattr.report.live import reading

    def page(delay: float) -> None:
        time.sleep(delay)
        while not stop.is_set():
            with reading(str(db)) as con:
                con.execute("SELECT count(*) FROM spans").fetchall()
                time.sleep(0.2)

    readers = [threading.Thread(target=page, args=(d,), daemon=True) for d in (0.0, 0.1)]
    for r in readers:
        r.start()
    return readers


def test_an_alert_evaluation_beside_overlapping_reads_gets_its_turn(tmp_path, workload):
    # Its first step, ingesting the spool, opened the file read-write without a turn: beside
    # a server's readers it waited 10 s and failed "locked by another process" (a review).
    from alerts_helpers import NOW, rules_file

    from otel_costattr.alerts import check_once, load_rules

    rules = load_rules(rules_file(tmp_path / "alerts.toml", _BUDGET, "http://127.0.0.1:9/unused"))
    workload.run(NOW.replace(hour=5), ["0.30", "0.30"])
    workload.flush()
    stop = threading.Event()
    readers = _overlapping_reads(workload.path, stop)
    try:
        time.sleep(0.3)
        for _ in range(2):
            assert [r.state for r in check_once(workload.path, rules, now=NOW).evaluation.firing] == [
                "FIRING"
            ]
    finally:
        stop.set()
        for r in readers:
            r.join(30)


_BUDGET = """
[[rules]]
name = "budget"
scope = "feature"
metric = "cost"
window = "day"
timezone = "UTC"
budget = 0.50
"""


def test_a_server_read_without_a_pause_still_ingests_what_it_acknowledged(tmp_path, table):
    # Each read opened the file read-only, and DuckDB refuses a read-write open in the same
    # process meanwhile: the ingester lost every round while the reads overlapped (a review:
    # two clients polling the API, 0 to 17 spool files in 30 s, acknowledged spans in no
    # answer). Here pages' reads overlap without a gap, 0.2 s each, staggered, beside two
    # clients polling the API.
    db = tmp_path / "s.duckdb"
    with serving(db, table=table) as srv:
        stop = threading.Event()
        reads = []

        def poll() -> None:
            while not stop.is_set():
                reads.append(srv.request("GET", "/api/v1/stats?days=3650")[0])

        readers = _overlapping_reads(db, stop)
        pollers = [threading.Thread(target=poll, daemon=True) for _ in range(2)]
        for p in pollers:
            p.start()
        readers += pollers
        try:
            time.sleep(0.3)
            traces = [f"{i:04x}" + "e" * 28 for i in range(1, 21)]
            for trace in traces:
                assert srv.request("POST", "/v1/traces", json_request(run_spans(trace, 2, T0)), JS)[0] == 200
            srv.wait_ingested(30)  # while they read
            assert srv.get_json("/api/v1/stats?days=3650")["runs"] == 20
        finally:
            stop.set()
            for r in readers:
                r.join(60)
        assert reads and set(reads) == {200}
