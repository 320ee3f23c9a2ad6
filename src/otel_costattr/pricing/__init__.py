"""Pricing tables: the data model (model), the file format (parse), a priced model and its
price history (entry), the loaded table and model resolution (table)."""
