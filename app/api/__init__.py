"""HTTP layer: blueprints by audience, one error envelope, request-scoped database session."""
from __future__ import annotations

from apiflask import APIFlask

from app.api import envelope


def register_api(app: APIFlask) -> None:
    envelope.install(app)
    from app.api import admin_identity, admin_referrals, health, member_identity, member_referrals

    blueprints = [health.bp, member_identity.bp, admin_identity.bp, member_referrals.bp, admin_referrals.bp]
    # Each audience's blueprint is appended here as it lands.
    from app.api import admin_posters, member_posters; blueprints += [admin_posters.bp, member_posters.bp]  # noqa: E702,I001
    from app.api import wechat_callback, wechatpay_notify; blueprints += [wechat_callback.bp, wechatpay_notify.bp]  # noqa: E702,I001
    from app.api import admin_withdrawals, member_withdrawals; blueprints += [member_withdrawals.bp, admin_withdrawals.bp]  # noqa: E702,I001
    from app.api import admin_ledger, hooks_orders, member_earnings; blueprints += [hooks_orders.bp, member_earnings.bp, admin_ledger.bp]  # noqa: E702,I001
    from app.api import admin_teams; blueprints += [admin_teams.bp]  # noqa: E702,I001
    for bp in blueprints:
        app.register_blueprint(bp)
