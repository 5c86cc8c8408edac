"""Pre-rendering: after a template change and for a new partner (a `partner.activated` subscriber), through the
outbox after the commit, ids only, idempotent."""
from __future__ import annotations

from sqlalchemy import func, select

from app.outbox.models import OutboxMessage
from app.posters import jobs, service, templates
from app.posters.models import PosterRender
from app.posters.storage import poster_store
from posters.samples import REFERENCE_SPEC
from tests.factories import make_partner


def _template(session, store, background):
    bg = templates.upload_background(session, store, background, "operator:1")
    return templates.create_template(session, "operator:1", "春季",
                                     {**REFERENCE_SPEC, "background": {"sha256": bg.sha256}})


def _jobs(session, name: str) -> list:
    return session.execute(select(OutboxMessage.dedupe_key, OutboxMessage.args)
                           .where(OutboxMessage.func == name).order_by(OutboxMessage.id)).all()


def test_a_template_change_queues_a_render_per_partner_after_commit(rt, session, poster_dir, background, work):
    a, b = make_partner(session, "甲"), make_partner(session, "乙")
    session.commit()
    t = _template(session, poster_store(rt.settings), background)
    session.commit()
    assert _jobs(session, "posters.prerender_template") == [(f"poster-template-{t.id}-v1", [t.id])]
    assert jobs.prerender_template(rt, t.id) == 2
    assert sorted(k for k, _ in _jobs(session, "posters.prerender_member")) == \
        sorted(f"poster-member-{m.id}-t{t.id}-v1" for m in (a, b))


def test_nothing_is_queued_when_the_edit_rolls_back(rt, session, poster_dir, background):
    _template(session, poster_store(rt.settings), background)
    session.rollback()
    assert _jobs(session, "posters.prerender_template") == []


def test_prerendering_a_partner_twice_renders_once(rt, session, poster_dir, background, monkeypatch):
    monkeypatch.setattr("app.posters.service.fetch_avatar", lambda url: None)
    partner = make_partner(session, "张小凡")
    session.commit()
    t = _template(session, poster_store(rt.settings), background)
    session.commit()
    assert jobs.prerender_member(rt, partner.id, t.id) == 1
    assert jobs.prerender_member(rt, partner.id) == 1
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(PosterRender)) == 1
    poster = service.member_poster(session, poster_store(rt.settings), partner.id, rt.settings.public_base_url)
    assert poster["cached"] is True


def test_a_new_partner_gets_a_poster_before_asking(rt, session, poster_dir, background, monkeypatch, work):
    monkeypatch.setattr("app.posters.service.fetch_avatar", lambda url: None)
    _template(session, poster_store(rt.settings), background)
    session.commit()
    partner = make_partner(session, "新人")  # records partner.activated; posters subscribe to it
    session.commit()
    from app.referrals import partners

    partners.make_partner(session, partner.id, "designated")  # already a partner: no second event
    session.commit()
    deliveries = [args for _k, args in _jobs(session, "events.deliver") if args[0] == "posters.prerender_new_partner"]
    assert len(deliveries) == 1
    work()
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(PosterRender)
                          .where(PosterRender.member_id == partner.id)) == 1


def test_members_who_are_not_partners_are_skipped_quietly(rt, session, poster_dir, background):
    from tests.factories import make_member

    consumer = make_member(session, "路人")
    _template(session, poster_store(rt.settings), background)
    session.commit()
    assert jobs.prerender_member(rt, consumer.id) == 0
