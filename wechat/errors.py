"""Errors raised by the WeChat adapters. Callers see these, never wechatpy's or requests' exceptions."""
from __future__ import annotations


class WeChatError(Exception):
    """WeChat answered with a non-zero errcode (or could not be reached: errcode -1)."""

    def __init__(self, errcode: int, errmsg: str = ""):
        super().__init__(f"{errcode}: {errmsg}")
        self.errcode = int(errcode)
        self.errmsg = errmsg


class PushRejected(Exception):
    """A message push that must not be processed: bad signature, undecryptable, oversized or malformed XML."""


class PayError(Exception):
    """WeChat Pay definitely rejected the request (nothing happened, or it refers to a known state)."""

    def __init__(self, http_status: int, code: str, message: str = ""):
        super().__init__(f"{http_status} {code}: {message}")
        self.http_status = http_status
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        """Rejections that a later retry with identical parameters may pass (rate limits)."""
        return self.code in {"FREQUENCY_LIMITED", "FREQUENCY_LIMIT_EXCEED", "RATELIMIT_EXCEEDED"}


class PayNotFound(PayError):
    """WeChat Pay knows no bill with this number (yet: right after a submit it may still be accepting it)."""


class PayUnknownOutcome(Exception):
    """The request may or may not have taken effect: query by out_bill_no, never re-bill with a new number."""


class PayNotificationRejected(Exception):
    """A WeChat Pay notification failed signature, freshness, serial or decryption checks."""
