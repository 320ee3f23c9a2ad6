"""The bundled SQL rollups: catalogue, parameters, running them (queries)."""
