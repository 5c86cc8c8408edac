"""Pre-rendering: after a template change and for a new partner, enqueued after commit, ids only, idempotent."""
from __future__ import annotations

from rq import Queue
from sqlalchemy import func, select

from app.posters import service, templates
from app.posters.models import PosterRender
from app.posters.storage import poster_store
from posters.samples import REFERENCE_SPEC
from tests.posters.conftest import make_poster_partner
from workers import jobs_posters


def _template(session, store, background):
    bg = templates.upload_background(session, store, background, "operator:1")
    return templates.create_template(session, "operator:1", "春季", {**REFERENCE_SPEC, "background": {"sha256": bg.sha256}})


def test_a_template_change_queues_a_render_per_partner_after_commit(rt, session, poster_dir, background):
    a, b = make_poster_partner(session, "甲"), make_poster_partner(session, "乙")
    queue = Queue("posters", connection=rt.redis)
    queue.empty()  # becoming partners queued their own renders; this test is about the template change
    t = _template(session, poster_store(rt.settings), background)
    assert queue.count == 0  # nothing before the commit
    session.commit()
    assert queue.job_ids == [f"poster-template-{t.id}-v1"]
    assert queue.fetch_job(queue.job_ids[0]).args == (t.id,)
    assert jobs_posters.prerender_template(t.id) == 2
    assert sorted(queue.job_ids[1:]) == sorted(f"poster-member-{m.id}-t{t.id}-v1" for m in (a, b))


def test_nothing_is_queued_when_the_edit_rolls_back(rt, session, poster_dir, background):
    _template(session, poster_store(rt.settings), background)
    session.rollback()
    assert Queue("posters", connection=rt.redis).count == 0


def test_prerendering_a_partner_twice_renders_once(rt, session, poster_dir, background, monkeypatch):
    monkeypatch.setattr("app.posters.service.fetch_avatar", lambda url: None)
    partner = make_poster_partner(session, "张小凡")
    t = _template(session, poster_store(rt.settings), background)
    session.commit()
    assert jobs_posters.prerender_member(partner.id, t.id) == 1
    assert jobs_posters.prerender_member(partner.id) == 1
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(PosterRender)) == 1
    poster = service.member_poster(session, poster_store(rt.settings), partner.id, rt.settings.public_base_url)
    assert poster["cached"] is True


def test_a_new_partner_is_queued_for_prerendering(rt, session, poster_dir):
    partner = make_poster_partner(session, "新人")  # becoming a partner schedules it, after the commit
    assert Queue("posters", connection=rt.redis).job_ids == [f"poster-member-{partner.id}"]
    from app.referrals import partners

    partners.make_partner(session, partner.id, "designated")  # already a partner: nothing more queued
    session.commit()
    assert Queue("posters", connection=rt.redis).job_ids == [f"poster-member-{partner.id}"]


def test_members_who_are_not_partners_are_skipped_quietly(rt, session, poster_dir, background):
    from tests.factories import make_member

    consumer = make_member(session, "路人")
    _template(session, poster_store(rt.settings), background)
    session.commit()
    assert jobs_posters.prerender_member(consumer.id) == 0
