"""Poster pre-rendering: ids in, posters in the store out. Safe to run twice (renders are content-addressed)."""
from __future__ import annotations

import logging

from app.posters.service import partner_ids, prerender_member_posters
from app.posters.storage import poster_store
from app.posters.templates import get_template
from app.runtime import get_runtime
from workers.queues import enqueue

log = logging.getLogger(__name__)


def prerender_member(member_id: int, template_id: int | None = None) -> int:
    """A new partner's posters, or one partner's poster for an edited template."""
    rt = get_runtime()
    with rt.session() as session:
        return prerender_member_posters(session, poster_store(rt.settings), member_id,
                                        rt.settings.public_base_url, template_id)


def prerender_template(template_id: int) -> int:
    """After a template edit or activation: one job per partner, so a slow avatar delays only its own poster."""
    rt = get_runtime()
    with rt.session() as session:
        template = get_template(session, template_id)
        if not template.active:
            return 0
        version = template.current_version
        members = partner_ids(session)
    for member_id in members:
        enqueue("workers.jobs_posters.prerender_member", member_id, template_id, queue="posters",
                job_id=f"poster-member-{member_id}-t{template_id}-v{version}")
    log.info("queued %d poster renders for template %s v%s", len(members), template_id, version)
    return len(members)
