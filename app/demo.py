"""Demo data for the embedded default (`make run`): a world a newcomer can walk through as any of its people.

- An operator (admin / liebian-demo), a store with a manager and a clerk, a team, a commission plan, and this
  two-week sales contest with prizes (live standings until its deadline).
- A referral chain of WeChat users who exist in the local emulator, so one can sign in as any of them
  (`POST /_emulator/_sim/persons/<pid>/wx_login`, then `POST /api/mp/login`): the upline partner and captain, the
  partner she brought, the partner's fans, a clerk's walk-in customer, and a guest bound to nobody yet.
- Orders in several states (paid, completed, refunded), their commissions matured where due, and a withdrawal of
  the partner's awaiting her confirmation in WeChat.

`seed` prints who to be and what to call. Idempotent: a second run finds the demo operator, changes nothing and
prints the same guide. The payout and the partner's service-account QR code go through the emulator over HTTP,
so `flask seed-demo` serves the app at PUBLIC_BASE_URL for its duration when nothing answers there
(`serving_while_seeding`)."""
from __future__ import annotations

import copy
import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterator
from urllib.parse import urlsplit

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from app.boards.contests import create_contest
from app.boards.periods import SHANGHAI
from app.commissions.plans import create_plan
from app.commissions.service import mature_all_due
from app.identity.linking import attach_identity
from app.identity.operators import create_operator
from app.ledger.service import member_balances
from app.members.models import Identity, Member, Operator
from app.members.service import find_or_create_by_identity
from app.orders.service import ingest_order_event
from app.posters.storage import poster_store
from app.posters.templates import create_template, upload_background
from app.referrals import binding, codes, partners, stores
from app.runtime import Runtime
from app.teams.service import create_team
from app.withdrawals import service as withdrawals
from app.withdrawals.models import Withdrawal
from posters.samples import REFERENCE_SPEC, photo_like_background
from wechat import clients

log = logging.getLogger(__name__)
DEMO_OPERATOR = ("admin", "liebian-demo")
DEMO_PLAN = {"name": "演示方案", "rates": [{"level": 1, "bps": 1000}, {"level": 2, "bps": 500}], "hold_days": 0}
DEMO_WITHDRAWAL_FEN = 3000


@dataclass(frozen=True)
class Person:
    pid: str  # the emulator person id (also their mini-program openid's seed)
    nickname: str
    role: str


PEOPLE = (
    Person("demo-manager", "王店长", "store manager of 望京旗舰店"),
    Person("demo-clerk", "李导购", "clerk of 望京旗舰店 (exclusive code; her customers are the store's)"),
    Person("demo-upline", "张姐", "partner, captain of the team 张姐团队; the partner's upline (earns level 2)"),
    Person("demo-partner", "陈小美🌸", "partner brought by 张姐; three fans with orders; a withdrawal awaits her "
                                      "confirmation"),
    Person("demo-fan-0", "刘一", "consumer bound to 陈小美 (orders: completed, and one refunded)"),
    Person("demo-fan-1", "赵二", "consumer bound to 陈小美 (order completed)"),
    Person("demo-fan-2", "孙三", "consumer bound to 陈小美 (order paid, not completed yet)"),
    Person("demo-walkin", "周四", "consumer bound to the clerk 李导购 (order completed)"),
    Person("demo-guest", "吴五", "consumer bound to nobody yet: scan 陈小美's code as them"),
)


def _ago(days: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(days=days)).isoformat()


def _member_for(session: Session, settings, emulator, person: Person) -> Member:
    """The member behind an emulator person: known by their mini-program openid, service-account openid and
    unionid, as WeChat would report them. Without the emulator (real WeChat): a member known by a made-up
    openid, whom nobody can sign in as."""
    if emulator is None:
        member, _ = find_or_create_by_identity(session, "mini_openid", person.pid, nickname=person.nickname)
        return member
    p = emulator.ensure_person(person.pid, nickname=person.nickname)
    member, _ = find_or_create_by_identity(session, "mini_openid", p["openids"][settings.wechat_miniapp_id],
                                           nickname=p["nickname"], avatar_url=p["headimgurl"])
    attach_identity(session, member.id, "oa_openid", p["openids"][settings.wechat_app_id])
    if p.get("unionid"):
        attach_identity(session, member.id, "unionid", p["unionid"])
    return member


def _buyer(session: Session, member: Member) -> dict:
    """How the shop names the buyer in its events: the unionid when WeChat gave one."""
    ids = dict(session.execute(select(Identity.kind, Identity.value).where(Identity.member_id == member.id)).all())
    return {"unionid": ids["unionid"]} if "unionid" in ids else {"mini_openid": ids["mini_openid"]}


def seed(rt: Runtime, emulator=None, *, online: bool = False) -> str:
    """Create the demo world (see the module's docstring) and return the guide to print.

    `emulator`: the in-process emulator (embedded default), whose people the members are. `online`: the app
    answers at PUBLIC_BASE_URL (the payout and the service-account QR code need the emulator over HTTP)."""
    settings = rt.settings
    with rt.session() as s:
        if s.scalar(select(Operator).where(Operator.username == DEMO_OPERATOR[0])) is not None:
            return "Demo data already present.\n" + guide(rt, emulator)
        create_operator(s, *DEMO_OPERATOR)
        m = {p.pid: _member_for(s, settings, emulator, p) for p in PEOPLE}
        shop = stores.create_store(s, "望京旗舰店")
        stores.assign_staff(s, m["demo-manager"].id, shop.id, "manager")
        stores.assign_staff(s, m["demo-clerk"].id, shop.id, "clerk")
        clerk_code = codes.ensure_personal_code(s, m["demo-clerk"].id)
        partners.make_partner(s, m["demo-upline"].id, "designated")
        create_team(s, name="张姐团队", captain_id=m["demo-upline"].id)
        upline_code = codes.ensure_personal_code(s, m["demo-upline"].id)
        binding.touch(s, scene=upline_code.scene, member_id=m["demo-partner"].id, channel="mini_launch")
        partners.make_partner(s, m["demo-partner"].id, "everyone")
        partner_code = codes.ensure_personal_code(s, m["demo-partner"].id)
        for pid in ("demo-fan-0", "demo-fan-1", "demo-fan-2"):
            binding.touch(s, scene=partner_code.scene, member_id=m[pid].id, channel="oa_subscribe")
        binding.touch(s, scene=clerk_code.scene, member_id=m["demo-walkin"].id, channel="oa_subscribe")
        # Hold 0 days: a completed demo order's commissions mature at the next maturation run. Published as of
        # 30 days ago so the demo's order history (a few days old) falls under it.
        create_plan(s, rates=DEMO_PLAN["rates"], hold_days=DEMO_PLAN["hold_days"], name=DEMO_PLAN["name"],
                    effective_from=datetime.now(timezone.utc) - timedelta(days=30), actor="system:demo",
                    allow_backdating=True)
        _poster_template(s, settings)
        _contest(s)
        buyers = {pid: _buyer(s, m[pid]) for pid in ("demo-fan-0", "demo-fan-1", "demo-fan-2", "demo-walkin")}
    orders = [
        {"event": "paid", "order_id": "DEMO-1001", "occurred_at": _ago(6), "buyer": buyers["demo-fan-0"],
         "lines": [{"product_id": "SKU-TEA", "category": "tea", "quantity": 1, "paid_fen": 29900}]},
        {"event": "completed", "order_id": "DEMO-1001", "occurred_at": _ago(4)},
        {"event": "paid", "order_id": "DEMO-1002", "occurred_at": _ago(5), "buyer": buyers["demo-fan-1"],
         "lines": [{"product_id": "SKU-CUP", "category": "ware", "quantity": 2, "paid_fen": 15800}]},
        {"event": "completed", "order_id": "DEMO-1002", "occurred_at": _ago(3)},
        {"event": "paid", "order_id": "DEMO-1003", "occurred_at": _ago(3), "buyer": buyers["demo-fan-0"],
         "lines": [{"product_id": "SKU-GIFT", "category": "gift", "quantity": 1, "paid_fen": 12800}]},
        {"event": "refunded", "order_id": "DEMO-1003", "refund_id": "DEMO-R1", "amount_fen": 12800,
         "occurred_at": _ago(2)},
        {"event": "paid", "order_id": "DEMO-1004", "occurred_at": _ago(2), "buyer": buyers["demo-walkin"],
         "lines": [{"product_id": "SKU-TEA", "category": "tea", "quantity": 1, "paid_fen": 19900}]},
        {"event": "completed", "order_id": "DEMO-1004", "occurred_at": _ago(1)},
        {"event": "paid", "order_id": "DEMO-1005", "occurred_at": _ago(0.5), "buyer": buyers["demo-fan-2"],
         "lines": [{"product_id": "SKU-CUP", "category": "ware", "quantity": 1, "paid_fen": 9900}]},
    ]
    with rt.session() as s:
        for event in orders:
            ingest_order_event(s, event)
    mature_all_due(rt.sessions)
    partner_id = m["demo-partner"].id
    if emulator is not None and online:
        with rt.session() as s:
            codes.oa_qr_png(s, clients.official_account(settings, rt.redis), codes.ensure_personal_code(s, partner_id))
    with rt.session() as s:
        w, _ = withdrawals.request_withdrawal(s, partner_id, DEMO_WITHDRAWAL_FEN, "demo-withdrawal-1",
                                              appid=settings.wechat_miniapp_id)
        if emulator is not None and online:  # the payout goes to the emulator after this commit
            withdrawals.approve_withdrawal(s, w.id, actor="system:demo")
    return "Demo data created.\n" + guide(rt, emulator)


def _contest(session: Session) -> None:
    """Two weeks by sales, from a week ago (Shanghai midnight), so the demo's orders count: ranks 1 to 3 win a
    prize, paid through the ledger when the scheduler freezes it."""
    start = (datetime.now(SHANGHAI) - timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    create_contest(session, name="双周推广冲刺赛", kind="member", metric="sales_fen", starts_at=start,
                   ends_at=start + timedelta(days=14),
                   prizes=[{"ranks": [1, 1], "amount_fen": 8800}, {"ranks": [2, 3], "amount_fen": 3800}])


def _poster_template(session: Session, settings) -> None:
    store = poster_store(settings)
    background = upload_background(session, store, photo_like_background(), "system:demo")
    spec = copy.deepcopy(REFERENCE_SPEC)
    spec["background"] = {"sha256": background.sha256, "color": "#f4efe6"}
    create_template(session, "system:demo", "默认海报", spec)


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def guide(rt: Runtime, emulator=None) -> str:
    """Who to be and what to call, from the data as it is now."""
    settings, base = rt.settings, rt.settings.public_base_url
    lines = [f"Console: POST {base}/api/admin/login {{\"username\": \"{DEMO_OPERATOR[0]}\", "
             f"\"password\": \"{DEMO_OPERATOR[1]}\"}}; send the token as 'Authorization: Bearer <access_token>'."]
    with rt.session() as s:
        ids = {}
        for p in PEOPLE:
            value = (emulator.ensure_person(p.pid, nickname=p.nickname)["openids"][settings.wechat_miniapp_id]
                     if emulator is not None else p.pid)
            ids[p.pid] = s.scalar(select(Identity.member_id).where(Identity.kind == "mini_openid",
                                                                   Identity.value == value))
        partner_id = ids.get("demo-partner")
        scene = codes.ensure_personal_code(s, partner_id).scene if partner_id else "?"
        clerk_scene = codes.ensure_personal_code(s, ids["demo-clerk"]).scene if ids.get("demo-clerk") else "?"
        balances = member_balances(s, partner_id) if partner_id else {}
        waiting = s.scalars(select(Withdrawal).where(Withdrawal.member_id == partner_id)
                            .order_by(Withdrawal.id)).all() if partner_id else []
    if emulator is not None and partner_id is None:
        lines.append("These demo members are not the emulator's people (demo data from an older version?): delete "
                     f"the instance folder ({settings.instance_dir}) and run `make run` again.")
    if emulator is None:
        lines.append("Real WeChat is configured: the demo members below are not WeChat users; nobody can sign in "
                     "as them, and no withdrawal was sent to WeChat Pay.")
    lines += ["", "Be one of these WeChat users (emulator person ids; each is a member):",
              f"  CODE=$(curl -s -XPOST {base}/_emulator/_sim/persons/demo-partner/wx_login | "
              "python3 -c 'import sys,json;print(json.load(sys.stdin)[\"code\"])')",
              f"  TOKEN=$(curl -s -XPOST {base}/api/mp/login -H 'content-type: application/json' "
              "-d \"{\\\"code\\\":\\\"$CODE\\\"}\" | python3 -c 'import sys,json;print(json.load(sys.stdin)"
              "[\"access_token\"])')",
              f"  curl -s {base}/api/mp/me -H \"Authorization: Bearer $TOKEN\"", ""]
    for p in PEOPLE:
        lines.append(f"  {p.pid:<13} member #{ids.get(p.pid) or '?':<4} {p.nickname}: {p.role}")
    lines += ["", f"陈小美's code: scene {scene} (share link {base}/s/{scene}); the clerk's: scene {clerk_scene}.",
              "Scan 陈小美's service-account QR code as the guest (the emulator pushes the subscribe event):",
              f"  curl -s -XPOST {base}/_emulator/_sim/persons/demo-guest/scan -H 'content-type: application/json' "
              f"-d '{{\"scene\": \"{scene}\"}}'"]
    if balances:
        lines.append(f"陈小美's money (yuan): available {_yuan(balances['available'])}, pending "
                     f"{_yuan(balances['pending'])}, withdrawing {_yuan(balances['withdrawing'])}.")
    for w in waiting:
        lines.append(f"Her withdrawal #{w.id}: {_yuan(w.amount_fen)} yuan, {w.state}.")
        if w.state == "WAIT_USER_CONFIRM":
            lines.append("  Confirm it as she would in WeChat: GET /api/mp/withdrawals/<id> as her, then POST its "
                         f"`confirm` object to {base}/_emulator/_sim/persons/demo-partner/merchant_transfer.")
        elif w.state == "REVIEWING":
            lines.append(f"  Approve it in the console: POST {base}/api/admin/withdrawals/{w.id}/approve.")
    lines += [f"Demo plan: level 1 10 %, level 2 5 %, held {DEMO_PLAN['hold_days']} days: a completed order's "
              f"commissions mature at the next maturation run (every {settings.scheduler.mature_every:g} s, "
              "COMMISSION_MATURE_SECONDS).",
              f"Leaderboards and the contest: GET {base}/api/mp/leaderboard?period=month and "
              f"GET {base}/api/mp/contests (as any member); badges: GET {base}/api/mp/badges.",
              "Next: the README's \"Try it\"."]
    return "\n".join(lines)


@contextmanager
def serving_while_seeding(app, base_url: str) -> Iterator[bool]:
    """Yields True when the app answers at `base_url` during the block: already (the app is running), or
    because this serves it there for the block's duration. False when neither (the port is taken by something
    else, or the URL is not on this machine): then the seed leaves out what needs the emulator over HTTP."""
    if _answers(base_url):
        yield True
        return
    parts = urlsplit(base_url)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost") or parts.path not in ("", "/"):
        yield False
        return
    try:
        server = make_server(parts.hostname, parts.port or 80, app, threaded=True)
    except OSError as exc:
        log.warning("cannot serve %s while seeding (%s): the payout and QR code are left out", base_url, exc)
        yield False
        return
    thread = threading.Thread(target=server.serve_forever, name="seed-server", daemon=True)
    requests_log = logging.getLogger("werkzeug")
    level = requests_log.level
    requests_log.setLevel(logging.WARNING)  # the seed's own calls to the emulator are not news
    thread.start()
    try:
        yield True
    finally:
        server.shutdown()
        thread.join(10)
        requests_log.setLevel(level)


def _answers(base_url: str) -> bool:
    try:
        return requests.get(f"{base_url}/_emulator/", timeout=2).ok
    except requests.RequestException:
        return False
