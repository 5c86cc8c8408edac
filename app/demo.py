"""Demo data for the embedded default (`make run`): an operator, a store with staff, partners with a small downline.

Idempotent: a second run finds the demo operator and changes nothing."""
from __future__ import annotations

import copy

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.identity.operators import create_operator
from app.members.models import Identity, Member, Operator
from app.posters.storage import poster_store
from app.posters.templates import create_template, upload_background
from app.referrals import binding, codes, partners, stores
from posters.samples import REFERENCE_SPEC, photo_like_background

DEMO_OPERATOR = ("admin", "liebian-demo")


def _member(session: Session, nickname: str, openid: str) -> Member:
    m = Member(nickname=nickname)
    session.add(m)
    session.flush()
    session.add(Identity(member_id=m.id, kind="mini_openid", value=openid))
    session.flush()
    return m


def seed(session: Session, settings: Settings) -> str:
    if session.scalar(select(Operator).where(Operator.username == DEMO_OPERATOR[0])):
        partner_id = session.scalar(select(Identity.member_id).where(Identity.kind == "mini_openid",
                                                                     Identity.value == "demo-partner"))
        scene = codes.ensure_personal_code(session, partner_id).scene if partner_id else "?"
        return (f"demo data already present: operator {DEMO_OPERATOR[0]}/{DEMO_OPERATOR[1]}, "
                f"partner #{partner_id} (code {scene})")
    create_operator(session, *DEMO_OPERATOR)
    shop = stores.create_store(session, "望京旗舰店")
    manager = _member(session, "王店长", "demo-manager")
    clerk = _member(session, "李导购", "demo-clerk")
    stores.assign_staff(session, manager.id, shop.id, "manager")
    stores.assign_staff(session, clerk.id, shop.id, "clerk")
    clerk_code = codes.ensure_personal_code(session, clerk.id)

    upline = _member(session, "张姐", "demo-upline")
    partners.make_partner(session, upline.id, "designated")
    upline_code = codes.ensure_personal_code(session, upline.id)
    partner = _member(session, "陈小美🌸", "demo-partner")
    binding.touch(session, scene=upline_code.scene, member_id=partner.id, channel="mini_launch")
    partners.make_partner(session, partner.id, "everyone")
    partner_code = codes.ensure_personal_code(session, partner.id)
    for i, name in enumerate(["刘一", "赵二", "孙三"]):
        fan = _member(session, name, f"demo-fan-{i}")
        binding.touch(session, scene=partner_code.scene, member_id=fan.id, channel="oa_subscribe")
    walk_in = _member(session, "周四", "demo-walkin")
    binding.touch(session, scene=clerk_code.scene, member_id=walk_in.id, channel="oa_subscribe")

    extra = _poster_template(session, settings)
    session.flush()
    return (f"demo data created: operator {DEMO_OPERATOR[0]}/{DEMO_OPERATOR[1]}, store #{shop.id}, "
            f"partner #{partner.id} (code {partner_code.scene}), upline partner #{upline.id}; {extra}")


def _poster_template(session: Session, settings: Settings) -> str:
    store = poster_store(settings)
    background = upload_background(session, store, photo_like_background(), "system:demo")
    spec = copy.deepcopy(REFERENCE_SPEC)
    spec["background"] = {"sha256": background.sha256, "color": "#f4efe6"}
    template = create_template(session, "system:demo", "默认海报", spec)
    return f"poster template #{template.id}"
