"""otel-costattr: turn OpenTelemetry GenAI spans into dollars per feature, agent, step and run."""

from .cost import MAX_TOKENS, BillableTokens, CallCost, CostStatus, Usage, compute_cost
from .exporter import DuckDBSpanExporter
from .pricing import (
    ENV_PRICING_FILES,
    ModelEntry,
    PriceTable,
    default_pricing,
    load_pricing,
)
from .pricing_file import PricePeriod, PricingError, Rates
from .processor import CostSpanProcessor
from .rollups import RollupError, RollupParamError, UnknownRollup, load_prices, rollup, rollups
from .semconv import ModelCall, SpanRole, read_model_call, span_role
from .version import __version__

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
]
