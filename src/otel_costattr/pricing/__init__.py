"""Pricing tables: the data model (model), the file format (parse), a priced model and its
price history (entry), the id forms tried and the per-provider index (resolve), the loaded
table with its search order and caches (table)."""
