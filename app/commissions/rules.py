"""Pure commission rules: arithmetic in integer fen, rate resolution, who earns, and the state table.

No database here; tests run these directly."""
from __future__ import annotations

from dataclasses import dataclass

from app.commissions.models import LEVELS
from app.errors import IllegalTransition


def commission_fen(paid_fen: int, bps: int) -> int:
    """floor(paid × bps / 10000): the commission never rounds up; the remainder stays with the merchant."""
    if type(paid_fen) is not int or type(bps) is not int or paid_fen < 0 or not 0 <= bps <= 10000:
        raise ValueError("commission_fen takes a non-negative integer amount and 0..10000 basis points")
    return paid_fen * bps // 10000


def remaining_after_refunds(amount_fen: int, paid_fen: int, refunded_fen: int) -> int:
    """What is left of a commission once `refunded_fen` of the order's `paid_fen` has been refunded.

    floor(amount × (paid − refunded) / paid). Computing from the cumulative refund (not refund by refund) means
    several partial refunds reverse exactly what one refund of their total would, a full refund reverses
    everything, and reversals can never add up to more than the commission."""
    if not 0 <= refunded_fen <= paid_fen:
        raise ValueError("refunded amount must be within the paid amount")
    if paid_fen == 0:
        return 0
    return amount_fen * (paid_fen - refunded_fen) // paid_fen


@dataclass(frozen=True)
class Rate:
    grade: str  # '*' = any grade
    level: int
    category: str  # '*' = any category
    order_kind: str  # any | first | repeat
    bps: int


def resolve_bps(rates: tuple[Rate, ...], grade: str, level: int, category: str, is_first: bool) -> int:
    """The most specific matching rate wins: grade, then category, then order kind. No match: 0 bps."""
    kind = "first" if is_first else "repeat"
    best, best_score = 0, -1
    for r in rates:
        if r.level != level or r.grade not in ("*", grade) or r.category not in ("*", category) \
                or r.order_kind not in ("any", kind):
            continue
        score = (4 if r.grade != "*" else 0) + (2 if r.category != "*" else 0) + (1 if r.order_kind != "any" else 0)
        if score > best_score:
            best, best_score = r.bps, score
    return best


@dataclass(frozen=True)
class ChainMember:
    id: int
    active: bool
    partner: bool
    grade: str
    flagged: bool


def earners(buyer: ChainMember, referrer: ChainMember | None, referrers_referrer: ChainMember | None,
            self_purchase: bool) -> list[tuple[int, ChainMember]]:
    """Who earns on an order, as [(level, member)], at most two levels.

    - Normally the buyer's referrer earns level 1 and the referrer's referrer level 2.
    - With self-purchase on and a buyer who is an active partner, the buyer earns level 1 on their own order
      and their referrer level 2 (the chain starts one step lower; still two levels).
    - Only active partners earn. A level whose member is not a partner earns nothing and is NOT passed further
      up: compressing past them would pay a third-level ancestor, which the two-level cap forbids.
    - Nobody earns twice on one order."""
    if self_purchase and buyer.active and buyer.partner:
        chain = [buyer, referrer]
    else:
        chain = [referrer, referrers_referrer]
    out: list[tuple[int, ChainMember]] = []
    seen: set[int] = set()
    for level, m in zip(LEVELS, chain, strict=False):
        if m is None or not (m.active and m.partner) or m.id in seen:
            continue
        if m.id == buyer.id and level != 1:
            continue
        seen.add(m.id)
        out.append((level, m))
    return out


# (state, action) -> new state. Partial reversals keep the state; a reversal that empties the commission
# makes it `reversed`.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("pending", "mature"): "available",
    ("pending", "hold"): "held",
    ("held", "release"): "pending",
    ("pending", "reverse_all"): "reversed",
    ("held", "reverse_all"): "reversed",
    ("available", "reverse_all"): "reversed",
    ("pending", "cancel"): "canceled",
    ("held", "cancel"): "canceled",
    ("available", "cancel"): "canceled",
}


def transition(state: str, action: str) -> str:
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition(state, action, f"a {state} commission cannot be {action}") from None


def money_account_for(state: str) -> str | None:
    """Which member account holds a commission's money in this state (None: it holds none)."""
    return {"pending": "pending", "held": "pending", "available": "available"}.get(state)
