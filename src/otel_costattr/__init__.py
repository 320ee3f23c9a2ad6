"""otel-costattr: turn OpenTelemetry GenAI spans into dollars per feature, agent, step and run."""

from .cost.engine import MAX_TOKENS, BillableTokens, CallCost, CostStatus, Usage, compute_cost
from .pricing.entry import ModelEntry
from .pricing.model import PricePeriod, PricingError, Rates
from .pricing.table import ENV_PRICING_FILES, PriceTable, default_pricing, load_pricing
from .sdk.processor import CostSpanProcessor
from .semconv import ModelCall, SpanRole, read_model_call, span_role
from .version import __version__

# The exporter and the rollups need duckdb and pyarrow; a user who only wants the processor
# (or the cost engine) should not pay for importing them. PEP 562 lazy attributes.
_LAZY = {
    "DuckDBSpanExporter": "store.exporter",
    "RollupError": "rollups.errors",
    "RollupParamError": "rollups.errors",
    "UnknownRollup": "rollups.errors",
    "load_prices": "rollups.queries",
    "rollup": "rollups.queries",
    "rollups": "rollups.catalog",
    "whatif": "rollups.whatif",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_costattr' has no attribute {name!r}")
    from importlib import import_module

    # Bind every lazy name of that subpackage at once: next time, plain attributes. This also
    # puts the function `rollups` over the attribute that importing the subpackage
    # otel_costattr.rollups set to the subpackage itself.
    family = module.split(".")[0]
    for lazy, home in _LAZY.items():
        if home.split(".")[0] == family:
            globals()[lazy] = getattr(import_module(f".{home}", __name__), lazy)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ENV_PRICING_FILES",
    "MAX_TOKENS",
    "BillableTokens",
    "CallCost",
    "CostSpanProcessor",
    "CostStatus",
    "DuckDBSpanExporter",
    "ModelCall",
    "ModelEntry",
    "PricePeriod",
    "PriceTable",
    "PricingError",
    "Rates",
    "RollupError",
    "RollupParamError",
    "SpanRole",
    "UnknownRollup",
    "Usage",
    "__version__",
    "compute_cost",
    "default_pricing",
    "load_prices",
    "load_pricing",
    "read_model_call",
    "rollup",
    "rollups",
    "span_role",
    "whatif",
]
