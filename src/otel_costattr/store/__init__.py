"""The DuckDB span store: schema and ingest (database), spool, exporter, maintenance."""
