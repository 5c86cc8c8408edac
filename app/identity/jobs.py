"""Identity jobs (ids only, idempotent): asking WeChat for a follower's unionid after the callback answered."""
from __future__ import annotations

import logging

from app.identity.followers import JOB, link_follower, needs_unionid
from app.outbox import RetryLater, job
from app.runtime import Runtime
from wechat.clients import official_account
from wechat.errors import WeChatError

log = logging.getLogger(__name__)
NOT_A_FOLLOWER = (40003,)  # not an openid of this service account: asking again will not help
QUOTA_EXCEEDED = 45009  # the account's daily quota for this API is spent


@job(JOB)
def link_follower_job(rt: Runtime, openid: str) -> str:
    """`cgi-bin/user/info` for one follower, then `link_follower` (which may merge with the mini-program member).

    Safe to run twice: a member that has its unionid already is not asked about again, and attaching the same
    unionid twice changes nothing. WeChat errors other than "not our openid" are raised, so the outbox retries
    with backoff."""
    with rt.session() as s:
        if not needs_unionid(s, openid):
            return "nothing to do"
    try:
        info = official_account(rt.settings, rt.redis).user_info(openid)
    except WeChatError as exc:
        if exc.errcode in NOT_A_FOLLOWER:
            log.warning("user/info refused openid %s: %s %s", openid, exc.errcode, exc.errmsg)
            return f"refused: {exc.errcode}"
        if exc.errcode == QUOTA_EXCEEDED:
            raise RetryLater(3600, "user/info daily quota reached") from None
        raise
    unionid = info.get("unionid")
    if not unionid:  # unfollowed meanwhile, or the account is not bound to an open-platform account
        return "no unionid" if info.get("subscribe") else "not following"
    with rt.session() as s:
        outcome = link_follower(s, openid, unionid)
    if outcome == "merge_refused":
        log.warning("follower %s is the same person as another member, but the merge was refused (flagged)", openid)
    return outcome
