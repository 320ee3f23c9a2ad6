"""With --base-url at a path (a reverse proxy at /costs that passes the path on), a 401 to an
OTLP export is OTLP's: a google.rpc.Status in the request's content type, as at /v1/traces.
And a 421 to an export (no token, another Host) is a Status too. A real server (uvicorn, as
`serve` runs it), real requests."""

from __future__ import annotations

import http.client
import json

from google.rpc.status_pb2 import Status
from serverutil import serving

TOKEN = "t" * 20
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _post(url: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
    """(status, content type, body) of a POST with exactly these headers (Host among them:
    a proxy's, or another name's)."""
    conn = http.client.HTTPConnection(url.split("//")[1], timeout=30)
    try:
        conn.putrequest("POST", path, skip_host="Host" in headers)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        answer = conn.getresponse()
        return answer.status, answer.getheader("Content-Type", ""), answer.read()
    finally:
        conn.close()


def test_a_401_on_an_export_under_the_base_path_is_a_status_in_its_type(tmp_path, table):
    with serving(tmp_path / "s.duckdb", table=table, base_path="/costs", token=TOKEN) as srv:
        for path in ("/v1/traces", "/costs/v1/traces"):  # the proxy stripped the path, or passed it
            status, kind, body = _post(srv.url, path, b"", PROTOBUF)
            assert (status, kind) == (401, "application/x-protobuf"), path
            assert Status.FromString(body).code == 16, path
            status, _, body = _post(srv.url, path, b"{}", {"Content-Type": "application/json"})
            assert (status, json.loads(body)["code"]) == (401, 16), path
        # with the token, the export goes through under both paths
        for path in ("/v1/traces", "/costs/v1/traces"):
            status, _, _ = _post(srv.url, path, b"", {**PROTOBUF, "Authorization": f"Bearer {TOKEN}"})
            assert status == 200, path


def test_a_421_to_an_export_is_a_status_in_its_type(tmp_path, table):
    """Without a token, a request for another name is 421 (DNS rebinding); to an OTLP exporter
    that answer is OTLP's too (the spec: every 4xx body is a google.rpc.Status), not text."""
    elsewhere = {"Host": "costs.internal:4318"}
    with serving(tmp_path / "s.duckdb", table=table) as srv:
        status, kind, body = _post(srv.url, "/v1/traces", b"", {**elsewhere, **PROTOBUF})
        assert (status, kind) == (421, "application/x-protobuf")
        assert "--base-url" in Status.FromString(body).message
        json_type = {"Content-Type": "application/json"}
        status, kind, body = _post(srv.url, "/v1/traces", b"{}", {**elsewhere, **json_type})
        assert (status, kind) == (421, "application/json")
        assert "--base-url" in json.loads(body)["message"]
        status, kind, _ = _post(srv.url, "/api/v1/stats", b"", elsewhere)  # elsewhere: the text line
        assert (status, kind) == (421, "text/plain; charset=utf-8")
