"""Per-request WeChat clients built from the runtime's settings (wechatpy OAuth state is per instance)."""
from __future__ import annotations

from app.api.web import runtime


def official_account():
    from wechat.clients import official_account as make

    rt = runtime()
    return make(rt.settings, rt.redis)


def mini_program():
    from wechat.clients import mini_program as make

    rt = runtime()
    return make(rt.settings, rt.redis)
