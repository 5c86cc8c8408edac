"""Which member a merged-away member's access token now stands for, without the database.

Access tokens are stateless and live up to MEMBER_TTL, so after a merge a token may still name the merged-away
member. Endpoints that read the database follow the merge there (app.members.service.get_member). Reads served
from Redis alone (the leaderboards) follow it through a mark instead: `member.merged` sets
`id:merged:<merged id>` to the surviving member's id for as long as a token signed before the merge can live, and
the reader checks the mark in the same round trip as its own read.

If Redis loses the marks, such a token reads as the merged-away member until it expires (at most MEMBER_TTL): the
same person's older account, on a read-only page."""
from __future__ import annotations

from datetime import timedelta

from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.identity.tokens import MEMBER_TTL
from app.members.models import MemberMerge
from app.members.service import get_member

PREFIX = "id:merged:"
MARK_SECONDS = MEMBER_TTL + 300  # outlives every token signed before the merge, with room for clock skew


def mark_key(member_id: int) -> str:
    return f"{PREFIX}{member_id}"


def mark(session: Session, r: Redis, merged_id: int) -> dict[int, int]:
    """Point the marks of `merged_id`, and of members merged into it within MARK_SECONDS (their tokens may still
    live), at the member they all live on as now. Idempotent; returns {merged id: survivor id}."""
    survivor = get_member(session, merged_id).id
    since = utcnow() - timedelta(seconds=MARK_SECONDS)
    ids, frontier = [merged_id], [merged_id]
    while frontier and len(ids) < 1000:  # chains of merges are short; this bounds a pathological one
        frontier = list(session.scalars(select(MemberMerge.merged_id).where(MemberMerge.kept_id.in_(frontier),
                                                                            MemberMerge.created_at >= since)))
        ids += frontier
    pipe = r.pipeline(transaction=False)
    for member_id in ids:
        pipe.set(mark_key(member_id), survivor, ex=MARK_SECONDS)
    pipe.execute()
    return {member_id: survivor for member_id in ids}
