"""A member bound by a team campaign code joins that team (unless already in one)."""
from __future__ import annotations

from app.events import Event, first_receipt, subscriber
from app.referrals.models import ReferralCode
from app.runtime import Runtime
from app.teams import membership

JOIN_BY_CODE = "teams.join_by_code"


@subscriber("member.bound", name=JOIN_BY_CODE)
def join_by_code(rt: Runtime, event: Event) -> str:
    code_id = event.data.get("code_id")
    if not code_id:
        return "no code"
    with rt.session() as s:
        if not first_receipt(s, JOIN_BY_CODE, event.id):
            return "already applied"
        code = s.get(ReferralCode, code_id)
        team_id = code.team_id if code is not None else None
        if team_id is None:
            return "not a team code"
        return "joined" if membership.join_by_code(s, event.data["member_id"], team_id) else "not joined"
