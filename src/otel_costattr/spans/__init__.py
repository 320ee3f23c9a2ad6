"""Finished spans as rows of the store: the content rule, tokens and identity (rows)."""
