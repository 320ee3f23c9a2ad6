"""Pricing tables: the file format (parse), the loaded table and model resolution (table)."""
