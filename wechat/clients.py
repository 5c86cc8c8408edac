"""Service account (公众号) and mini-program (小程序) clients over wechatpy, with every base URL from config.

wechatpy is used for what it does well (request plumbing, API groups, OAuth URLs); its access_token fetch
(hard-coded host, no lock, no stable_token) is replaced by `wechat.tokens.AccessTokens`, and every API group's
absolute base URL is rewritten to the configured one. Methods return plain dicts/bytes and raise WeChatError."""
from __future__ import annotations

import re
import threading
from urllib.parse import quote

import requests
from wechatpy import WeChatClient
from wechatpy.client.api.base import BaseWeChatAPI
from wechatpy.client.api.qrcode import WeChatQRCode
from wechatpy.exceptions import WeChatClientException, WeChatOAuthException
from wechatpy.oauth import WeChatOAuth

from wechat.errors import WeChatError
from wechat.tokens import TOKEN_REJECTED, AccessTokens

REAL_API_BASE = "https://api.weixin.qq.com"
TIMEOUT = 5.0
_STATE_RE = re.compile(r"^[A-Za-z0-9]{0,128}$")


class _QRCode(WeChatQRCode):
    """wechatpy hard-codes mp.weixin.qq.com for the QR image; use the configured MP base."""

    def get_url(self, ticket):  # noqa: D401 - same contract as wechatpy
        if isinstance(ticket, dict):
            ticket = ticket["ticket"]
        return f"{self._client.mp_base}/cgi-bin/showqrcode?ticket={quote(ticket, safe='')}"

    def show(self, ticket):
        return self._client._http.get(self.get_url(ticket), timeout=self._client.timeout)


class ConfiguredClient(WeChatClient):
    """WeChatClient whose token comes from Redis (single-flight) and whose URLs come from config."""

    def __init__(self, tokens: AccessTokens, api_base: str, mp_base: str, timeout: float = TIMEOUT):
        super().__init__(tokens.appid, tokens.secret, timeout=timeout, auto_retry=False)
        self._tokens = tokens
        self.api_base = api_base.rstrip("/")
        self.mp_base = mp_base.rstrip("/")
        self.API_BASE_URL = f"{self.api_base}/cgi-bin/"
        for api in list(vars(self).values()):
            if isinstance(api, BaseWeChatAPI):
                base = getattr(api, "API_BASE_URL", None)
                if base and base.startswith(REAL_API_BASE):
                    api.API_BASE_URL = self.api_base + base[len(REAL_API_BASE):]
        self.qrcode = _QRCode(self)

    @property
    def access_token(self):
        return self._tokens.get()

    def fetch_access_token(self):
        raise RuntimeError("access tokens come from wechat.tokens.AccessTokens")

    def _request(self, method, url_or_endpoint, **kwargs):
        params = dict(kwargs.pop("params", None) or {})
        for attempt in (0, 1):
            token = self._tokens.get()
            try:
                return super()._request(method, url_or_endpoint, params={**params, "access_token": token},
                                        **dict(kwargs))
            except WeChatClientException as exc:
                if exc.errcode in TOKEN_REJECTED and attempt == 0:
                    self._tokens.refresh_after_rejection(token)
                    continue
                raise WeChatError(exc.errcode if exc.errcode is not None else -1,
                                  exc.errmsg or f"HTTP error from {url_or_endpoint}") from exc
            except requests.RequestException as exc:
                raise WeChatError(-1, f"WeChat unreachable: {exc}") from exc


class _OAuth(WeChatOAuth):
    """One instance per request (wechatpy keeps token state on it), with configured URLs and a timeout."""

    def __init__(self, app_id, secret, api_base, open_base, redirect_uri="", scope="snsapi_base", state=""):
        super().__init__(app_id, secret, redirect_uri, scope, state)
        self.API_BASE_URL = api_base.rstrip("/") + "/"
        self.OAUTH_BASE_URL = open_base.rstrip("/") + "/connect/"

    def _request(self, method, url_or_endpoint, **kwargs):
        kwargs.setdefault("timeout", TIMEOUT)
        try:
            return super()._request(method, url_or_endpoint, **kwargs)
        except WeChatOAuthException as exc:
            raise WeChatError(exc.errcode if exc.errcode is not None else -1, exc.errmsg or "HTTP error") from exc
        except requests.RequestException as exc:
            raise WeChatError(-1, f"WeChat unreachable: {exc}") from exc


def _plain_get(http: requests.Session, url: str, params: dict) -> dict:
    """GET an endpoint that takes appid+secret instead of an access_token (jscode2session)."""
    try:
        data = http.get(url, params=params, timeout=TIMEOUT).json()
    except (requests.RequestException, ValueError) as exc:
        raise WeChatError(-1, f"WeChat unreachable: {exc}") from exc
    if data.get("errcode"):
        raise WeChatError(data["errcode"], data.get("errmsg", ""))
    return data


class OfficialAccount:
    def __init__(self, settings, redis):
        self.settings = settings
        self.appid, self.secret = settings.wechat_app_id, settings.wechat_app_secret
        self.tokens = AccessTokens(redis, settings.wechat_api_base, self.appid, self.secret)
        self.client = ConfiguredClient(self.tokens, settings.wechat_api_base, settings.wechat_mp_base)

    def _oauth(self) -> _OAuth:
        s = self.settings
        return _OAuth(self.appid, self.secret, s.wechat_api_base, s.wechat_open_base)

    # --- web OAuth ---
    def oauth_authorize_url(self, redirect_uri: str, scope: str = "snsapi_base", state: str = "") -> str:
        if scope not in ("snsapi_base", "snsapi_userinfo"):
            raise ValueError(f"unknown OAuth scope {scope!r}")
        if not _STATE_RE.match(state):
            raise ValueError("OAuth state must be [a-zA-Z0-9], at most 128 bytes")
        oauth = self._oauth()
        oauth.redirect_uri, oauth.scope, oauth.state = redirect_uri, scope, state
        return oauth.authorize_url

    def oauth_exchange(self, code: str) -> dict:
        data = self._oauth().fetch_access_token(code)
        out = {k: data[k] for k in ("openid", "access_token", "scope") if k in data}
        if data.get("unionid"):
            out["unionid"] = data["unionid"]
        if data.get("is_snapshotuser"):
            out["is_snapshotuser"] = int(data["is_snapshotuser"])
        return out

    def oauth_userinfo(self, access_token: str, openid: str) -> dict:
        data = self._oauth()._get("sns/userinfo",
                                  params={"access_token": access_token, "openid": openid, "lang": "zh_CN"})
        out = {"openid": data["openid"], "nickname": data.get("nickname", ""),
               "headimgurl": data.get("headimgurl", "")}
        if data.get("unionid"):
            out["unionid"] = data["unionid"]
        return out

    # --- followers ---
    def user_info(self, openid: str, lang: str = "zh_CN") -> dict:
        """cgi-bin/user/info for one follower: {openid, subscribe (0|1), unionid?, subscribe_time?,
        subscribe_scene?, qr_scene_str?}. Since 2021-12-27 WeChat returns no nickname or avatar here; unionid
        only when the account is bound to an open-platform account; someone who does not follow (any more) gets
        only `subscribe: 0`. Raises WeChatError (40003: not an openid of this account)."""
        data = self.client.user.get(openid, lang=lang)
        out = {"openid": data.get("openid", openid), "subscribe": int(data.get("subscribe") or 0)}
        for key in ("unionid", "subscribe_time", "subscribe_scene", "qr_scene_str"):
            if data.get(key):
                out[key] = data[key]
        return out

    # --- parametric QR codes ---
    def create_qr(self, scene_str: str, permanent: bool, expire_seconds: int | None = None) -> dict:
        body: dict = {"action_name": "QR_LIMIT_STR_SCENE" if permanent else "QR_STR_SCENE",
                      "action_info": {"scene": {"scene_str": scene_str}}}
        if not permanent:
            body["expire_seconds"] = expire_seconds or 2_592_000
        data = self.client.qrcode.create(body)
        out = {"ticket": data["ticket"], "url": data["url"]}
        if data.get("expire_seconds"):
            out["expire_seconds"] = int(data["expire_seconds"])
        return out

    def showqrcode_url(self, ticket: str) -> str:
        return self.client.qrcode.get_url(ticket)

    def fetch_qr_png(self, ticket: str) -> bytes:
        try:
            res = self.client.qrcode.show(ticket)
        except requests.RequestException as exc:
            raise WeChatError(-1, f"showqrcode unreachable: {exc}") from exc
        if res.status_code != 200 or not res.content.startswith(b"\x89PNG"):
            raise WeChatError(-1, f"showqrcode answered HTTP {res.status_code}")
        return res.content

    def send_template(self, openid: str, template_id: str, data: dict, url: str | None = None,
                      miniprogram: dict | None = None) -> dict:
        """cgi-bin/message/template/send to a follower: {"msgid"}. `data` is {key: {"value": str}};
        `miniprogram` {"appid", "pagepath"} opens the mini-program instead of `url`. Raises WeChatError (43004
        not a follower, 40037 invalid template id, 47003 invalid argument, ...); the delivery result arrives
        later as a TEMPLATESENDJOBFINISH push."""
        body: dict = {"touser": openid, "template_id": template_id, "data": data}
        if url:
            body["url"] = url
        if miniprogram:
            body["miniprogram"] = miniprogram
        data_out = self.client.post(f"{self.settings.wechat_api_base}/cgi-bin/message/template/send", data=body)
        return {"msgid": int(data_out["msgid"])}


class MiniProgram:
    def __init__(self, settings, redis):
        self.settings = settings
        self.appid, self.secret = settings.wechat_miniapp_id, settings.wechat_miniapp_secret
        self.api_base = settings.wechat_api_base
        self.tokens = AccessTokens(redis, self.api_base, self.appid, self.secret)
        self.client = ConfiguredClient(self.tokens, self.api_base, settings.wechat_mp_base)

    def code_to_session(self, js_code: str) -> dict:
        data = _plain_get(self.client._http, f"{self.api_base}/sns/jscode2session",
                          {"appid": self.appid, "secret": self.secret, "js_code": js_code,
                           "grant_type": "authorization_code"})
        out = {"openid": data["openid"], "session_key": data["session_key"]}
        if data.get("unionid"):
            out["unionid"] = data["unionid"]
        return out

    def get_phone_number(self, code: str) -> dict:
        # Not in wechatpy 1.8.18: post through the client (token handling) with the full URL.
        data = self.client.post(f"{self.api_base}/wxa/business/getuserphonenumber", data={"code": code})
        info = data["phone_info"]
        return {"phoneNumber": info["phoneNumber"], "purePhoneNumber": info["purePhoneNumber"],
                "countryCode": str(info["countryCode"])}

    def get_unlimited_wxacode(self, scene: str, page: str, width: int = 430, env_version: str = "release",
                              check_path: bool = True) -> bytes:
        # wechatpy's get_wxa_code_unlimited lacks check_path/env_version: post the JSON ourselves.
        res = self.client.post(f"{self.api_base}/wxa/getwxacodeunlimit",
                               data={"scene": scene, "page": page, "width": width,
                                     "check_path": check_path, "env_version": env_version})
        if isinstance(res, requests.Response):
            return res.content
        raise WeChatError(int(res.get("errcode", -1)) or -1, res.get("errmsg", "no image in the answer"))

    def send_subscribe_message(self, openid: str, template_id: str, data: dict, page: str | None = None,
                               state: str = "formal") -> dict:
        """cgi-bin/message/subscribe/send, using one of the user's one-time grants: {"msgid"}. Raises
        WeChatError (43101 no grant left or refused, 40037 invalid template id, 47003 invalid argument, ...)."""
        body: dict = {"touser": openid, "template_id": template_id, "data": data, "miniprogram_state": state,
                      "lang": "zh_CN"}
        if page:
            body["page"] = page
        out = self.client.post(f"{self.api_base}/cgi-bin/message/subscribe/send", data=body)
        return {"msgid": int(out["msgid"])}


_cache: dict = {}
_cache_lock = threading.Lock()


def _cached(kind, settings, redis):
    key = (kind, id(settings), id(redis))
    with _cache_lock:
        found = _cache.get(key)
        if found is None or found[0] is not settings or found[1] is not redis:
            if len(_cache) > 64:
                _cache.clear()
            found = _cache[key] = (settings, redis, kind(settings, redis))
        return found[2]


def official_account(settings, redis) -> OfficialAccount:
    return _cached(OfficialAccount, settings, redis)


def mini_program(settings, redis) -> MiniProgram:
    return _cached(MiniProgram, settings, redis)
