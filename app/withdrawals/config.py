"""Payout tuning, read from the environment (defaults suit production; tests and the chaos run shorten them).

| variable | default | meaning |
|---|---|---|
| PAYOUT_HTTP_TIMEOUT | 10 | seconds to wait for WeChat Pay's answer (then: unknown outcome, query later) |
| WECHATPAY_RATE_LIMIT | 100 | requests/s to WeChat Pay per merchant, shared by all workers (Redis) |
| WECHATPAY_RATE_BURST | 5 | requests allowed at once above the steady rate |
| PAYOUT_ACCEPT_GRACE | 10 | seconds after a submit during which NOT_FOUND means "still being accepted" |
| PAYOUT_BACKOFF_BASE / PAYOUT_BACKOFF_MAX | 2 / 300 | retry backoff (doubling, jittered) for unknown outcomes |
| PAYOUT_CONFIRM_RECHECK | 1800 | seconds between reconciliation queries of a bill waiting for the user's confirmation |
| PAYOUT_CANCEL_FOLLOWUP | 10 | seconds after a member's cancel before the payout job queries the CANCELING bill |
"""
from __future__ import annotations

import os
from dataclasses import dataclass


def _f(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


@dataclass(frozen=True)
class PayoutConfig:
    http_timeout: float = 10.0
    rate_per_s: float = 100.0
    rate_burst: int = 5
    accept_grace: float = 10.0
    backoff_base: float = 2.0
    backoff_max: float = 300.0
    confirm_recheck: float = 1800.0
    cancel_followup: float = 10.0


def payout_config() -> PayoutConfig:
    return PayoutConfig(http_timeout=_f("PAYOUT_HTTP_TIMEOUT", 10.0), rate_per_s=_f("WECHATPAY_RATE_LIMIT", 100.0),
                        rate_burst=int(_f("WECHATPAY_RATE_BURST", 5)), accept_grace=_f("PAYOUT_ACCEPT_GRACE", 10.0),
                        backoff_base=_f("PAYOUT_BACKOFF_BASE", 2.0), backoff_max=_f("PAYOUT_BACKOFF_MAX", 300.0),
                        confirm_recheck=_f("PAYOUT_CONFIRM_RECHECK", 1800.0),
                        cancel_followup=_f("PAYOUT_CANCEL_FOLLOWUP", 10.0))
