"""Withdrawal rules and arithmetic: pure functions over integer fen.

Rounding: the fee and the tax withheld are rounded DOWN to the fen (floor). Whatever a fraction of a fen is,
it stays with the member: rounding is always in the merchant's disfavour, never the user's."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

WECHAT_MIN_TRANSFER_FEN = 10  # WeChat refuses transfers below 0.10 yuan
WECHAT_REAL_NAME_FROM_FEN = 200_000  # WeChat requires the payee's real name from 2,000 yuan


@dataclass(frozen=True)
class Rule:
    """One grade's withdrawal rule ('*' is the default for grades without their own)."""

    grade_code: str = "*"
    min_fen: int = 100
    max_fen: int = 500_000
    daily_max_fen: int = 1_000_000
    daily_count: int = 3
    fee_bps: int = 0
    fee_fixed_fen: int = 0
    tax_threshold_fen: int | None = None  # tax on the part of a request above this (None: no withholding)
    tax_bps: int = 0
    real_name_from_fen: int = WECHAT_REAL_NAME_FROM_FEN  # never above WeChat's own threshold
    auto_approve_below_fen: int = 0  # 0: every request is reviewed

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class Quote:
    amount_fen: int  # moved available -> withdrawing
    fee_fen: int
    tax_fen: int
    net_fen: int  # what the member receives in WeChat
    needs_real_name: bool


class RuleViolation(Exception):
    def __init__(self, code: str, message: str, **details):
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


def validate_rule(rule: Rule) -> None:
    ints = {f: getattr(rule, f) for f in Rule.field_names() if f != "grade_code"}
    for name, value in ints.items():
        if value is None and name == "tax_threshold_fen":
            continue
        if type(value) is not int or value < 0:
            raise RuleViolation("rule_invalid", f"{name} must be a non-negative integer (fen, bps or count).",
                                field=name)
    if rule.min_fen < WECHAT_MIN_TRANSFER_FEN:
        raise RuleViolation("rule_invalid", "WeChat's minimum transfer is 10 fen.", field="min_fen")
    if rule.max_fen < rule.min_fen:
        raise RuleViolation("rule_invalid", "max_fen is below min_fen.", field="max_fen")
    if rule.fee_bps > 10_000 or rule.tax_bps > 10_000:
        raise RuleViolation("rule_invalid", "Rates are basis points, at most 10000.", field="fee_bps")
    if rule.real_name_from_fen > WECHAT_REAL_NAME_FROM_FEN:
        raise RuleViolation("rule_invalid", "WeChat requires the real name from 2,000 yuan; the threshold "
                            "cannot be higher.", field="real_name_from_fen")


def fee_for(rule: Rule, amount_fen: int) -> int:
    return amount_fen * rule.fee_bps // 10_000 + rule.fee_fixed_fen


def tax_for(rule: Rule, amount_fen: int) -> int:
    if rule.tax_threshold_fen is None or amount_fen <= rule.tax_threshold_fen:
        return 0
    return (amount_fen - rule.tax_threshold_fen) * rule.tax_bps // 10_000


def quote(rule: Rule, amount_fen: int, *, today_fen: int = 0, today_count: int = 0) -> Quote:
    """Check a request against the rule and today's earlier requests; the fee, tax and net it will pay.

    Raises RuleViolation with a stable code."""
    if type(amount_fen) is not int or amount_fen <= 0:
        raise RuleViolation("amount_invalid", "The amount is a positive integer number of fen.")
    if amount_fen < rule.min_fen:
        raise RuleViolation("amount_below_minimum", "The amount is below the minimum withdrawal.",
                            min_fen=rule.min_fen)
    if amount_fen > rule.max_fen:
        raise RuleViolation("amount_above_maximum", "The amount is above the maximum per withdrawal.",
                            max_fen=rule.max_fen)
    if today_count + 1 > rule.daily_count:
        raise RuleViolation("daily_count_exceeded", "You have reached today's number of withdrawals.",
                            daily_count=rule.daily_count)
    if today_fen + amount_fen > rule.daily_max_fen:
        raise RuleViolation("daily_amount_exceeded", "This would exceed today's withdrawal limit.",
                            daily_max_fen=rule.daily_max_fen, withdrawn_today_fen=today_fen)
    fee, tax = fee_for(rule, amount_fen), tax_for(rule, amount_fen)
    net = amount_fen - fee - tax
    if net < WECHAT_MIN_TRANSFER_FEN:
        raise RuleViolation("net_below_minimum", "After fee and tax, less than WeChat's minimum transfer of "
                            "10 fen would remain.", fee_fen=fee, tax_fen=tax)
    needs_name = net >= min(rule.real_name_from_fen, WECHAT_REAL_NAME_FROM_FEN)
    return Quote(amount_fen, fee, tax, net, needs_name)
