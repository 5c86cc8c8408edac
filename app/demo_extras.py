"""Demo data of the later domains (orders and commissions, poster templates), added as they exist."""
from __future__ import annotations


def seed_extras(session, *, captain, partner) -> str:
    return ""
