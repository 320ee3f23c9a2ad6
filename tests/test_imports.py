"""The package's public names, and what importing it costs."""

from __future__ import annotations

import subprocess
import sys

import otel_costattr


def test_every_public_name_resolves():
    for name in otel_costattr.__all__:
        assert getattr(otel_costattr, name) is not None, name


def test_rollups_function_is_exported():
    assert callable(otel_costattr.rollups) and "per_feature" in otel_costattr.rollups()


def test_rollups_lists_them_after_a_module_of_the_package_was_imported():
    """``from otel_costattr.rollups.queries import rollup`` first (the README's own example)
    makes ``otel_costattr.rollups`` the package: it still lists the rollups."""
    probe = (
        "import otel_costattr.rollups.queries, otel_costattr; from otel_costattr import rollups; "
        "print(otel_costattr.rollups() == rollups() == sorted(rollups()) and 'per_feature' in rollups())"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip() == "True", out.stderr


def test_processor_users_do_not_import_duckdb_or_pyarrow():
    probe = (
        "import sys; from otel_costattr import CostSpanProcessor, compute_cost; "
        "print(sorted(m for m in ('duckdb', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
