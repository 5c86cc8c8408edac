"""The layer order of the code base, bottom first. A package may import only itself and packages listed before
it; `tests/test_layers.py` walks every import (function-local ones included) and fails on any other.
docs/architecture.md draws the same order.

Reactions go upwards without imports: a domain records a domain event (app.events) and the packages above it
subscribe; a domain that needs another's rows moved on a member merge registers a hook with app.members."""
from __future__ import annotations

KERNEL = ("app.layers", "app.config", "app.errors", "app.types", "app.crypto", "app.modules", "app.db", "app.migrate",
          "app.outbox", "app.events", "app.audit", "app.runtime", "app.health")
ADAPTERS = ("wechat", "posters")  # WeChat protocols and the poster renderer: no domain knowledge
DOMAINS = ("app.fraud", "app.members", "app.identity", "app.grades", "app.ledger", "app.commissions",
           "app.referrals", "app.orders", "app.reports", "app.teams", "app.boards", "app.posters",
           "app.withdrawals", "app.notifications")
ENTRY_POINTS = ("app.demo", "app.api", "app.cli", "app", "workers")  # HTTP, CLI, the app factory, RQ workers
LAYERS = KERNEL + ADAPTERS + DOMAINS + ENTRY_POINTS


def unit_of(module: str) -> str | None:
    """The layer unit a dotted module name belongs to (None: not ours, e.g. a third-party library)."""
    parts = module.split(".")
    if parts[0] in ("wechat", "posters", "workers"):
        return parts[0]
    if parts[0] != "app":
        return None
    if len(parts) == 1:
        return "app"
    candidate = f"app.{parts[1]}"
    return candidate if candidate in LAYERS else None


def allowed(importer: str, imported: str) -> bool:
    a, b = unit_of(importer), unit_of(imported)
    if a is None or b is None or a == b:
        return True
    return LAYERS.index(b) < LAYERS.index(a)
