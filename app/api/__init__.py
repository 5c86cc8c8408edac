"""HTTP layer: blueprints by audience, one error envelope, request-scoped database session."""
from __future__ import annotations

from apiflask import APIFlask

from app.api import (admin_identity, admin_ledger, admin_notifications, admin_posters, admin_referrals, admin_teams,
                     admin_withdrawals, docs_assets, envelope, health, hooks_orders, json_body, member_earnings,
                     member_identity, member_notifications, member_posters, member_profile, member_referrals,
                     member_team, member_withdrawals, wechat_callback, wechatpay_notify)
from app.api import badges as badges_api
from app.api import boards as boards_api
from app.api import contests as contests_api

# By audience: health; mini-program members; operators; WeChat's and the shop's server-to-server calls.
BLUEPRINTS = [
    health.bp,
    member_identity.bp, member_profile.bp, member_referrals.bp, member_posters.bp, member_withdrawals.bp,
    member_earnings.bp, member_notifications.bp, member_team.bp, boards_api.bp, contests_api.bp, badges_api.bp,
    admin_identity.bp, admin_referrals.bp, admin_teams.bp, admin_posters.bp, admin_withdrawals.bp, admin_ledger.bp,
    admin_notifications.bp,
    wechat_callback.bp, wechatpay_notify.bp, hooks_orders.bp,
]


def register_api(app: APIFlask) -> None:
    envelope.install(app)
    json_body.install(app)
    docs_assets.install(app)
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
