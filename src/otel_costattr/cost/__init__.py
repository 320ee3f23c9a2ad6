"""The cost engine (engine) and its compiled per-attribute-shape fast path (compiled)."""
