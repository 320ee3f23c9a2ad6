"""The bundled SQL rollups: catalogue (catalog), parameters (params), running them (queries).

``otel_costattr.rollups()`` lists them. Importing a module of this package first (``from
otel_costattr.rollups.queries import rollup``, or the report's own imports) makes
``otel_costattr.rollups`` this package rather than that function, so the package itself
answers the call."""

import sys
import types


class _ListsRollups(types.ModuleType):
    def __call__(self) -> list[str]:
        """The names of the bundled rollups, sorted (``per_feature``, ``per_step``, ...)."""
        from .catalog import rollups

        return rollups()


sys.modules[__name__].__class__ = _ListsRollups
