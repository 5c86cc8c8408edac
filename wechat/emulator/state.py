"""The emulator's in-memory world (one process, one lock): people, tokens, codes, QR tickets, messages.

Errors are returned as `Err(errcode, errmsg)` with WeChat's codes and messages."""
from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass, field

CODE_TTL = 300
SCENE_CHARS = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}$")


class Err(Exception):
    def __init__(self, errcode: int, errmsg: str):
        super().__init__(errcode, errmsg)
        self.errcode, self.errmsg = errcode, errmsg

    def body(self) -> dict:
        return {"errcode": self.errcode, "errmsg": f"{self.errmsg} rid: {secrets.token_hex(4)}"}


def _b64id(*parts: str, n: int = 27) -> str:
    raw = hashlib.sha256(":".join(parts).encode()).digest()
    return base64.urlsafe_b64encode(raw).decode()[:n]


@dataclass
class Person:
    pid: str
    nickname: str
    headimgurl: str
    unionid: str | None
    phone: str | None
    country_code: str = "86"
    snapshot: bool = False
    following: bool = False
    real_name: str | None = None  # WeChat Pay's real-name record (None: not checked by transfers)
    subscribe_time: int | None = None  # when they last followed the service account
    subscribe_scene: str = "ADD_SCENE_OTHERS"
    qr_scene_str: str = ""
    openids: dict = field(default_factory=dict)  # appid -> openid
    consents: dict = field(default_factory=dict)  # template_id -> remaining subscribe-message consents
    banned: list = field(default_factory=list)  # subscribe templates the person always refuses
    blocks_templates: bool = False  # refuses the account's template messages (TEMPLATESENDJOBFINISH failed)

    def openid(self, appid: str) -> str:
        if appid not in self.openids:
            self.openids[appid] = "o" + _b64id(appid, self.pid)
        return self.openids[appid]

    def public(self, apps: list[str]) -> dict:
        return {"pid": self.pid, "nickname": self.nickname, "headimgurl": self.headimgurl,
                "unionid": self.unionid, "phone": self.phone, "snapshot": self.snapshot,
                "following": self.following, "real_name": self.real_name,
                "openids": {a: self.openid(a) for a in apps},
                "consents": dict(self.consents), "banned": sorted(self.banned)}


class World:
    def __init__(self, config: dict):
        self.config = config
        self.lock = threading.RLock()
        self.reset()

    # --- lifecycle ---
    def reset(self) -> None:
        with self.lock:
            self.persons: dict[str, Person] = {}
            self.by_openid: dict[str, Person] = {}
            self.tokens: dict[str, dict] = {}  # token -> {appid, expires_at}
            self.stable: dict[str, str] = {}  # appid -> current stable token
            self.oauth_codes: dict[str, dict] = {}
            self.oauth_tokens: dict[str, dict] = {}
            self.js_codes: dict[str, dict] = {}
            self.phone_codes: dict[str, dict] = {}
            self.js_calls: dict[str, list[float]] = {}
            self.tickets: dict[str, dict] = {}
            self.permanent_scenes: dict[str, str] = {}  # scene -> ticket
            self.messages: list[dict] = []
            self.templates: dict[str, dict] = {}  # template_id -> {kind, fields}; empty: any id is accepted
            self.template_reports: list[dict] = []  # TEMPLATESENDJOBFINISH pushes not delivered yet
            self.pushes: list[dict] = []
            self.current_person: str | None = None
            self.token_fetches = 0

    @property
    def oa(self) -> dict:
        return self.config["oa"]

    @property
    def mini(self) -> dict:
        return self.config["mini"]

    def app_ids(self) -> list[str]:
        return [self.oa["appid"], self.mini["appid"]]

    # --- people ---
    def create_person(self, nickname: str | None = None, headimgurl: str | None = None, unionid: str | None = "auto",
                      phone: str | None = None, snapshot: bool = False, following: bool = False,
                      pid: str | None = None, real_name: str | None = None) -> Person:
        with self.lock:
            pid = pid or secrets.token_hex(6)
            if unionid == "auto":
                unionid = "oU" + _b64id("union", pid, n=26)
            n = len(self.persons) + 1
            p = Person(pid=pid, nickname=nickname or f"微信用户{n}",
                       headimgurl=headimgurl or f"https://thirdwx.qlogo.cn/mmopen/emu/{pid}/132",
                       unionid=unionid,
                       phone=phone or f"138{int(hashlib.md5(pid.encode()).hexdigest(), 16) % 10**8:08d}",
                       snapshot=snapshot, following=following, real_name=real_name,
                       subscribe_time=int(time.time()) if following else None)
            self.persons[pid] = p
            for appid in self.app_ids():
                self.by_openid[p.openid(appid)] = p
            return p

    def person(self, ref: str | None) -> Person:
        """A person by pid or any of their openids."""
        with self.lock:
            p = self.persons.get(ref or "") or self.by_openid.get(ref or "")
            if p is None:
                raise KeyError(f"no emulated person {ref!r}")
            return p

    def person_for_openid(self, appid: str, openid: str) -> Person | None:
        p = self.by_openid.get(openid)
        return p if p is not None and p.openid(appid) == openid else None

    # --- apps and tokens ---
    def check_app(self, appid: str, secret: str | None, *, stable: bool = False) -> dict:
        app = next((a for a in (self.oa, self.mini) if a["appid"] == appid), None)
        if app is None:
            raise Err(40013, "invalid appid")
        if secret != app["secret"]:
            raise Err(40125, "invalid appsecret") if stable else \
                Err(40001, "invalid credential, access_token is invalid or not latest")
        return app

    def _issue(self, appid: str) -> tuple[str, int]:
        ttl = int(self.config.get("token_ttl", 7200))
        token = f"emu_{secrets.token_urlsafe(24)}"
        self.tokens[token] = {"appid": appid, "expires_at": time.time() + ttl}
        self.token_fetches += 1
        return token, ttl

    def token(self, appid: str, secret: str) -> dict:
        with self.lock:
            self.check_app(appid, secret)
            # cgi-bin/token: a new token; the previous ones stay valid for 5 more minutes
            for info in self.tokens.values():
                if info["appid"] == appid:
                    info["expires_at"] = min(info["expires_at"], time.time() + 300)
            token, ttl = self._issue(appid)
            self.stable[appid] = token
            return {"access_token": token, "expires_in": ttl}

    def stable_token(self, appid: str, secret: str, force: bool) -> dict:
        with self.lock:
            self.check_app(appid, secret, stable=True)
            cur = self.stable.get(appid)
            info = self.tokens.get(cur) if cur else None
            left = info["expires_at"] - time.time() if info else 0
            if not force and info and left > 300:
                return {"access_token": cur, "expires_in": int(left)}
            if force and cur:
                self.tokens.pop(cur, None)  # force_refresh invalidates the previous stable token at once
            token, ttl = self._issue(appid)
            self.stable[appid] = token
            return {"access_token": token, "expires_in": ttl}

    def check_token(self, token: str | None, appid: str | None = None) -> str:
        with self.lock:
            info = self.tokens.get(token or "")
            if info is None or (appid and info["appid"] != appid):
                raise Err(40001, "invalid credential, access_token is invalid or not latest")
            if info["expires_at"] <= time.time():
                raise Err(42001, "access_token expired")
            return info["appid"]

    def expire_tokens(self, appid: str | None = None) -> None:
        """Make every (or one app's) token expired, as if 2 hours had passed."""
        with self.lock:
            for info in self.tokens.values():
                if appid is None or info["appid"] == appid:
                    info["expires_at"] = time.time() - 1

    def revoke_tokens(self, appid: str | None = None) -> None:
        """Make tokens invalid (40001), as if another party had force-refreshed."""
        with self.lock:
            for t in [t for t, i in self.tokens.items() if appid is None or i["appid"] == appid]:
                del self.tokens[t]

    # --- web OAuth ---
    def oauth_code(self, appid: str, scope: str, person: Person, snapshot: bool = False) -> str:
        with self.lock:
            if appid != self.oa["appid"]:
                raise Err(40013, "invalid appid")
            if scope not in ("snsapi_base", "snsapi_userinfo"):
                raise Err(10005, "insufficient scope")
            code = secrets.token_hex(16)
            self.oauth_codes[code] = {"pid": person.pid, "scope": scope, "used": False,
                                      "snapshot": snapshot or person.snapshot, "expires_at": time.time() + CODE_TTL}
            return code

    def oauth_exchange(self, appid: str, secret: str, code: str) -> dict:
        with self.lock:
            self.check_app(appid, secret)
            c = self.oauth_codes.get(code)
            if c is None or c["expires_at"] <= time.time():
                raise Err(40029, "invalid code")
            if c["used"]:
                raise Err(40163, "code been used")
            c["used"] = True
            p = self.persons[c["pid"]]
            token = f"emu_sns_{secrets.token_urlsafe(20)}"
            self.oauth_tokens[token] = {"pid": p.pid, "scope": c["scope"], "expires_at": time.time() + 7200}
            out = {"access_token": token, "expires_in": 7200, "refresh_token": f"emu_rt_{secrets.token_urlsafe(20)}",
                   "openid": p.openid(appid), "scope": c["scope"]}
            if c["snapshot"]:
                out["is_snapshotuser"] = 1
            elif c["scope"] == "snsapi_userinfo" and p.unionid:
                out["unionid"] = p.unionid
            return out

    def oauth_userinfo(self, token: str, openid: str) -> dict:
        with self.lock:
            t = self.oauth_tokens.get(token)
            if t is None or t["expires_at"] <= time.time():
                raise Err(40001, "invalid credential, access_token is invalid or not latest")
            p = self.persons[t["pid"]]
            if p.openid(self.oa["appid"]) != openid:
                raise Err(40003, "invalid openid")
            if t["scope"] != "snsapi_userinfo":
                raise Err(48001, "api unauthorized")
            out = {"openid": openid, "nickname": p.nickname, "sex": 0, "province": "", "city": "", "country": "",
                   "headimgurl": p.headimgurl, "privilege": []}
            if p.unionid:
                out["unionid"] = p.unionid
            return out

    def follow(self, person: Person, scene: str | None = None) -> None:
        """The person follows the service account (by scanning a parametric QR when `scene` is given)."""
        with self.lock:
            person.following, person.subscribe_time = True, int(time.time())
            person.subscribe_scene = "ADD_SCENE_QR_CODE" if scene else "ADD_SCENE_SEARCH"
            person.qr_scene_str = scene or ""

    def user_info(self, openid: str, lang: str = "zh_CN") -> dict:
        """cgi-bin/user/info as WeChat answers it since 2021-12-27: no nickname or avatar any more; a person who
        does not follow the account gets only `subscribe: 0` and the openid; unionid only when the account is
        bound to an open-platform account (here: the person has one)."""
        with self.lock:
            if lang not in ("zh_CN", "zh_TW", "en"):
                raise Err(40005, "invalid lang")  # our reading; WeChat documents only the three values
            p = self.person_for_openid(self.oa["appid"], openid or "")
            if p is None:
                raise Err(40003, "invalid openid")
            if not p.following:
                return {"subscribe": 0, "openid": openid}
            out = {"subscribe": 1, "openid": openid, "language": lang, "subscribe_time": p.subscribe_time or 0,
                   "remark": "", "groupid": 0, "tagid_list": [], "subscribe_scene": p.subscribe_scene,
                   "qr_scene": 0, "qr_scene_str": p.qr_scene_str}
            if p.unionid:
                out["unionid"] = p.unionid
            return out

    # --- mini-program ---
    def js_code(self, person: Person) -> str:
        with self.lock:
            code = secrets.token_hex(16)
            self.js_codes[code] = {"pid": person.pid, "expires_at": time.time() + CODE_TTL}
            return code

    def jscode2session(self, appid: str, secret: str, code: str) -> dict:
        with self.lock:
            app = self.check_app(appid, secret)
            if app is not self.mini:
                raise Err(40013, "invalid appid")
            c = self.js_codes.get(code)
            if c is None:
                raise Err(40029, "invalid code")
            now = time.time()
            calls = [t for t in self.js_calls.get(c["pid"], []) if t > now - 60]
            if len(calls) >= int(self.config.get("jscode_rate_limit", 100)):
                raise Err(45011, "api minute-quota reach limit  mustslower  retry next minute")
            calls.append(now)
            self.js_calls[c["pid"]] = calls
            del self.js_codes[code]
            if c["expires_at"] <= now:
                raise Err(40029, "invalid code")
            p = self.persons[c["pid"]]
            out = {"openid": p.openid(appid), "session_key": base64.b64encode(secrets.token_bytes(16)).decode()}
            if p.unionid:
                out["unionid"] = p.unionid
            return out

    def phone_code(self, person: Person) -> str:
        with self.lock:
            code = secrets.token_hex(16)
            self.phone_codes[code] = {"pid": person.pid, "expires_at": time.time() + CODE_TTL}
            return code

    def phone_number(self, code: str) -> dict:
        with self.lock:
            c = self.phone_codes.pop(code, None)
            if c is None or c["expires_at"] <= time.time():
                raise Err(40029, "invalid code")
            p = self.persons[c["pid"]]
            cc = p.country_code
            full = p.phone if cc == "86" else f"+{cc}{p.phone}"
            return {"phoneNumber": full, "purePhoneNumber": p.phone, "countryCode": cc,
                    "watermark": {"timestamp": int(time.time()), "appid": self.mini["appid"]}}

    # --- QR tickets ---
    def create_qr(self, body: dict) -> dict:
        action = body.get("action_name")
        scene = (body.get("action_info") or {}).get("scene") or {}
        if action in ("QR_STR_SCENE", "QR_LIMIT_STR_SCENE"):
            value = scene.get("scene_str")
            if not isinstance(value, str) or not 1 <= len(value) <= 64:
                raise Err(40053, "invalid action info")
        elif action in ("QR_SCENE", "QR_LIMIT_SCENE"):
            value = scene.get("scene_id")
            limit = 100000 if action == "QR_LIMIT_SCENE" else 2**32 - 1
            if not isinstance(value, int) or not 1 <= value <= limit:
                raise Err(40053, "invalid action info")
            value = str(value)
        else:
            raise Err(40052, "invalid action name")
        permanent = action.startswith("QR_LIMIT")
        with self.lock:
            if permanent:
                if value in self.permanent_scenes:  # the same permanent scene gives the same ticket
                    t = self.permanent_scenes[value]
                    return {"ticket": t, "url": self.tickets[t]["url"]}
                quota = int(self.config.get("permanent_qr_quota", 100000))
                if len(self.permanent_scenes) >= quota:
                    raise Err(45029, "qrcode count out of limit")
            ticket = "gQ" + base64.b64encode(secrets.token_bytes(45)).decode().replace("/", "_")
            url = f"http://weixin.qq.com/q/02{secrets.token_urlsafe(16)}"
            expire = None
            if not permanent:
                expire = min(int(body.get("expire_seconds") or 60), 2_592_000)
            self.tickets[ticket] = {"scene": value, "url": url, "permanent": permanent,
                                    "expires_at": time.time() + expire if expire else None}
            if permanent:
                self.permanent_scenes[value] = ticket
                return {"ticket": ticket, "url": url}
            return {"ticket": ticket, "expire_seconds": expire, "url": url}

    def ticket_for_scene(self, scene: str) -> str | None:
        """The newest live ticket this account issued for `scene` (permanent or temporary)."""
        with self.lock:
            now = time.time()
            live = [(t, info) for t, info in self.tickets.items() if info["scene"] == scene
                    and not (info["expires_at"] and info["expires_at"] <= now)]
            return live[-1][0] if live else None

    def ticket(self, ticket: str) -> dict | None:
        with self.lock:
            t = self.tickets.get(ticket)
            if t is None or (t["expires_at"] and t["expires_at"] <= time.time()):
                return None
            return t

    # --- messages ---
    def grant_consent(self, person: Person, template_id: str, count: int = 1) -> None:
        with self.lock:
            person.consents[template_id] = person.consents.get(template_id, 0) + count

    def add_template(self, template_id: str, kind: str, fields: list[str]) -> dict:
        """Register a template the account has picked: kind "subscribe" (mini-program) or "template" (service
        account); `fields` are its keys ("thing1", "amount2", ...), whose type is the key without its digits."""
        if kind not in ("subscribe", "template"):
            raise ValueError("kind is subscribe or template")
        with self.lock:
            self.templates[template_id] = {"kind": kind, "fields": list(fields)}
            return {"template_id": template_id, **self.templates[template_id]}

    def request_subscribe(self, person: Person, choices: dict) -> dict:
        """wx.requestSubscribeMessage: {template_id: "accept" | "reject" | "ban"} chosen by the person; each
        accept is one more one-time grant, a ban (\u603b\u662f\u62d2\u7edd) voids the ones left. Returns
        what the mini-program receives: {"errMsg": "requestSubscribeMessage:ok", template_id: choice, ...}."""
        if not choices or len(choices) > 3:
            raise ValueError("one to three template ids at a time")
        out = {"errMsg": "requestSubscribeMessage:ok"}
        with self.lock:
            for tpl, choice in choices.items():
                known = self.templates.get(tpl)
                if known is None or known["kind"] != "subscribe":
                    out[tpl] = "filter"  # WeChat filters ids that are not this mini-program's templates
                    continue
                if choice not in ("accept", "reject", "ban"):
                    raise ValueError("a choice is accept, reject or ban")
                if tpl in person.banned and choice != "ban":
                    choice = "ban"  # a banned template is refused without asking
                if choice == "accept":
                    person.consents[tpl] = person.consents.get(tpl, 0) + 1
                elif choice == "ban":
                    if tpl not in person.banned:
                        person.banned.append(tpl)
                    person.consents[tpl] = 0
                out[tpl] = choice
        return out

    def _check_data(self, tpl: dict | None, data) -> dict:
        """47003 for data WeChat would refuse: not an object of {"value": str}, unknown keys, values over a
        type's limit or of the wrong form."""
        if not isinstance(data, dict):
            raise Err(47003, "argument invalid! data is not a json")
        clean = {}
        for key, item in data.items():
            if not isinstance(item, dict) or not isinstance(item.get("value"), str):
                raise Err(47003, f"argument invalid! data.{key}.value invalid")
            if tpl is not None and key not in tpl["fields"]:
                raise Err(47003, f"argument invalid! data.{key} not exist")
            problem = field_problem(key, item["value"])
            if problem:
                raise Err(47003, f"argument invalid! data.{key}.value {problem}")
            clean[key] = item["value"]
        return clean

    def subscribe_send(self, body: dict) -> dict:
        with self.lock:
            p = self.person_for_openid(self.mini["appid"], body.get("touser", ""))
            if p is None:
                raise Err(40003, "invalid openid")
            tpl = body.get("template_id") or ""
            known = self.templates.get(tpl)
            if self.templates and (known is None or known["kind"] != "subscribe"):
                raise Err(40037, "invalid template id")
            page = body.get("page")
            if page is not None and (not isinstance(page, str) or len(page) > 1024):
                raise Err(47003, "argument invalid! page invalid")
            if body.get("miniprogram_state", "formal") not in ("developer", "trial", "formal"):
                raise Err(47003, "argument invalid! miniprogram_state invalid")
            self._check_data(known, body.get("data"))
            if tpl in p.banned or p.consents.get(tpl, 0) <= 0:
                raise Err(43101, "user refuse to accept the msg")
            p.consents[tpl] -= 1
            msgid = secrets.randbits(60)
            self.messages.append({"kind": "subscribe", "msgid": msgid, "openid": body["touser"], "pid": p.pid,
                                  "template_id": tpl, "data": body["data"], "page": page, "at": time.time()})
            return {"msgid": msgid}

    def template_send(self, body: dict) -> dict:
        with self.lock:
            p = self.person_for_openid(self.oa["appid"], body.get("touser", ""))
            if p is None:
                raise Err(40003, "invalid openid")
            tpl = body.get("template_id") or ""
            known = self.templates.get(tpl)
            if self.templates and (known is None or known["kind"] != "template"):
                raise Err(40037, "invalid template_id")
            url = body.get("url")
            if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
                raise Err(47003, "argument invalid! url invalid")
            mp = body.get("miniprogram")
            if mp is not None and (not isinstance(mp, dict) or mp.get("appid") != self.mini["appid"]):
                raise Err(40165, "invalid weapp pagepath")
            self._check_data(known, body.get("data"))
            if not p.following:
                raise Err(43004, "require subscribe")
            msgid = secrets.randbits(60)
            self.messages.append({"kind": "template", "msgid": msgid, "openid": body["touser"], "pid": p.pid,
                                  "template_id": tpl, "data": body["data"], "url": url, "miniprogram": mp,
                                  "at": time.time()})
            self.template_reports.append({"msgid": msgid, "openid": body["touser"],
                                          "status": "success" if not p.blocks_templates else "failed:user block"})
            return {"msgid": msgid}

    def take_template_reports(self) -> list[dict]:
        with self.lock:
            out, self.template_reports = self.template_reports, []
            return out


# WeChat's value rules per field type (the key without its digits): the limits of subscribe messages, which
# service-account template messages with typed keys share.
_TIME = re.compile(r"^\d{4}[-/\u5e74]\d{1,2}[-/\u6708]\d{1,2}\u65e5?( \d{1,2}:\d{2}(:\d{2})?)?$|^\d{1,2}:\d{2}$")
_AMOUNT = re.compile(r"^[\u00a5\uffe5]?-?\d{1,9}(\.\d{1,2})?\u5143?$")
_NUMBER = re.compile(r"^-?\d{1,32}(\.\d+)?$")
_CHARS = re.compile(r"^[0-9A-Za-z_\-.:@#/+ ]{1,32}$")
_PHONE = re.compile(r"^[0-9+\-() ]{1,17}$")
LIMITS = {"thing": 20, "phrase": 5, "name": 10, "character_string": 32, "number": 32, "letter": 32,
          "symbol": 5, "amount": 16, "time": 32, "date": 32, "phone_number": 17, "car_number": 8, "const": 20}


def field_type(key: str) -> str:
    return key.rstrip("0123456789")


def field_problem(key: str, value: str) -> str | None:
    """Why WeChat would refuse `value` for `key`, or None. Untyped keys (first, keyword1, remark) allow 200."""
    kind = field_type(key)
    limit = LIMITS.get(kind)
    if limit is None:
        return "too long" if len(value) > 200 else None
    if not value or len(value) > limit:
        return f"length invalid for {kind} (1-{limit})"
    checks = {"time": _TIME, "date": _TIME, "amount": _AMOUNT, "number": _NUMBER, "character_string": _CHARS,
              "letter": re.compile(r"^[A-Za-z]+$"), "phone_number": _PHONE}
    rule = checks.get(kind)
    if rule is not None and not rule.match(value):
        return f"format invalid for {kind}"
    if kind == "phrase" and any(c.isdigit() or c.isascii() and not c.isalpha() for c in value):
        return "phrase takes words only"
    return None
