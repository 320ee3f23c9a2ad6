"""The billing rule (billing), the cost engine (engine) and its compiled per-attribute-shape
fast path (compiled)."""
