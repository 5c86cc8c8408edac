"""The WeChat public-platform endpoints (api.weixin.qq.com, open.weixin.qq.com, mp.weixin.qq.com paths)."""
from __future__ import annotations

import html
import io
from urllib.parse import urlencode

import qrcode
from flask import Blueprint, Response, redirect, request

from wechat.emulator.common import body_json, emu, guarded, wx_json
from wechat.emulator.state import SCENE_CHARS, Err

bp = Blueprint("wx", __name__)


@bp.errorhandler(Err)
def _err(e: Err):
    return wx_json(e.body())


def png_for(text: str, width: int | None = None) -> bytes:
    img = qrcode.make(text, border=2)
    if width:
        img = img.get_image().resize((width, width))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _token(appid: str | None = None) -> str:
    return emu().world.check_token(request.args.get("access_token"), appid)


@bp.get("/cgi-bin/token")
@guarded("cgi-bin.token")
def token():
    a = request.args
    if a.get("grant_type") != "client_credential":
        raise Err(40002, "invalid grant_type")
    return wx_json(emu().world.token(a.get("appid", ""), a.get("secret", "")))


@bp.post("/cgi-bin/stable_token")
@guarded("cgi-bin.stable_token")
def stable_token():
    b = body_json(request)
    if b.get("grant_type") != "client_credential":
        raise Err(40002, "invalid grant_type")
    return wx_json(emu().world.stable_token(b.get("appid", ""), b.get("secret", ""), bool(b.get("force_refresh"))))


@bp.post("/cgi-bin/qrcode/create")
@guarded("qrcode.create")
def qrcode_create():
    w = emu().world
    _token(w.oa["appid"])
    return wx_json(w.create_qr(body_json(request)))


@bp.get("/cgi-bin/showqrcode")
@guarded("showqrcode")
def showqrcode():
    t = emu().world.ticket(request.args.get("ticket", ""))
    if t is None:
        return Response("ticket not found", status=404)
    return Response(png_for(t["url"]), mimetype="image/png")


@bp.get("/cgi-bin/user/info")
@guarded("user.info")
def user_info():
    w = emu().world
    _token(w.oa["appid"])
    a = request.args
    return wx_json(w.user_info(a.get("openid", ""), a.get("lang") or "zh_CN"))


@bp.get("/connect/oauth2/authorize")
@guarded("oauth.authorize")
def oauth_authorize():
    """Auto-consent: redirect straight back with code&state. Who is "logged in": `emu_person` (pid or openid),
    else the person set with POST /_sim/oauth/login, else a newly created person. `emu_snapshot=1` marks the
    user as a snapshot-page user; `emu_page=1` shows a consent page instead of redirecting."""
    a = request.args
    w = emu().world
    redirect_uri = a.get("redirect_uri", "")
    if a.get("response_type") != "code" or not redirect_uri.startswith(("http://", "https://")):
        return Response("redirect_uri 参数错误", status=400)
    ref = a.get("emu_person") or w.current_person
    person = w.person(ref) if ref else w.create_person()
    code = w.oauth_code(a.get("appid", ""), a.get("scope", ""), person, snapshot=a.get("emu_snapshot") == "1")
    sep = "&" if "?" in redirect_uri else "?"
    target = f"{redirect_uri}{sep}{urlencode({'code': code, 'state': a.get('state', '')})}"
    if a.get("emu_page") == "1":
        return Response(f"<!doctype html><meta charset=utf-8><title>微信授权</title><p>{html.escape(person.nickname)}"
                         f" 授权登录</p><a id=allow href=\"{html.escape(target)}\">允许</a>", mimetype="text/html")
    return redirect(target, code=302)


@bp.get("/sns/oauth2/access_token")
@guarded("sns.oauth2")
def sns_access_token():
    a = request.args
    if a.get("grant_type") != "authorization_code":
        raise Err(40002, "invalid grant_type")
    return wx_json(emu().world.oauth_exchange(a.get("appid", ""), a.get("secret", ""), a.get("code", "")))


@bp.get("/sns/userinfo")
@guarded("sns.userinfo")
def sns_userinfo():
    a = request.args
    return wx_json(emu().world.oauth_userinfo(a.get("access_token", ""), a.get("openid", "")))


@bp.get("/sns/jscode2session")
@guarded("sns.jscode2session")
def jscode2session():
    a = request.args
    if a.get("grant_type") != "authorization_code":
        raise Err(40002, "invalid grant_type")
    return wx_json(emu().world.jscode2session(a.get("appid", ""), a.get("secret", ""), a.get("js_code", "")))


@bp.post("/wxa/business/getuserphonenumber")
@guarded("wxa.phone")
def phone_number():
    w = emu().world
    _token(w.mini["appid"])
    info = w.phone_number(str(body_json(request).get("code", "")))
    return wx_json({"errcode": 0, "errmsg": "ok", "phone_info": info})


@bp.post("/wxa/getwxacodeunlimit")
@guarded("wxa.wxacode")
def wxacode_unlimit():
    w = emu().world
    _token(w.mini["appid"])
    b = body_json(request)
    scene, page = b.get("scene"), b.get("page") or "pages/index/index"
    if not isinstance(scene, str) or not SCENE_CHARS.match(scene):
        raise Err(40169, "invalid length for scene, or the data is not json string")
    env = b.get("env_version", "release")
    if env not in ("release", "trial", "develop"):
        raise Err(40097, "invalid args")
    if page.startswith("/") or "?" in page:
        raise Err(41030, "invalid page rid")
    published = w.config.get("published_pages")
    if b.get("check_path", True) and published is not None and page not in published:
        raise Err(41030, "invalid page rid")
    width = min(max(int(b.get("width") or 430), 280), 1280)  # WeChat clamps width into 280..1280
    content = f"wxacode:{w.mini['appid']}/{page}?{urlencode({'scene': scene, 'env_version': env})}"
    return Response(png_for(content, width), mimetype="image/png")


@bp.post("/cgi-bin/message/subscribe/send")
@guarded("message.subscribe")
def subscribe_send():
    w = emu().world
    _token(w.mini["appid"])
    return wx_json({"errcode": 0, "errmsg": "ok", **w.subscribe_send(body_json(request))})


@bp.post("/cgi-bin/message/template/send")
@guarded("message.template")
def template_send():
    w = emu().world
    _token(w.oa["appid"])
    out = w.template_send(body_json(request))
    emu()._schedule_template_reports()
    return wx_json({"errcode": 0, "errmsg": "ok", **out})
