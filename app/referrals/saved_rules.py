"""The operator's binding rules as saved (the one `referral_settings` row): read, change, cache the welcome.

The rules themselves are pure (`rules.py`); "settings" in this package means only the process configuration
(`rt.settings`, app/config.py)."""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.referrals.models import ReferralSettings
from app.referrals.rules import BindingRules


def _row(session: Session, lock: bool = False) -> ReferralSettings:
    row = session.get(ReferralSettings, 1, with_for_update=lock)
    if row is None:
        try:
            with session.begin_nested():
                session.add(ReferralSettings(id=1, rules=BindingRules().to_dict(), permanent_qr_used=0))
        except IntegrityError:
            pass
        row = session.get(ReferralSettings, 1, with_for_update=lock)
    return row


def get_rules(session: Session) -> BindingRules:
    return BindingRules.from_dict(_row(session).rules)


_cache: dict = {}


def cached_welcome(session: Session, ttl: float = 10.0) -> str | dict:
    """The welcome reply (text, or {"articles": [...]}), cached for a few seconds: the stream-mode callback
    should not need the database."""
    import time

    hit = _cache.get("welcome")
    if hit and hit[0] > time.monotonic():
        return hit[1]
    reply = get_rules(session).welcome_reply()
    _cache["welcome"] = (time.monotonic() + ttl, reply)
    return reply


def update_rules(session: Session, changes: dict) -> BindingRules:
    row = _row(session, lock=True)
    rules = BindingRules.from_dict({**row.rules, **changes}).validated()
    row.rules = rules.to_dict()
    session.flush()
    return rules


def locked_rules_row(session: Session) -> ReferralSettings:
    return _row(session, lock=True)
