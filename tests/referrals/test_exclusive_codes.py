"""Exclusive codes are exclusive: one active personal code per member and one image per channel, created once
whatever the timing (the member's first requests, the poster pre-render), and duplicates from before retired
without breaking what was shared."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import IntegrityError

from app.db import make_engine, make_session_factory
from app.identity import tokens
from app.members.merge import merge_members
from app.migrate import upgrade_database
from app.posters.qr_source import member_qr_payload
from app.referrals import binding, codes, partners
from app.referrals.models import CodeImage, ReferralCode
from tests.conftest import PG_ADMIN_URL, SLOT
from tests.factories import make_member

PARALLEL = 8


def _auth(rt, member_id: int) -> dict:
    return {"Authorization": "Bearer " + tokens.issue(rt.settings.secret_key, "member", member_id)}


def _race(calls) -> list:
    """Run the calls at the same moment, one thread each; returns their results (or exceptions) in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # reported by the assertions, not lost in the thread
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _new_partner(session):
    p = make_member(session, "新伙伴")
    partners.make_partner(session, p.id, "designated")
    session.commit()
    return p


def _personal_codes(session, member_id: int) -> list[ReferralCode]:
    session.expire_all()
    return list(session.scalars(select(ReferralCode).where(ReferralCode.owner_id == member_id)))


def test_parallel_first_requests_for_a_new_partners_code_make_one_code(app, session, rt):
    p = _new_partner(session)
    headers = _auth(rt, p.id)

    def ask():
        r = app.test_client().get("/api/mp/code", headers=headers)
        return r.status_code, r.get_json()

    answers = _race([ask] * PARALLEL)
    assert [status for status, _ in answers] == [200] * PARALLEL, answers
    assert len({body["scene"] for _, body in answers}) == 1
    assert len(_personal_codes(session, p.id)) == 1


def test_parallel_first_requests_for_the_images_of_every_channel_make_one_code_and_no_500(app, session, rt):
    p = _new_partner(session)
    headers = _auth(rt, p.id)
    channels = ["oa_qr", "mini_code", "share_qr"] * 3

    def image(channel):
        def ask():
            r = app.test_client().get(f"/api/mp/code.png?channel={channel}", headers=headers)
            return r.status_code, r.mimetype

        return ask

    answers = _race([image(ch) for ch in channels[:PARALLEL]] + [image("share_qr")])
    assert answers == [(200, "image/png")] * (PARALLEL + 1)
    [code] = _personal_codes(session, p.id)
    assert sorted(session.scalars(select(CodeImage.channel).where(CodeImage.code_id == code.id))) == \
        ["mini_code", "oa_qr", "share_qr"]
    # One service-account QR ticket was issued for the code, and the cached image is the one for that ticket.
    assert session.scalar(select(CodeImage.source_ref).where(CodeImage.code_id == code.id,
                                                             CodeImage.channel == "oa_qr")) == code.oa_ticket


def test_the_poster_pre_render_and_the_members_first_requests_agree_on_one_code(app, session, rt):
    p = _new_partner(session)
    headers = _auth(rt, p.id)
    base = rt.settings.public_base_url

    def prerender():  # what posters.prerender_member asks referrals for, in its own unit of work
        with rt.session() as s:
            return member_qr_payload(s, p.id, base).value

    def ask():
        return app.test_client().get("/api/mp/code", headers=headers).get_json()["share_url"]

    urls = _race([prerender, ask] * (PARALLEL // 2))
    assert len(set(urls)) == 1, urls
    assert len(_personal_codes(session, p.id)) == 1


def test_a_new_partners_code_does_not_change_between_requests(client, session, rt):
    p = _new_partner(session)
    headers = _auth(rt, p.id)
    first = client.get("/api/mp/code", headers=headers).get_json()
    with rt.session() as s:  # the pre-render, later
        member_qr_payload(s, p.id, rt.settings.public_base_url)
    again = client.get("/api/mp/code", headers=headers).get_json()
    assert (again["id"], again["scene"]) == (first["id"], first["scene"])


def test_the_database_refuses_a_second_active_personal_code(session):
    p = _new_partner(session)
    code = codes.ensure_personal_code(session, p.id)
    session.commit()
    with pytest.raises(IntegrityError):
        with session.begin_nested():
            session.add(ReferralCode(scene="SECONDCODE22", kind="clerk", owner_id=p.id, referrer_id=p.id))
    # A revoked code does not count, and campaign codes naming the partner are not personal.
    codes.revoke_code(session, code.id)
    session.add(ReferralCode(scene="CAMPAIGN2222", kind="campaign", owner_id=None, referrer_id=p.id))
    assert codes.ensure_personal_code(session, p.id).id != code.id


def test_merging_two_members_with_codes_keeps_one_and_the_other_still_binds_to_the_person(session):
    a = _new_partner(session)
    b = _new_partner(session)
    code_a = codes.ensure_personal_code(session, a.id)
    code_b = codes.ensure_personal_code(session, b.id)
    kept = merge_members(session, a.id, b.id, "unionid")
    assert codes.ensure_personal_code(session, kept.id).id == code_a.id
    fan = make_member(session)
    result = binding.touch(session, scene=code_b.scene, member_id=fan.id, channel="oa_scan")
    assert (result.outcome, result.referrer_id, result.code_id) == ("bound", kept.id, code_a.id)


# -- the migration that retires duplicates made before the index ------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def database_at_0009(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'codes.db'}"
        return
    name = f"liebian_test_{SLOT}_codes_migration"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_the_migration_keeps_the_oldest_active_code_and_forwards_the_duplicates(database_at_0009):
    url = database_at_0009
    upgrade_database(url, "0009_binding_code_index")
    engine = make_engine(url)
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    members = sa.table("members", sa.column("id"), sa.column("nickname"), sa.column("avatar_url"),
                       sa.column("status"), sa.column("created_at"), sa.column("updated_at"))
    rc = sa.table("referral_codes", sa.column("id"), sa.column("scene"), sa.column("kind"), sa.column("owner_id"),
                  sa.column("referrer_id"), sa.column("label"), sa.column("status"), sa.column("oa_permanent"),
                  sa.column("created_at"))
    naive = engine.dialect.name == "sqlite"

    def at(minutes):
        when = t0 + timedelta(minutes=minutes)
        return when.replace(tzinfo=None) if naive else when

    with engine.begin() as conn:
        conn.execute(members.insert(), [{"id": i, "nickname": f"m{i}", "avatar_url": "", "status": "active",
                                         "created_at": at(0), "updated_at": at(0)} for i in (1, 2, 3)])
        rows = [(10, "DUPLICATEBBB", "partner", 1, "active", 2),  # created second, lower id than the oldest
                (11, "OLDESTAAAAAA", "partner", 1, "active", 1),
                (12, "DUPLICATECCC", "partner", 1, "active", 3),
                (13, "ALONEDDDDDDD", "partner", 2, "active", 1),
                (14, "CAMPAIGNEEEE", "campaign", None, "active", 1)]
        conn.execute(rc.insert(), [{"id": i, "scene": s, "kind": k, "owner_id": o, "referrer_id": o or 1,
                                    "label": "", "status": st, "oa_permanent": False, "created_at": at(m)}
                                   for i, s, k, o, st, m in rows])
    upgrade_database(url)
    s = make_session_factory(engine)()
    try:
        got = {c.id: (c.status, c.replaced_by_id, c.revoked_at is not None) for c in s.scalars(select(ReferralCode))}
        assert got == {10: ("revoked", 11, True), 11: ("active", None, False), 12: ("revoked", 11, True),
                       13: ("active", None, False), 14: ("active", None, False)}
        assert codes.ensure_personal_code(s, 1).scene == "OLDESTAAAAAA"
        # The retired duplicates' scenes, shared before the migration, still bind as the kept code.
        s.execute(text("INSERT INTO partners (member_id, status, source, since, updated_at) "
                       "VALUES (1, 'active', 'designated', :t, :t)"), {"t": at(0)})
        result = binding.touch(s, scene="DUPLICATECCC", member_id=3, channel="oa_scan")
        assert (result.outcome, result.referrer_id, result.code_id) == ("bound", 1, 11)
        with pytest.raises(IntegrityError):
            with s.begin_nested():
                s.add(ReferralCode(scene="NEWDUPLICATE", kind="partner", owner_id=2, referrer_id=2))
        assert s.scalar(select(func.count()).select_from(ReferralCode)) == 5
    finally:
        s.close()
        engine.dispose()
