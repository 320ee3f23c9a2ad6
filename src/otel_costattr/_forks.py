"""What a forked child starts afresh: objects whose locks another thread of the parent may
have held at the fork (held for good in the child, whose next span hung on one).

`renew_in_child(obj)` once at construction; in every forked child ``obj._after_fork()`` then
runs while ``obj`` lives. One hook for the cost processor, the pricing tables, a run budget
and its notifier (the store's own, older hooks are in store/)."""

from __future__ import annotations

import logging
import os
import weakref
from typing import Any

logger = logging.getLogger(__name__)

_objects: weakref.WeakSet[Any] = weakref.WeakSet()


def renew_in_child(obj: Any) -> None:
    """Call ``obj._after_fork()`` in each forked child while ``obj`` is alive."""
    _objects.add(obj)


def _renew() -> None:
    for obj in list(_objects):
        try:
            obj._after_fork()
        except Exception:  # one object's failure leaves the others renewed
            logger.exception("otel-costattr: renewing %r after a fork failed", obj)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew)
