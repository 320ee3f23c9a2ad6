"""The pricing refresh behind scripts/refresh_pricing.py (see its docstring for the steps)."""


class RefreshError(Exception):
    """A problem with the refresh's inputs, said in one line naming the file, entry and field."""
