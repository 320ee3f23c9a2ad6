"""Pricing tables: the data model (model), the file format (parse), the loaded table and model
resolution (table)."""
