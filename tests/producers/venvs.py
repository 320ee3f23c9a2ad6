"""One virtualenv per producer, built once and reused while its inputs are unchanged.

The instrumentation packages pin conflicting versions (openai-v2 needs an old
opentelemetry-util-genai, for one), so they cannot share the test venv. Each
``requirements-<name>.txt`` here gets ``.venv-producers/<name>/`` at the repository root,
made with ``python -m venv`` and ``pip install -e '<repo>[otlp]' -r requirements-<name>.txt``
(the OTLP exporter is an extra, and the producers send spans onwards over OTLP too).

A venv is rebuilt when its key changes: the requirements file, pyproject.toml (an editable
install's entry points are written at install time) or the Python version. The key is
written last, so an interrupted build is never mistaken for a finished one.

``<name>-latest`` is the same venv with every pin dropped (what a new user's ``pip install``
resolves today): its requirements are written from ``requirements-<name>.txt`` into the
venv folder, and its key holds the date, so it is rebuilt at most once a day
(tests/test_producers_latest.py, run apart by .ci/run).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ROOT = REPO / ".venv-producers"
KEY_FILE = ".costattr-key"
BUILD_TIMEOUT_S = 900  # a cold build takes about 20 s here; this is a hang, not a slow mirror


class VenvBuildError(RuntimeError):
    """A producer venv could not be built; the message says which step failed and why."""


LATEST = "-latest"
_PIN = re.compile(r"^([A-Za-z0-9_.\[\]-]+)\s*(?:[=<>!~]=?[^;#]*)?(;[^#]*)?(#.*)?$")


def unpinned(text: str) -> str:
    """Requirements ``text`` with every version constraint dropped (markers kept)."""
    out = []
    for line in text.splitlines():
        found = _PIN.match(line.strip())
        if found is not None and not line.lstrip().startswith("#"):
            out.append(found.group(1) + (found.group(2) or ""))
    return "\n".join(out) + "\n"


def requirements(name: str) -> Path:
    """The requirements file of producer venv ``name`` (for ``<name>-latest``, written from
    the pinned file with the pins dropped)."""
    if name.endswith(LATEST):
        pinned = requirements(name.removesuffix(LATEST))
        path = ROOT / f"requirements-{name}.txt"
        ROOT.mkdir(exist_ok=True)
        text = unpinned(pinned.read_text(encoding="utf-8"))
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        return path
    path = HERE / f"requirements-{name}.txt"
    if not path.is_file():
        valid = sorted(p.stem.removeprefix("requirements-") for p in HERE.glob("requirements-*.txt"))
        raise ValueError(f"no producer venv {name!r}; valid: {', '.join(valid)}")
    return path


_PROJECT = "[otlp]"  # the extras the producers need: they also send spans onwards over OTLP


def venv_key(name: str) -> str:
    """What the venv of ``name`` was built from, as a short digest."""
    digest = hashlib.sha256()
    for path in (requirements(name), REPO / "pyproject.toml"):
        digest.update(path.read_bytes())
    digest.update(sys.version.encode())
    digest.update(_PROJECT.encode())  # how the project itself is installed into it
    if name.endswith(LATEST):
        digest.update(dt.date.today().isoformat().encode())  # "newest" changes: daily at most
    return digest.hexdigest()[:20]


def _bin(venv: Path, program: str) -> Path:
    return venv / ("Scripts" if sys.platform == "win32" else "bin") / program


def _run(cmd: list[str], log: Path, step: str) -> None:
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        try:
            done = subprocess.run(
                cmd, stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as e:
            raise VenvBuildError(f"{step} timed out after {BUILD_TIMEOUT_S} s (log: {log})") from e
    if done.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8").splitlines()[-25:])
        raise VenvBuildError(f"{step} failed with exit code {done.returncode} (log: {log}):\n{tail}")


def ensure_venv(name: str) -> Path:
    """The Python interpreter of producer venv ``name``, building the venv first if needed.

    Raises `VenvBuildError` naming the failed step (the tests turn it into a failure, never
    a skip: a producer that cannot be installed is a finding).
    """
    key = venv_key(name)
    venv = ROOT / name
    python = _bin(venv, "python")
    ROOT.mkdir(exist_ok=True)
    # The folder ignores itself, so it needs no line in the repository's .gitignore.
    (ROOT / ".gitignore").write_text("*\n", encoding="utf-8")
    with (ROOT / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two pytest processes must not build one venv at once
        key_file = venv / KEY_FILE
        if python.exists() and key_file.is_file() and key_file.read_text().strip() == key:
            return python
        shutil.rmtree(venv, ignore_errors=True)
        venv.mkdir(parents=True)
        log = venv / "build.log"
        started = time.monotonic()
        _run([sys.executable, "-m", "venv", str(venv)], log, f"python -m venv {venv}")
        _run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "-e", f"{REPO}{_PROJECT}", "-r", str(requirements(name))],
            log,
            f"pip install into {venv} from {requirements(name).name}",
        )  # fmt: skip
        with log.open("a", encoding="utf-8") as out:
            out.write(f"built in {time.monotonic() - started:.1f} s\n")
        key_file.write_text(key + "\n", encoding="utf-8")
        return python


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without OTEL_* or LLM vendor settings (AWS_* too: boto3's
    credentials, region and endpoints), plus ``extra``: a producer run must depend only on
    what its test sets."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "OPENAI_", "ANTHROPIC_", "OPENINFERENCE_", "TRACELOOP_", "AWS_"))
    }
    env.update(extra)
    return env


if __name__ == "__main__":
    # Build (or check) every producer venv: python tests/producers/venvs.py
    for req in sorted(HERE.glob("requirements-*.txt")):
        producer = req.stem.removeprefix("requirements-")
        t0 = time.monotonic()
        print(producer, ensure_venv(producer), f"{time.monotonic() - t0:.1f} s")
