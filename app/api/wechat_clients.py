"""Per-request WeChat clients built from the runtime's settings (wechatpy OAuth state is per instance)."""
from __future__ import annotations

from app.api.web import runtime
from wechat import clients


def official_account():
    rt = runtime()
    return clients.official_account(rt.settings, rt.redis)


def mini_program():
    rt = runtime()
    return clients.mini_program(rt.settings, rt.redis)
