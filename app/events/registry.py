"""Who listens to which event. Subscribers register from `app/<package>/subscribers.py` (loaded for every
package by `app.modules.load_plugins`), in the spirit of blinker signals, but durable: delivery goes through the
outbox, one row per (event, subscriber)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from app.modules import load_plugins
from app.outbox.jobs import QUEUES

# The events the domains record. A subscriber to a name not listed here is a typo, refused at registration.
EVENT_NAMES = frozenset({
    "member.bound",          # {member_id, referrer_id, previous_referrer_id, code_id, store_id, channel}
    "member.merged",         # {kept_id, merged_id}: two members proven one person; merged_id lives on as kept_id
    "partner.activated",     # {member_id, source}
    "order.paid",            # {order_id, buyer_id, paid_fen, referrer_ids (level 1, level 2)}
    "order.refunded",        # {order_id, buyer_id, refund_id, amount_fen, refunded_total_fen}
    "commission.accrued",    # {commission_id, order_id, earner_id, level, amount_fen}
    "commission.matured",    # {member_id, amount_fen, batch_id}  (one per earner and maturation batch)
    "commission.reversed",   # {order_id, refund_id, reversals: [{commission_id, earner_id, amount_fen}]}
    "withdrawal.awaiting_confirmation",  # {withdrawal_id, member_id, net_fen}: WeChat waits for the member
    "withdrawal.paid",       # {withdrawal_id, member_id, net_fen}
    "withdrawal.failed",     # {withdrawal_id, member_id, state, reason, amount_fen}: FAIL, CANCELLED or REJECTED
    "grade.changed",         # {member_id, from, to, actor}
    "team.joined",           # {team_id, member_id, captain_id, via}: joined or moved into a team
    "contest.frozen",        # {contest_id, kind, metric}: results (and the prizes they pay) are final
    "prize.granted",         # {prize_id, member_id, contest_id, amount_fen}: a contest prize paid to the member
    "badge.earned",          # {member_id, badge, title, value}
})


@dataclass(frozen=True)
class Event:
    id: int
    name: str
    data: dict
    occurred_at: datetime


@dataclass(frozen=True)
class Subscriber:
    name: str
    event: str
    fn: Callable  # fn(rt, event: Event)
    queue: str


_by_event: dict[str, list[Subscriber]] = {}
_by_name: dict[str, Subscriber] = {}


def subscriber(event: str, *, name: str, queue: str = "default"):
    """Register `fn(rt, event)` for events named `event`. `name` is stable: outbox rows and receipts carry it."""
    if event not in EVENT_NAMES:
        raise ValueError(f"unknown event {event!r}")
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")

    def register(fn: Callable) -> Callable:
        known = _by_name.get(name)
        if known is not None:
            if known.fn.__qualname__ != fn.__qualname__ or known.event != event:
                raise ValueError(f"subscriber {name!r} is registered twice")
            return fn
        sub = _by_name[name] = Subscriber(name, event, fn, queue)
        _by_event.setdefault(event, []).append(sub)
        return fn

    return register


def subscribers_of(event: str) -> list[Subscriber]:
    load_plugins()  # subscribers register themselves when their package's module is imported
    return list(_by_event.get(event, ()))


def subscriber_named(name: str) -> Subscriber | None:
    load_plugins()
    return _by_name.get(name)


def remove_subscriber(name: str) -> None:
    """Unregister a subscriber (tests that register their own)."""
    sub = _by_name.pop(name, None)
    if sub is not None:
        _by_event[sub.event].remove(sub)
