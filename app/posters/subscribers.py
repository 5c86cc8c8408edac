"""A new partner's share posters are rendered before they first ask for one."""
from __future__ import annotations

from app.events import Event, subscriber
from app.posters.jobs import prerender_member
from app.runtime import Runtime


@subscriber("partner.activated", name="posters.prerender_new_partner", queue="posters")
def prerender_new_partner(rt: Runtime, event: Event) -> int:
    return prerender_member(rt, event.data["member_id"])
