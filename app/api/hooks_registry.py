"""Seams between sign-in and referrals: an H5 landing with a share parameter is a referral touch."""
from __future__ import annotations

from typing import Callable

_h5_landing: list[Callable] = []


def on_h5_landing(fn: Callable) -> Callable:
    _h5_landing.append(fn)
    return fn


def run_h5_landing(session, member_id: int, share: str) -> None:
    for fn in _h5_landing:
        fn(session, member_id, share)
