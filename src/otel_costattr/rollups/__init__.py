"""The bundled SQL rollups: catalogue (catalog), parameters (params), running them (queries)."""
