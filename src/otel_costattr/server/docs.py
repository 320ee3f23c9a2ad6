"""``/docs``: the API reference as one page rendered on the server from the OpenAPI document.

FastAPI's own ``/docs`` loads Swagger UI from a CDN: blank on a machine without internet, and
a third-party script running on the server's origin (where the dashboard's cookie lives).
This page has no script and loads nothing; ``/openapi.json`` stays for tools.
"""

from __future__ import annotations

from html import escape
from typing import Any

_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "code{background:#f3f3f3;padding:0 .25em}section{border-top:1px solid #ddd;padding:.5rem 0}"
    "table{border-collapse:collapse}td,th{text-align:left;padding:.1rem .6rem .1rem 0;vertical-align:top}"
)
CSP = "default-src 'none'; style-src 'unsafe-inline'"


def render(spec: dict[str, Any], root: str = "") -> str:
    """The reference page for an OpenAPI document: each operation, its parameters, its answers
    (``root``: the path the server is reached under, behind a proxy)."""
    info = spec.get("info", {})
    parts = [
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{escape(str(info.get('title', 'API')))}"
        f" API</title><style>{_STYLE}</style><h1>{escape(str(info.get('title', '')))} "
        f"{escape(str(info.get('version', '')))}</h1><p>{escape(str(info.get('summary', '')))}</p>"
        f'<p>Machine-readable: <a href="{escape(root)}/openapi.json"><code>/openapi.json</code></a>.</p>'
    ]
    for path, operations in spec.get("paths", {}).items():
        for method, op in operations.items():
            parts.append(
                f"<section><h2><code>{escape(method.upper())} {escape(path)}</code></h2>"
                f"<p>{escape(str(op.get('summary', '')))}</p>"
            )
            if op.get("description"):
                parts.append(f"<p>{escape(str(op['description']))}</p>")
            params = op.get("parameters", [])
            if params:
                parts.append("<table><tr><th>parameter<th>in<th>type<th>required<th>about")
                for p in params:
                    schema = p.get("schema", {})
                    kind = schema.get("type") or "/".join(
                        str(s.get("type", "")) for s in schema.get("anyOf", []) if s.get("type") != "null"
                    )
                    parts.append(
                        f"<tr><td><code>{escape(str(p.get('name', '')))}</code>"
                        f"<td>{escape(str(p.get('in', '')))}"
                        f"<td>{escape(str(kind))}<td>{'yes' if p.get('required') else 'no'}"
                        f"<td>{escape(str(p.get('description', '')))}"
                    )
                parts.append("</table>")
            answers = ", ".join(
                f"{escape(str(code))} {escape(str(r.get('description', '')))}"
                for code, r in op.get("responses", {}).items()
            )
            parts.append(f"<p>Answers: {answers}</p></section>")
    return "".join(parts) + "</html>"
