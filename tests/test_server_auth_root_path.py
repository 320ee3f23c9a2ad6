"""With --base-url at a path (a reverse proxy at /costs that passes the path on), a 401 to an
OTLP export is OTLP's: a google.rpc.Status in the request's content type, as at /v1/traces."""

from __future__ import annotations

import json

from google.rpc.status_pb2 import Status
from starlette.testclient import TestClient

from otel_costattr.server.app import create_app

TOKEN = "t" * 20


def test_a_401_on_an_export_under_the_base_path_is_a_status_in_its_type(tmp_path):
    app = create_app(str(tmp_path / "s.duckdb"), token=TOKEN, base_url="https://costs.example/costs")
    with TestClient(app, base_url="https://costs.example") as client:
        for path in ("/v1/traces", "/costs/v1/traces"):  # the proxy stripped the path, or passed it
            answer = client.post(path, content=b"", headers={"Content-Type": "application/x-protobuf"})
            assert (answer.status_code, answer.headers["content-type"]) == (401, "application/x-protobuf"), (
                path
            )
            assert Status.FromString(answer.content).code == 16, path
            answer = client.post(path, content=b"{}", headers={"Content-Type": "application/json"})
            assert (answer.status_code, json.loads(answer.content)["code"]) == (401, 16), path
        # with the token, the export goes through under both paths
        headers = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {TOKEN}"}
        for path in ("/v1/traces", "/costs/v1/traces"):
            assert client.post(path, content=b"", headers=headers).status_code == 200, path


def test_a_421_to_an_export_is_a_status_in_its_type(tmp_path):
    """Without a token, a request for another name is 421 (DNS rebinding); to an OTLP exporter
    that answer is OTLP's too (the spec: every 4xx body is a google.rpc.Status), not text."""
    app = create_app(str(tmp_path / "s.duckdb"))
    with TestClient(app, base_url="http://costs.internal:4318") as client:
        answer = client.post("/v1/traces", content=b"", headers={"Content-Type": "application/x-protobuf"})
        assert (answer.status_code, answer.headers["content-type"]) == (421, "application/x-protobuf")
        assert "--base-url" in Status.FromString(answer.content).message
        answer = client.post("/v1/traces", content=b"{}", headers={"Content-Type": "application/json"})
        assert (answer.status_code, answer.headers["content-type"]) == (421, "application/json")
        assert "--base-url" in json.loads(answer.content)["message"]
        answer = client.get("/api/v1/stats")  # elsewhere: the plain text line, as before
        assert (answer.status_code, answer.headers["content-type"]) == (421, "text/plain; charset=utf-8")
