"""The text of a hand-edited configuration file (a price file, an alert rule file).

One reader, so every such file is read alike and fails with the same one-line messages naming
it: unreadable, not UTF-8 text. A leading UTF-8 byte order mark (Windows editors write one)
is dropped, not reported as a TOML syntax error at line 1 column 1.
"""

from __future__ import annotations

import os

# What a file nested past the TOML parser's recursion says (tomllib raises RecursionError, not
# TOMLDecodeError, on a few thousand nested arrays or inline tables).
TOO_DEEP = "nested too deeply"


class ConfigTextError(ValueError):
    """A configuration file that cannot be read as text; the message is one line naming it."""


def read_config_text(path: str | os.PathLike[str], data: bytes | None = None) -> str:
    """The text of ``path`` (or of ``data``, its bytes already read), UTF-8 with an optional
    byte order mark; raises `ConfigTextError` ("PATH: cannot read: ...", "PATH: not UTF-8
    text")."""
    if data is None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ConfigTextError(f"{os.fspath(path)}: cannot read: {e.strerror or e}") from e
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigTextError(f"{os.fspath(path)}: not UTF-8 text") from e
