"""Poster pre-rendering: ids in, posters in the store out. Safe to run twice (renders are content-addressed)."""
from __future__ import annotations

import logging

from app.outbox import emit_many, job
from app.posters.service import partner_ids, prerender_member_posters
from app.posters.storage import poster_store
from app.posters.templates import PRERENDER_TEMPLATE, get_template
from app.runtime import Runtime

log = logging.getLogger(__name__)
PRERENDER_MEMBER = "posters.prerender_member"


@job(PRERENDER_MEMBER, queue="posters")
def prerender_member(rt: Runtime, member_id: int, template_id: int | None = None) -> int:
    """A new partner's posters, or one partner's poster for an edited template."""
    with rt.session() as session:
        return prerender_member_posters(session, poster_store(rt.settings), member_id,
                                        rt.settings.public_base_url, template_id)


@job(PRERENDER_TEMPLATE, queue="posters")
def prerender_template(rt: Runtime, template_id: int) -> int:
    """After a template edit or activation: one job per partner, so a slow avatar delays only its own poster."""
    with rt.session() as session:
        template = get_template(session, template_id)
        if not template.active:
            return 0
        version = template.current_version
        members = partner_ids(session)
        emit_many(session, [(PRERENDER_MEMBER, [member_id, template_id],
                             f"poster-member-{member_id}-t{template_id}-v{version}") for member_id in members])
    log.info("queued %d poster renders for template %s v%s", len(members), template_id, version)
    return len(members)
